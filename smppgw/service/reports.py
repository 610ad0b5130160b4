"""Traffic reports: who may see what, and the aggregation of message rows into one line per group plus totals.

Pure apart from ``run_report``, which feeds a store's row chunks to the aggregator. Every message falls in exactly
one outcome: ``delivered``; ``undelivered`` (undeliverable, rejected, deleted, failed); ``expired``; ``unknown``; or
``pending`` (not final yet: accepted, queued, scheduled, held, submitting, submitted). ``sent`` counts messages with at
least one part handed to an operator. ``delivery_rate`` = delivered / (total - pending), ``None`` when nothing is
final.

Receipt latency (done_at - first part's submit time, delivered messages only) is quantised to
``LATENCY_DIGITS`` significant digits before counting, so a group holds at most 900 counters per decade of latency
spread (never more than its number of samples), whatever its volume. Percentiles are nearest-rank (the smallest
sample with at least p % of the samples at or below it); rounding is monotonic, so the reported value is exactly the
true nearest-rank percentile rounded to ``LATENCY_DIGITS`` significant digits (relative error <= 0.5 %).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from smppgw.core.message import State
from smppgw.store.base import ReportRow, Store

__all__ = [
    "GROUP_BYS",
    "LATENCY_DIGITS",
    "GroupBy",
    "Report",
    "ReportAggregator",
    "ReportLine",
    "ReportQuery",
    "ReportRow",
    "ScopeError",
    "percentile",
    "quantise_latency",
    "render_csv",
    "report_scope",
    "run_report",
    "visible_accounts",
]

GroupBy = Literal["day", "class", "operator"]
GROUP_BYS: Final[tuple[GroupBy, ...]] = ("day", "class", "operator")
LATENCY_DIGITS: Final = 3
TOTAL_GROUP: Final = "total"

_DELIVERED, _UNDELIVERED, _EXPIRED, _UNKNOWN, _PENDING = range(5)
_OUTCOME: Final[dict[str, int]] = {
    State.DELIVERED.value: _DELIVERED,
    State.UNDELIVERABLE.value: _UNDELIVERED,
    State.REJECTED.value: _UNDELIVERED,
    State.DELETED.value: _UNDELIVERED,
    State.FAILED.value: _UNDELIVERED,
    State.EXPIRED.value: _EXPIRED,
    State.UNKNOWN.value: _UNKNOWN,
}
"""Final states → outcome; any other state is pending."""


class ReportQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Messages of ``accounts`` (``None``: every account) created in ``[since, until)`` (epoch seconds)."""

    accounts: tuple[str, ...] | None
    since: float
    until: float
    group_by: GroupBy
    tz: str = "Europe/Moscow"  # IANA zone: ``day`` groups by the creation date there


class ReportLine(msgspec.Struct, kw_only=True):
    """One group's figures (field order is the CSV column order)."""

    group: str
    total: int
    sent: int
    delivered: int
    undelivered: int
    expired: int
    unknown: int
    pending: int
    segments: int
    delivery_rate: float | None
    latency_p50: float | None  # seconds
    latency_p95: float | None


class Report(msgspec.Struct, kw_only=True, rename={"since": "from", "until": "to"}):
    accounts: list[str] | None  # whose traffic is counted; None: every account
    since: datetime
    until: datetime  # exclusive
    tz: str
    group_by: GroupBy
    groups: list[ReportLine]  # groups with traffic, sorted by key
    totals: ReportLine


# ------------------------------------------------------------------------------------------------ visibility


class ScopeError(LookupError):
    """The named account is not visible to the viewer (or does not exist: the two are not told apart)."""


def visible_accounts(parents: Mapping[str, str], viewer: str) -> tuple[str, ...]:
    """``viewer`` and every account whose parent chain leads to it, sorted. ``parents``: account → parent."""
    children: dict[str, list[str]] = {}
    for name, parent in parents.items():
        if parent:
            children.setdefault(parent, []).append(name)
    seen, todo = {viewer}, [viewer]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:  # config validation forbids cycles; this keeps a bad map finite anyway
                seen.add(child)
                todo.append(child)
    return tuple(sorted(seen))


def report_scope(
    parents: Mapping[str, str], viewer: str, *, admin: bool, requested: str | None
) -> tuple[str, ...] | None:
    """The accounts a report covers: the named one (which must be the viewer or a descendant, unless the viewer is
    an admin), else the viewer's tree; ``None`` (every account) for an admin naming none. ``ScopeError`` if hidden."""
    if admin:
        return None if requested is None else (requested,)
    visible = visible_accounts(parents, viewer)
    if requested is None:
        return visible
    if requested not in visible:
        raise ScopeError(requested)
    return (requested,)


# ------------------------------------------------------------------------------------------------ aggregation


def quantise_latency(seconds: float) -> float:
    """``seconds`` rounded to ``LATENCY_DIGITS`` significant digits (monotonic, so order statistics commute)."""
    return float(f"{seconds:.{LATENCY_DIGITS}g}")


def percentile(histogram: Mapping[float, int], percent: int) -> float | None:
    """Nearest-rank percentile of value → count, ``None`` when empty."""
    count = sum(histogram.values())
    if not count:
        return None
    rank = -(-percent * count // 100)  # ceil without floats
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: rank <= count")


class _Tally:
    """Running figures of one group."""

    __slots__ = ("latencies", "outcomes", "segments", "sent", "total")

    def __init__(self) -> None:
        self.total = self.sent = self.segments = 0
        self.outcomes = [0, 0, 0, 0, 0]
        self.latencies: dict[float, int] = {}

    def add(self, row: ReportRow) -> None:
        self.total += 1
        self.segments += row.segments
        if row.submitted_at is not None:
            self.sent += 1
        outcome = _OUTCOME.get(row.state, _PENDING)
        self.outcomes[outcome] += 1
        if outcome == _DELIVERED and row.submitted_at is not None and row.done_at is not None:
            latency = quantise_latency(row.done_at - row.submitted_at)
            self.latencies[latency] = self.latencies.get(latency, 0) + 1

    def merge(self, other: _Tally) -> None:
        self.total += other.total
        self.sent += other.sent
        self.segments += other.segments
        self.outcomes = [a + b for a, b in zip(self.outcomes, other.outcomes, strict=True)]
        for latency, count in other.latencies.items():
            self.latencies[latency] = self.latencies.get(latency, 0) + count

    def line(self, group: str) -> ReportLine:
        delivered, undelivered, expired, unknown, pending = self.outcomes
        final = self.total - pending
        return ReportLine(
            group=group,
            total=self.total,
            sent=self.sent,
            delivered=delivered,
            undelivered=undelivered,
            expired=expired,
            unknown=unknown,
            pending=pending,
            segments=self.segments,
            delivery_rate=round(delivered / final, 4) if final else None,
            latency_p50=percentile(self.latencies, 50),
            latency_p95=percentile(self.latencies, 95),
        )


def _group_key(group_by: GroupBy, zone: ZoneInfo) -> Callable[[ReportRow], str]:
    if group_by == "class":
        return lambda row: row.traffic_class
    if group_by == "operator":
        return lambda row: row.operator
    return lambda row: datetime.fromtimestamp(row.created_at, zone).date().isoformat()  # exact: ~1 µs a row


class ReportAggregator:
    """Feed row chunks with ``add`` (any chunking gives the same result); ``result`` builds the report.

    Memory: one tally per group (days are at most 367), each with its bounded latency histogram."""

    def __init__(self, query: ReportQuery) -> None:
        self.query = query
        self._zone = ZoneInfo(query.tz)
        self._key = _group_key(query.group_by, self._zone)
        self._tallies: dict[str, _Tally] = {}

    def add(self, rows: Iterable[ReportRow]) -> None:
        key, tallies = self._key, self._tallies
        for row in rows:
            group = key(row)
            tally = tallies.get(group)
            if tally is None:
                tally = tallies[group] = _Tally()
            tally.add(row)

    def result(self) -> Report:
        totals = _Tally()
        groups = []
        for group in sorted(self._tallies):
            tally = self._tallies[group]
            totals.merge(tally)
            groups.append(tally.line(group))
        q = self.query
        return Report(
            accounts=None if q.accounts is None else list(q.accounts),
            since=datetime.fromtimestamp(q.since, self._zone),
            until=datetime.fromtimestamp(q.until, self._zone),
            tz=q.tz,
            group_by=q.group_by,
            groups=groups,
            totals=totals.line(TOTAL_GROUP),
        )


async def run_report(store: Store, query: ReportQuery, chunk: int = 5000) -> Report:
    """Stream the query's rows from ``store`` through an aggregator (memory: one chunk plus the tallies)."""
    aggregator = ReportAggregator(query)
    async for rows in store.report_rows(query.accounts, query.since, query.until, chunk):
        aggregator.add(rows)
    return aggregator.result()


# ------------------------------------------------------------------------------------------------ CSV


def render_csv(report: Report) -> str:
    """RFC 4180 CSV: a header row (the grouping, then the figures), one row per group, then the ``total`` row.
    Missing values (no rate, no latency) are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((report.group_by, *ReportLine.__struct_fields__[1:]))
    for line in (*report.groups, report.totals):
        writer.writerow("" if value is None else value for value in msgspec.structs.astuple(line))
    return out.getvalue()
