"""Report aggregation and visibility, pure: examples, and properties against a naive reference."""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.message import State
from smppgw.service.reports import (
    Report,
    ReportAggregator,
    ReportLine,
    ReportQuery,
    ReportRow,
    ScopeError,
    percentile,
    quantise_latency,
    render_csv,
    report_scope,
    visible_accounts,
)

MSK = ZoneInfo("Europe/Moscow")
COUNTS = ("total", "sent", "delivered", "undelivered", "expired", "unknown", "pending", "segments")
OUTCOME = {
    "delivered": "delivered",
    "undeliverable": "undelivered",
    "rejected": "undelivered",
    "deleted": "undelivered",
    "failed": "undelivered",
    "expired": "expired",
    "unknown": "unknown",
}
ZONES = ("Europe/Moscow", "UTC", "Asia/Kamchatka", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def row(
    created: str,
    state: str = "delivered",
    *,
    klass: str = "otp",
    operator: str = "mts",
    segments: int = 1,
    submitted: float | None = 1.0,
    latency: float | None = 5.0,
    account: str = "acme",
) -> ReportRow:
    """A row created at ``created`` (ISO), submitted ``submitted`` s later, done ``latency`` s after that."""
    t = at(created)
    submitted_at = None if submitted is None else t + submitted
    done_at = None if latency is None or submitted_at is None else submitted_at + latency
    return ReportRow(account, klass, operator, state, segments, t, submitted_at, done_at)


def aggregate(rows: list[ReportRow], group_by: str = "day", tz: str = "Europe/Moscow") -> Report:
    query = ReportQuery(accounts=("acme",), since=0.0, until=4e9, group_by=group_by, tz=tz)  # type: ignore[arg-type]
    aggregator = ReportAggregator(query)
    aggregator.add(rows)
    return aggregator.result()


# ------------------------------------------------------------------------------------------------ examples


def test_outcomes_rate_and_latency_of_one_day() -> None:
    report = aggregate(
        [
            row("2025-03-01T10:00:00+03:00", latency=4.0),
            row("2025-03-01T11:00:00+03:00", segments=3, latency=10.0),
            row("2025-03-01T12:00:00+03:00", latency=20.0),
            row("2025-03-01T13:00:00+03:00", "undeliverable"),
            row("2025-03-01T14:00:00+03:00", "failed", submitted=None),
            row("2025-03-01T15:00:00+03:00", "expired"),
            row("2025-03-01T16:00:00+03:00", "unknown"),
            row("2025-03-01T17:00:00+03:00", "held", submitted=None),
            row("2025-03-01T18:00:00+03:00", "submitted", latency=None),
        ]
    )
    (line,) = report.groups
    assert line == ReportLine(
        group="2025-03-01",
        total=9,
        sent=7,
        delivered=3,
        undelivered=2,
        expired=1,
        unknown=1,
        pending=2,
        segments=11,
        delivery_rate=round(3 / 7, 4),
        latency_p50=10.0,
        latency_p95=20.0,
    )
    assert msgspec.structs.replace(report.totals, group="2025-03-01") == line
    assert report.totals.group == "total"


def test_day_is_the_creation_date_in_the_zone() -> None:
    late = row("2025-03-01T22:30:00+00:00")  # 01:30 on 2 March in Moscow
    assert [g.group for g in aggregate([late]).groups] == ["2025-03-02"]
    assert [g.group for g in aggregate([late], tz="UTC").groups] == ["2025-03-01"]
    assert [g.group for g in aggregate([late], tz="America/New_York").groups] == ["2025-03-01"]


def test_groups_by_class_and_operator_sorted() -> None:
    rows = [
        row("2025-03-01T10:00:00+03:00", klass="marketing", operator="tele2"),
        row("2025-03-01T10:00:00+03:00", klass="otp", operator=""),
        row("2025-03-01T10:00:00+03:00", klass="otp", operator="beeline"),
    ]
    assert [(g.group, g.total) for g in aggregate(rows, "class").groups] == [("marketing", 1), ("otp", 2)]
    assert [g.group for g in aggregate(rows, "operator").groups] == ["", "beeline", "tele2"]


def test_nothing_final_means_no_rate_and_no_latency() -> None:
    report = aggregate([row("2025-03-01T10:00:00+03:00", "queued", submitted=None)])
    assert report.totals.delivery_rate is None
    assert report.totals.latency_p50 is None and report.totals.latency_p95 is None
    all_failed = aggregate([row("2025-03-01T10:00:00+03:00", "rejected")])
    assert all_failed.totals.delivery_rate == 0.0
    assert all_failed.totals.latency_p50 is None


def test_empty_report_has_zero_totals() -> None:
    report = aggregate([])
    assert report.groups == []
    assert report.totals.total == 0 and report.totals.delivery_rate is None


def test_report_carries_the_period_in_its_zone() -> None:
    query = ReportQuery(
        accounts=None, since=at("2025-03-01T00:00:00+03:00"), until=at("2025-03-02T00:00:00+03:00"), group_by="day"
    )
    report = ReportAggregator(query).result()
    encoded = msgspec.json.decode(msgspec.json.encode(report))
    assert encoded["from"] == "2025-03-01T00:00:00+03:00"
    assert encoded["to"] == "2025-03-02T00:00:00+03:00"
    assert encoded["accounts"] is None and encoded["tz"] == "Europe/Moscow"


def test_csv_has_header_groups_and_total_row() -> None:
    report = aggregate([row("2025-03-01T10:00:00+03:00", latency=12.3456), row("2025-03-02T10:00:00+03:00", "queued")])
    text = render_csv(report)
    assert text.endswith("\r\n")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["day", *COUNTS, "delivery_rate", "latency_p50", "latency_p95"]
    assert [r[0] for r in table[1:]] == ["2025-03-01", "2025-03-02", "total"]
    assert table[1][-3:] == ["1.0", "12.3", "12.3"]
    assert table[2][-3:] == ["", "", ""]  # nothing final: empty cells, not "None"
    assert table[3][1:9] == ["2", "2", "1", "0", "0", "0", "1", "2"]


# ------------------------------------------------------------------------------------------------ visibility

PARENTS = {"acme": "", "sub": "acme", "subsub": "sub", "sib": "acme", "other": "", "root": ""}


def test_an_account_sees_its_tree_only() -> None:
    assert visible_accounts(PARENTS, "acme") == ("acme", "sib", "sub", "subsub")
    assert visible_accounts(PARENTS, "sub") == ("sub", "subsub")
    assert visible_accounts(PARENTS, "subsub") == ("subsub",)
    assert visible_accounts({"a": "b", "b": "a"}, "a") == ("a", "b")  # a bad map still ends


@pytest.mark.parametrize(
    ("viewer", "admin", "requested", "expected"),
    [
        ("acme", False, None, ("acme", "sib", "sub", "subsub")),
        ("acme", False, "acme", ("acme",)),
        ("acme", False, "subsub", ("subsub",)),
        ("sub", False, None, ("sub", "subsub")),
        ("root", True, None, None),
        ("root", True, "acme", ("acme",)),
        ("root", True, "gone", ("gone",)),  # an admin may report on an account no longer configured
    ],
)
def test_scope(viewer: str, admin: bool, requested: str | None, expected: tuple[str, ...] | None) -> None:
    assert report_scope(PARENTS, viewer, admin=admin, requested=requested) == expected


@pytest.mark.parametrize(("viewer", "requested"), [("sub", "acme"), ("sub", "sib"), ("acme", "other"), ("acme", "x")])
def test_hidden_accounts_are_not_found(viewer: str, requested: str) -> None:
    with pytest.raises(ScopeError):
        report_scope(PARENTS, viewer, admin=False, requested=requested)


# ------------------------------------------------------------------------------------------------ properties

states = st.sampled_from([s.value for s in State])
times = st.floats(min_value=86_400.0 * 800, max_value=4.0e9, allow_nan=False)  # 1972 … 2096
rows = st.builds(
    ReportRow,
    st.sampled_from(["acme", "sub"]),
    st.sampled_from(["otp", "marketing", "collection"]),
    st.sampled_from(["mts", "beeline", ""]),
    states,
    st.integers(min_value=1, max_value=10),
    times,
    st.none() | st.floats(min_value=0.0, max_value=4.0e9, allow_nan=False),
    st.none() | st.floats(min_value=0.0, max_value=4.0e9, allow_nan=False),
)


def reference_line(members: list[ReportRow]) -> dict[str, object]:
    """What one group must say, computed the obvious way."""
    counts = dict.fromkeys(("delivered", "undelivered", "expired", "unknown", "pending"), 0)
    for r in members:
        counts[OUTCOME.get(r.state, "pending")] += 1
    latencies = sorted(
        r.done_at - r.submitted_at
        for r in members
        if r.state == "delivered" and r.submitted_at is not None and r.done_at is not None
    )

    def nearest_rank(p: int) -> float | None:
        if not latencies:
            return None
        return float(f"{latencies[math.ceil(p * len(latencies) / 100) - 1]:.3g}")

    final = len(members) - counts["pending"]
    return {
        "total": len(members),
        "sent": sum(r.submitted_at is not None for r in members),
        **counts,
        "segments": sum(r.segments for r in members),
        "delivery_rate": round(counts["delivered"] / final, 4) if final else None,
        "latency_p50": nearest_rank(50),
        "latency_p95": nearest_rank(95),
    }


def figures(line: ReportLine) -> dict[str, object]:
    return {k: v for k, v in msgspec.structs.asdict(line).items() if k != "group"}


@settings(max_examples=150, deadline=None)
@given(st.lists(rows, max_size=60), st.sampled_from(["day", "class", "operator"]), st.sampled_from(ZONES))
def test_groups_match_a_naive_reference(sample: list[ReportRow], group_by: str, tz: str) -> None:
    zone = ZoneInfo(tz)

    def key(r: ReportRow) -> str:
        if group_by == "day":
            return datetime.fromtimestamp(r.created_at, UTC).astimezone(zone).date().isoformat()
        return r.traffic_class if group_by == "class" else r.operator

    expected: dict[str, list[ReportRow]] = defaultdict(list)
    for r in sample:
        expected[key(r)].append(r)
    report = aggregate(sample, group_by, tz)
    assert [g.group for g in report.groups] == sorted(expected)
    for line in report.groups:
        assert figures(line) == reference_line(expected[line.group])
    assert figures(report.totals) == reference_line(sample)


@settings(max_examples=150, deadline=None)
@given(st.lists(rows, max_size=60), st.sampled_from(["day", "class", "operator"]))
def test_totals_are_the_sum_of_groups_and_outcomes_add_up(sample: list[ReportRow], group_by: str) -> None:
    report = aggregate(sample, group_by)
    for name in COUNTS:
        assert getattr(report.totals, name) == sum(getattr(g, name) for g in report.groups), name
    for line in (*report.groups, report.totals):
        assert line.total == line.delivered + line.undelivered + line.expired + line.unknown + line.pending
        assert 0 <= line.sent <= line.total
        assert line.delivery_rate is None or 0.0 <= line.delivery_rate <= 1.0
        if line.latency_p50 is not None:
            assert line.latency_p95 is not None and line.latency_p50 <= line.latency_p95


@settings(max_examples=100, deadline=None)
@given(st.lists(rows, max_size=60), st.lists(st.integers(min_value=0, max_value=60), max_size=5))
def test_chunking_does_not_change_the_result(sample: list[ReportRow], cuts: list[int]) -> None:
    query = ReportQuery(accounts=None, since=0.0, until=4e9, group_by="day")
    chunked = ReportAggregator(query)
    bounds = [0, *sorted(min(c, len(sample)) for c in cuts), len(sample)]
    for start, end in itertools.pairwise(bounds):
        chunked.add(sample[start:end])
    whole = ReportAggregator(query)
    whole.add(sample)
    assert chunked.result() == whole.result()


@given(st.lists(st.floats(min_value=-1e3, max_value=1e7, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_match_a_sorted_list(values: list[float]) -> None:
    histogram: dict[float, int] = defaultdict(int)
    for v in values:
        histogram[quantise_latency(v)] += 1
    ordered = sorted(values)
    for p in (1, 50, 95, 99, 100):
        exact = ordered[math.ceil(p * len(values) / 100) - 1]
        assert percentile(histogram, p) == quantise_latency(exact)
        assert abs(quantise_latency(exact) - exact) <= 0.005 * abs(exact)  # 3 significant digits


def test_percentile_of_nothing_is_none() -> None:
    assert percentile({}, 50) is None
