"""Recipient-local sending hours: when may a message of a class go out to a number (DESIGN §5).

A class has one daily window for working days and one for weekends and holidays ("08:00-22:00", end exclusive). A
number may lie in several candidate zones (Yakutia: UTC+9..+11; federal ranges: anywhere in Russia); an instant is
allowed only when it is inside the window in *every* candidate zone, each zone judged by its own local date and that
date's kind (the zones may be on different dates at the same instant).

Local times come from real ``zoneinfo`` conversions, so historical offsets (the 2011 and 2014 changes, the 2016-2020
regional ones) and zones that still have DST are handled. For speed, :class:`SendWindows` keeps, per (hours, zones,
region, horizon-long period), the allowed UTC intervals over two horizons and answers from them by bisection.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from datetime import date, datetime
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from smppgw.config import QuietHoursConfig, hours_problem
from smppgw.core.policy.calendar import DayKind, WorkCalendar

__all__ = ["ALL_DAY", "DailyWindow", "QuietHours", "SendWindows", "parse_window"]

_DAY: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_PROBE: Final = 6 * 3600  # offset samples this far apart find every zone transition (they are months apart)
_MAX_ENTRIES: Final = 4096

Interval = tuple[int, int]
"""[start, end) in epoch seconds."""


class DailyWindow(NamedTuple):
    """Allowed local time of day, minutes since local midnight: ``0 <= start < end <= 1440``, end exclusive."""

    start: int
    end: int


ALL_DAY: Final = DailyWindow(0, 1440)


def parse_window(text: str) -> DailyWindow:
    """``"HH:MM-HH:MM"`` → :class:`DailyWindow`; ``ValueError`` (the config checker's wording) when malformed."""
    problem = hours_problem(text)
    if problem is not None:
        raise ValueError(problem)
    first, second = text.split("-")
    return DailyWindow(_minutes(first), _minutes(second))


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


class QuietHours(NamedTuple):
    """The windows of one traffic class."""

    working: DailyWindow
    weekend: DailyWindow  # Saturdays, Sundays and holidays

    @classmethod
    def from_config(cls, cfg: QuietHoursConfig) -> QuietHours:
        """Parse a ``[policy.quiet_hours.<class>]`` table; ``ValueError`` when a window is malformed."""
        return cls(parse_window(cfg.working_days), parse_window(cfg.weekends))


class _Spans(NamedTuple):
    """Allowed intervals of one (hours, zones, region), exact within [lo, hi); the last may be cut at ``hi``."""

    lo: int
    hi: int
    starts: list[int]
    ends: list[int]


_Key = tuple[QuietHours, tuple[str, ...], str | None, int]
"""(hours, zones, region with days of its own or None, period of ``at``)."""


class SendWindows:
    """Answers "from when until when may this class go out to these zones" for instants in epoch seconds."""

    def __init__(self, calendar: WorkCalendar, *, horizon_days: int = 14) -> None:
        if horizon_days < 1:
            raise ValueError("horizon_days must be >= 1")
        self.calendar = calendar
        self.horizon = horizon_days * _DAY
        self._regions = calendar.regions
        self._zones: dict[str, ZoneInfo] = {}
        self._spans: dict[_Key, _Spans] = {}

    def next_span(
        self, hours: QuietHours, zones: tuple[str, ...], at: float, region: str | None = None
    ) -> tuple[float, float] | None:
        """``(opens, closes)`` in epoch seconds: the earliest instant ``opens >= at`` at which every zone in ``zones``
        (IANA names) is inside its local window for that local day's kind (working or weekend per the calendar,
        with ``region`` for regional holidays), and ``closes``, the first instant after ``opens`` at which any zone
        leaves its window. If ``at`` is already allowed, ``opens == at``.

        ``closes`` is ``inf`` when both windows are 00:00-24:00, and at most ``opens`` + the horizon otherwise (only
        whole-day windows can make a span that long). None when nothing opens within ``horizon_days`` of ``at``.
        Raises ``ValueError`` for empty ``zones`` and ``ZoneInfoNotFoundError`` for an unknown zone."""
        if hours.working == ALL_DAY and hours.weekend == ALL_DAY:
            return at, math.inf
        if not zones:
            raise ValueError("zones must not be empty")
        # One entry per horizon-long period of ``at``: it covers that period and the next (plus a day each side),
        # so instants far apart (scheduled messages) do not evict each other's entries.
        period = int(at // self.horizon)
        key = (hours, zones, region if region in self._regions else None, period)
        spans = self._spans.get(key)
        if spans is None:
            start = period * self.horizon
            spans = self._build(key, start - _DAY, start + 2 * self.horizon + _DAY)
        i = bisect_right(spans.ends, at)
        if i == len(spans.ends) or spans.starts[i] >= at + self.horizon:
            return None
        opens = max(at, float(spans.starts[i]))
        cap = opens + self.horizon
        if spans.ends[i] >= spans.hi and spans.hi < cap:  # cut at the end of what was computed: look further
            spans = self._build(key, spans.lo, math.ceil(cap) + _DAY)
            i = bisect_right(spans.ends, at)
        return opens, min(float(spans.ends[i]), cap)

    def allowed(self, hours: QuietHours, zones: tuple[str, ...], at: float, region: str | None = None) -> bool:
        """Whether a message may go out at ``at`` (see :meth:`next_span`)."""
        span = self.next_span(hours, zones, at, region)
        return span is not None and span[0] == at

    # ------------------------------------------------------------------ building

    def _build(self, key: _Key, lo: int, hi: int) -> _Spans:
        hours, zones, region, _period = key
        allowed = self._zone_intervals(zones[0], hours, region, lo, hi)
        for name in zones[1:]:
            if not allowed:
                break
            allowed = _intersect(allowed, self._zone_intervals(name, hours, region, lo, hi))
        spans = _Spans(lo, hi, [s for s, _ in allowed], [e for _, e in allowed])
        if len(self._spans) >= _MAX_ENTRIES:
            self._spans.clear()
        self._spans[key] = spans
        return spans

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    def _zone_intervals(self, name: str, hours: QuietHours, region: str | None, lo: int, hi: int) -> list[Interval]:
        """Where one zone is inside its window, within [lo, hi): sorted, disjoint, not touching."""
        zone = self._zone(name)
        pieces = _constant_offsets(zone, lo, hi)
        first = datetime.fromtimestamp(lo, zone).toordinal() - 1
        last = datetime.fromtimestamp(hi, zone).toordinal() + 1
        out: list[Interval] = []
        for ordinal in range(first, last + 1):
            kind = self.calendar.kind(date.fromordinal(ordinal), region)
            window = hours.working if kind is DayKind.WORKING else hours.weekend
            midnight = (ordinal - _EPOCH_ORDINAL) * _DAY  # local wall clock as if it were UTC
            wall_start, wall_end = midnight + window.start * 60, midnight + window.end * 60
            for piece_start, piece_end, offset in pieces:
                start = max(piece_start, wall_start - offset)
                end = min(piece_end, wall_end - offset)
                if start < end:
                    out.append((start, end))
        return _merge(out)


# ---------------------------------------------------------------------------------------------------------------------
# Interval helpers
# ---------------------------------------------------------------------------------------------------------------------


def _offset(zone: ZoneInfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, zone).utcoffset()
    return 0 if delta is None else delta.days * _DAY + delta.seconds


def _constant_offsets(zone: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """[lo, hi) cut into pieces ``(start, end, utc_offset_seconds)`` of constant offset."""
    pieces = []
    start = probe = lo
    offset = _offset(zone, lo)
    while probe < hi:
        ahead = min(probe + _PROBE, hi)
        if _offset(zone, ahead) == offset:
            probe = ahead
            continue
        same, other = probe, ahead  # bisect to the first second of the new offset
        while other - same > 1:
            mid = (same + other) // 2
            if _offset(zone, mid) == offset:
                same = mid
            else:
                other = mid
        pieces.append((start, other, offset))
        start = probe = other
        offset = _offset(zone, other)
    pieces.append((start, hi, offset))
    return pieces


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted union, touching intervals joined."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Intersection of two sorted, disjoint interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
