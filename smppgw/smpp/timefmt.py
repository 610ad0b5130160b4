"""SMPP time formats (spec 7.1.1): ``schedule_delivery_time``, ``validity_period``, ``final_date``.

Absolute: ``YYMMDDhhmmsstnnp``, where ``t`` is tenths of a second, ``nn`` the offset of the local time (the first 13
characters) from UTC in quarter hours (00-48) and ``p`` ``+`` (ahead of UTC) or ``-`` (behind).
Relative: ``YYMMDDhhmmss000R``: years, months, days, hours, minutes and seconds from "now" (``t`` and ``nn`` are
ignored). The empty string means "not given". Two-digit years are 2000 + YY.

Relative years and months are calendar steps, applied in UTC (the day is clamped to the end of a shorter month), then
days, hours, minutes and seconds are added as a fixed duration. Relative fields are not range-checked
(``000000480000000R`` is 48 hours), absolute ones are.

Nothing here reads a clock: ``now`` is an argument and must be timezone-aware. Parsed times are aware and in UTC.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from .errors import SmppError

TIME_LENGTH: Final = 16
"""Every non-empty SMPP time is exactly 16 characters (the field is a 17-octet C-string, spec 4.4.1)."""

QUARTER_HOUR: Final = timedelta(minutes=15)
MAX_QUARTERS: Final = 48
"""``nn`` ranges 00-48 (spec 7.1.1): offsets up to ±12:00. Other offsets are written in UTC instead."""

MAX_RELATIVE_DAYS: Final = 99
"""``format_relative_time`` writes the period as DD hh mm ss; longer periods need calendar months (ambiguous)."""


class SmppTimeError(SmppError, ValueError):
    """A malformed or out-of-range SMPP time. The caller answers ESME_RINVSCHED or ESME_RINVEXPIRY."""


def parse_smpp_time(value: str, now: datetime) -> datetime | None:
    """Parse an absolute or relative SMPP time into an aware UTC datetime; ``""`` gives None.

    Raises ``SmppTimeError`` for any malformed value, and ``ValueError`` if ``now`` is naive (a caller bug).
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not value:
        return None
    if len(value) != TIME_LENGTH or not (value.isascii() and value[:15].isdigit()):
        raise SmppTimeError(f"SMPP time must be 16 characters YYMMDDhhmmsstnnp: {value!r}")
    direction = value[15]
    if direction == "R":
        return _relative(value, now)
    if direction in "+-":
        return _absolute(value, direction)
    raise SmppTimeError(f"SMPP time must end with '+', '-' or 'R': {value!r}")


def _absolute(value: str, direction: str) -> datetime:
    quarters = int(value[13:15])
    if quarters > MAX_QUARTERS:
        raise SmppTimeError(f"UTC offset over 48 quarter hours: {value!r}")
    offset = quarters * QUARTER_HOUR
    try:
        local = datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12]) * 100_000,
            tzinfo=timezone(offset if direction == "+" else -offset),
        )
    except ValueError as exc:
        raise SmppTimeError(f"invalid absolute SMPP time {value!r}: {exc}") from None
    return local.astimezone(UTC)


def _relative(value: str, now: datetime) -> datetime:
    years, months, days = int(value[0:2]), int(value[2:4]), int(value[4:6])
    hours, minutes, seconds = int(value[6:8]), int(value[8:10]), int(value[10:12])
    try:
        base = _add_months(now.astimezone(UTC), years * 12 + months)
        return base + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise SmppTimeError(f"relative SMPP time {value!r} leaves the datetime range") from None


def _add_months(dt: datetime, months: int) -> datetime:
    if not months:
        return dt
    index = dt.month - 1 + months
    year, month = dt.year + index // 12, index % 12 + 1
    if year > datetime.max.year:
        raise OverflowError("year out of range")
    return dt.replace(year=year, month=month, day=min(dt.day, monthrange(year, month)[1]))


def format_absolute_time(dt: datetime) -> str:
    """Write an aware datetime as ``YYMMDDhhmmsstnnp`` in its own UTC offset, truncated to tenths.

    An offset that is not a whole number of quarter hours or exceeds ±12:00 cannot be written: the time is written in
    UTC instead (same instant). Raises ``SmppTimeError`` when the written year is outside 2000-2099, and ``ValueError``
    for a naive datetime.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("format_absolute_time needs a timezone-aware datetime")
    quarters, rest = divmod(offset, QUARTER_HOUR)
    if rest or abs(quarters) > MAX_QUARTERS:
        dt, quarters = dt.astimezone(UTC), 0
    if not 2000 <= dt.year <= 2099:
        raise SmppTimeError(f"year {dt.year} cannot be written as YY (2000-2099)")
    sign = "-" if quarters < 0 else "+"
    return (
        f"{dt.year - 2000:02d}{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"
        f"{dt.microsecond // 100_000}{abs(quarters):02d}{sign}"
    )


def format_relative_time(td: timedelta) -> str:
    """Write a duration as ``0000DDhhmmss000R`` (years and months zero, fractions of a second dropped).

    Raises ``SmppTimeError`` for a negative duration or one of 100 days or more (use an absolute time then).
    """
    if td < timedelta(0):
        raise SmppTimeError(f"relative SMPP time cannot be negative: {td}")
    if td.days > MAX_RELATIVE_DAYS:
        raise SmppTimeError(f"relative SMPP time over {MAX_RELATIVE_DAYS} days: {td}")
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{td.days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"
