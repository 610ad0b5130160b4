"""Collection frequency caps: how many reminders one recipient may get from one account per local day, week, month.

Each accepted collection message reserves a slot on the recipient-local calendar day it is planned to go out on; the
check and the reservation happen in one synchronous step (no await between them), so two concurrent submits cannot
both take the last slot. The ledger is rebuilt from the store after a restart. Days are ordinals
(``date.toordinal()``), weeks are ISO weeks (Monday to Sunday), months calendar months.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

from smppgw.config import CapsConfig

RETENTION_DAYS = 40
"""Reservations older than this cannot count towards any cap (a month is at most 31 days) and are dropped."""


class CapLimits(NamedTuple):
    per_day: int
    per_week: int
    per_month: int


def limits_for(caps: CapsConfig, overdue_days: int) -> CapLimits:
    """The limits for one message: the daily cap depends on how long the debt has been overdue."""
    per_day = caps.per_day_overdue if overdue_days >= caps.overdue_days_threshold else caps.per_day
    return CapLimits(per_day, caps.per_week, caps.per_month)


CapKey = tuple[str, str]  # (account, recipient msisdn)


class CapExceededError(Exception):
    """No slot left; ``period`` is "day", "week" or "month"."""

    def __init__(self, period: str, limit: int) -> None:
        super().__init__(f"collection cap reached: {limit} per {period} for this recipient")
        self.period = period
        self.limit = limit


class CapLedger:
    """Reserved days per (account, recipient), and per message id (to release or move a reservation)."""

    __slots__ = ("_by_message", "_days")

    def __init__(self) -> None:
        self._days: dict[CapKey, list[int]] = {}
        self._by_message: dict[str, tuple[CapKey, int]] = {}

    def __len__(self) -> int:
        return len(self._by_message)

    def day_of(self, message_id: str) -> int | None:
        entry = self._by_message.get(message_id)
        return None if entry is None else entry[1]

    def check(
        self, key: CapKey, day: int, limits: CapLimits, *, ignore: str | None = None, extra: Iterable[int] = ()
    ) -> None:
        """Raise ``CapExceededError`` if one more message on ``day`` would exceed a cap (``ignore``: a message
        whose own reservation does not count, when moving it; ``extra``: days reserved elsewhere, as far as known)."""
        days = [*self._days.get(key, ()), *extra]
        if ignore is not None and ignore in self._by_message:
            days.remove(self._by_message[ignore][1])
        error = over_cap(days, day, limits)
        if error is not None:
            raise error

    def reserve(self, key: CapKey, day: int, message_id: str) -> None:
        """Take a slot (after ``check``); a message holds at most one reservation."""
        self.release(message_id)
        self._days.setdefault(key, []).append(day)
        self._by_message[message_id] = (key, day)

    def release(self, message_id: str) -> bool:
        """Give the message's slot back (it was never sent, or its commit failed)."""
        entry = self._by_message.pop(message_id, None)
        if entry is None:
            return False
        key, day = entry
        days = self._days[key]
        days.remove(day)
        if not days:
            del self._days[key]
        return True

    def move(self, message_id: str, day: int, limits: CapLimits, extra: Iterable[int] = ()) -> None:
        """Move a reservation to another day (the message goes out later than planned); raises if that day is full."""
        entry = self._by_message.get(message_id)
        if entry is None or entry[1] == day:
            return
        key = entry[0]
        self.check(key, day, limits, ignore=message_id, extra=extra)
        self.reserve(key, day, message_id)

    def prune(self, today: int) -> list[str]:
        """Forget reservations older than ``RETENTION_DAYS``; returns their message ids (to delete in the store)."""
        limit = today - RETENTION_DAYS
        old = [mid for mid, (_, day) in self._by_message.items() if day < limit]
        for message_id in old:
            self.release(message_id)
        return old

    def load(self, rows: Iterable[tuple[str, str, int, str]]) -> None:
        """Restore reservations (account, msisdn, day, message id) after a restart."""
        for account, msisdn, day, message_id in rows:
            self.reserve((account, msisdn), day, message_id)


def over_cap(days: Iterable[int], day: int, limits: CapLimits) -> CapExceededError | None:
    """The cap one more message on ``day`` would exceed, given the days already reserved (None: it fits)."""
    if min(limits) < 1:
        return CapExceededError(*_first_zero(limits))
    when = date.fromordinal(day)
    week = when.isocalendar()[:2]
    per_day = per_week = per_month = 0
    for other in days:
        if other == day:
            per_day += 1
        other_date = date.fromordinal(other)
        if other_date.isocalendar()[:2] == week:
            per_week += 1
        if (other_date.year, other_date.month) == (when.year, when.month):
            per_month += 1
    if per_day >= limits.per_day:
        return CapExceededError("day", limits.per_day)
    if per_week >= limits.per_week:
        return CapExceededError("week", limits.per_week)
    if per_month >= limits.per_month:
        return CapExceededError("month", limits.per_month)
    return None


def _first_zero(limits: CapLimits) -> tuple[str, int]:
    for period, value in zip(("day", "week", "month"), limits, strict=True):
        if value < 1:
            return period, value
    raise AssertionError("no zero limit")
