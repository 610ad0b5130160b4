"""Collection caps: no recipient ever gets more than the caps allow, and the ledger refuses only what would exceed."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.config import CapsConfig
from smppgw.core.policy.caps import RETENTION_DAYS, CapExceededError, CapLedger, CapLimits, limits_for

KEY = ("acme", "79161234567")
D0 = date(2026, 3, 2).toordinal()  # a Monday


def _counts(days: list[int]) -> tuple[Counter[int], Counter[tuple[int, int]], Counter[tuple[int, int]]]:
    per_day = Counter(days)
    per_week = Counter(date.fromordinal(d).isocalendar()[:2] for d in days)
    per_month = Counter((date.fromordinal(d).year, date.fromordinal(d).month) for d in days)
    return per_day, per_week, per_month  # type: ignore[return-value]


def test_daily_cap_depends_on_overdue_days() -> None:
    caps = CapsConfig()
    assert limits_for(caps, 0) == CapLimits(1, 4, 16)
    assert limits_for(caps, 29) == CapLimits(1, 4, 16)
    assert limits_for(caps, 30) == CapLimits(2, 4, 16)


def test_one_a_day_then_refused_with_the_period() -> None:
    ledger = CapLedger()
    limits = CapLimits(1, 4, 16)
    ledger.check(KEY, D0, limits)
    ledger.reserve(KEY, D0, "m1")
    with pytest.raises(CapExceededError) as exc:
        ledger.check(KEY, D0, limits)
    assert exc.value.period == "day"
    ledger.check(("acme", "79160000000"), D0, limits)  # another recipient is independent
    ledger.check(("other", KEY[1]), D0, limits)  # another account is independent


def test_week_cap_counts_iso_weeks() -> None:
    ledger = CapLedger()
    limits = CapLimits(2, 4, 16)
    for i, day in enumerate((D0, D0, D0 + 1, D0 + 1)):  # Monday x2, Tuesday x2
        ledger.reserve(KEY, day, f"m{i}")
    with pytest.raises(CapExceededError) as exc:
        ledger.check(KEY, D0 + 6, limits)  # Sunday of the same week
    assert exc.value.period == "week"
    ledger.check(KEY, D0 + 7, limits)  # next Monday: a new week


def test_release_and_move() -> None:
    ledger = CapLedger()
    limits = CapLimits(1, 4, 16)
    ledger.reserve(KEY, D0, "m1")
    ledger.reserve(KEY, D0 + 1, "m2")
    with pytest.raises(CapExceededError):
        ledger.move("m1", D0 + 1, limits)  # that day is taken by m2
    assert ledger.day_of("m1") == D0
    ledger.move("m1", D0 + 2, limits)
    assert ledger.day_of("m1") == D0 + 2
    ledger.check(KEY, D0, limits)  # the old day is free again
    assert ledger.release("m1") and not ledger.release("m1")
    assert len(ledger) == 1


def test_zero_cap_refuses_everything() -> None:
    with pytest.raises(CapExceededError):
        CapLedger().check(KEY, D0, CapLimits(0, 4, 16))


def test_prune_returns_old_ids_and_load_restores() -> None:
    ledger = CapLedger()
    ledger.load([("acme", "1", D0, "old"), ("acme", "1", D0 + RETENTION_DAYS + 1, "new")])
    assert ledger.prune(D0 + RETENTION_DAYS + 1) == ["old"]
    assert ledger.day_of("new") == D0 + RETENTION_DAYS + 1 and ledger.day_of("old") is None


@settings(max_examples=300, deadline=None)
@given(
    attempts=st.lists(st.integers(0, 70), min_size=1, max_size=80),
    per_day=st.integers(0, 3),
    per_week=st.integers(0, 6),
    per_month=st.integers(0, 20),
)
def test_caps_never_exceeded_and_only_real_excess_refused(
    attempts: list[int], per_day: int, per_week: int, per_month: int
) -> None:
    ledger = CapLedger()
    limits = CapLimits(per_day, per_week, per_month)
    taken: list[int] = []
    for i, offset in enumerate(attempts):
        day = D0 + offset
        try:
            ledger.check(KEY, day, limits)
        except CapExceededError:
            by_day, by_week, by_month = _counts([*taken, day])
            when = date.fromordinal(day)
            assert (
                by_day[day] > per_day
                or by_week[when.isocalendar()[:2]] > per_week  # type: ignore[index]
                or by_month[(when.year, when.month)] > per_month
            ), "refused although it fits every cap"
            continue
        ledger.reserve(KEY, day, f"m{i}")
        taken.append(day)
    by_day, by_week, by_month = _counts(taken)
    assert max(by_day.values(), default=0) <= per_day
    assert max(by_week.values(), default=0) <= per_week
    assert max(by_month.values(), default=0) <= per_month
