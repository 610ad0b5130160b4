"""Recipient-local sending windows, checked against a brute-force oracle built on zoneinfo and the calendar."""

from __future__ import annotations

import calendar as stdlib_calendar
import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smppgw.config import DEFAULT_QUIET_HOURS, QuietHoursConfig, hours_problem
from smppgw.core.numbering import load_zones
from smppgw.core.policy.calendar import DayKind, WorkCalendar
from smppgw.core.policy.windows import ALL_DAY, DailyWindow, QuietHours, SendWindows, parse_window

CAL = WorkCalendar.load()
WINDOWS = SendWindows(CAL)
HORIZON = 14 * 86_400
ZONES = {region: zone.candidates for region, zone in load_zones().items()}
REGIONS = sorted(ZONES)
COLLECTION = QuietHours.from_config(DEFAULT_QUIET_HOURS["collection"])
MARKETING = QuietHours.from_config(DEFAULT_QUIET_HOURS["marketing"])
RF = "Российская Федерация"
YAKUTIA = "Республика Саха (Якутия)"
DNR = "Донецкая Народная Республика"  # candidates include Europe/Kyiv, which still has DST
SPECIAL = [
    RF,
    YAKUTIA,
    "Саратовская область",
    "Ульяновская область",
    "Астраханская область",
    "Волгоградская область",
    "Калининградская область",
    "Камчатский край",
    "Республика Татарстан",
    "Республика Башкортостан",
    DNR,
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return float(stdlib_calendar.timegm((year, month, day, hour, minute, 0)))


_ZI: dict[str, ZoneInfo] = {}


def zone_info(name: str) -> ZoneInfo:
    return _ZI.setdefault(name, ZoneInfo(name))


def inside(hours: QuietHours, zone: str, t: float, region: str | None) -> bool:
    """Oracle: is ``zone``'s wall clock at ``t`` inside the window of its local day's kind?"""
    local = datetime.fromtimestamp(t, zone_info(zone))
    kind = CAL.kind(local.date(), region)
    window = hours.working if kind is DayKind.WORKING else hours.weekend
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return window.start * 60 <= seconds < window.end * 60


def oracle(hours: QuietHours, zones: tuple[str, ...], t: float, region: str | None) -> bool:
    return all(inside(hours, zone, t, region) for zone in zones)


def window_edges(hours: QuietHours, zones: tuple[str, ...], lo: float, hi: float) -> list[float]:
    """Every instant in [lo, hi) at which some zone's wall clock shows a window start or end (both folds)."""
    edges = set()
    for name in zones:
        zone = zone_info(name)
        first = datetime.fromtimestamp(lo, zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(hi, zone).date() + timedelta(days=1)
        minutes = {m for w in hours for m in w}
        day = first
        while day <= last:
            for m in minutes:
                wall = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=m)
                for fold in (0, 1):
                    t = wall.replace(fold=fold).timestamp()
                    if lo <= t < hi:
                        edges.add(t)
            day += timedelta(days=1)
    return sorted(edges)


# ---------------------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------------------


def instants(first: datetime, last: datetime) -> st.SearchStrategy[float]:
    lo, hi = stdlib_calendar.timegm(first.timetuple()), stdlib_calendar.timegm(last.timetuple())
    return st.integers(lo * 1000, hi * 1000).map(lambda ms: ms / 1000)


def near(*days: date) -> st.SearchStrategy[float]:
    """Instants within two days of the given dates (transitions, holidays)."""
    return st.one_of(
        [instants(datetime(d.year, d.month, d.day) - timedelta(days=2), datetime(d.year, d.month, d.day)) for d in days]
    )


TRANSITIONS = [
    date(2011, 3, 27),  # Russia to permanent "summer" time
    date(2014, 10, 26),  # back by one hour
    date(2016, 3, 28),  # Ulyanovsk, Astrakhan to +4
    date(2016, 12, 5),  # Saratov to +4
    date(2018, 10, 29),  # Volgograd to +4
    date(2020, 12, 28),  # Volgograd back to +3
    date(2026, 3, 30),  # Europe/Kyiv DST
    date(2026, 10, 26),
]
HOLIDAYS = [
    date(2025, 1, 2),
    date(2025, 5, 3),
    date(2025, 11, 2),
    date(2026, 1, 2),
    date(2026, 1, 10),
    date(2027, 5, 2),
]

AT = st.one_of(
    instants(datetime(2025, 1, 1), datetime(2028, 1, 1)),
    instants(datetime(2010, 1, 1), datetime(2015, 1, 1)),
    near(*TRANSITIONS),
    near(*HOLIDAYS),
)
REGION = st.one_of(st.sampled_from(SPECIAL), st.sampled_from(REGIONS))


@st.composite
def windows(draw: st.DrawFn) -> DailyWindow:
    start = draw(st.one_of(st.sampled_from([0, 60, 120, 180, 480, 540]), st.integers(0, 1439)))
    end = draw(st.one_of(st.sampled_from([1440, 1320, 1200, 240]), st.integers(start + 1, 1440)))
    return DailyWindow(start, end) if start < end else DailyWindow(start, 1440)


HOURS = st.one_of(st.sampled_from([COLLECTION, MARKETING]), st.builds(QuietHours, windows(), windows()))


# ---------------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------------


def check_span(hours: QuietHours, region: str, at: float, windows_: SendWindows = WINDOWS) -> None:
    zones = ZONES[region]
    span = windows_.next_span(hours, zones, at, region)
    if span is None:
        end = at + HORIZON
        points = [at + (end - at) * k / 200 for k in range(200)] + window_edges(hours, zones, at, end)
        assert not any(oracle(hours, zones, t, region) for t in points)
        assert not windows_.allowed(hours, zones, at, region)
        return
    opens, closes = span
    assert at <= opens < at + HORIZON
    if closes == math.inf:
        assert hours == QuietHours(ALL_DAY, ALL_DAY) and opens == at
        return
    assert opens < closes <= opens + HORIZON
    assert windows_.allowed(hours, zones, at, region) is (opens == at)
    # allowed throughout [opens, closes)
    inner = [opens + (closes - opens) * k / 50 for k in range(50)] + window_edges(hours, zones, opens, closes)
    assert all(oracle(hours, zones, t, region) for t in inner), (opens, closes)
    assert oracle(hours, zones, closes - 0.001, region)
    if closes < opens + HORIZON:
        assert not oracle(hours, zones, closes, region)
    # nothing allowed in [at, opens)
    if opens > at:
        assert not oracle(hours, zones, opens - 0.001, region)
        before = [at + (opens - at) * k / 50 for k in range(50)] + window_edges(hours, zones, at, opens)
        assert not any(oracle(hours, zones, t, region) for t in before)


@given(region=REGION, at=AT, hours=HOURS)
@settings(max_examples=300, deadline=None)
@example(region=RF, at=utc(2026, 3, 14, 7, 30), hours=COLLECTION)
@example(region=YAKUTIA, at=utc(2026, 1, 8, 23, 59), hours=COLLECTION)
@example(region=DNR, at=utc(2026, 3, 29, 0), hours=QuietHours(*[DailyWindow(150, 300)] * 2))
@example(region=DNR, at=utc(2026, 10, 24, 23), hours=QuietHours(*[DailyWindow(200, 230)] * 2))
@example(region="Город Москва", at=utc(2014, 10, 25, 21), hours=QuietHours(*[DailyWindow(60, 150)] * 2))
@example(region=RF, at=utc(2026, 3, 10), hours=QuietHours(*[DailyWindow(540, 720)] * 2))  # never: None
def test_next_span_matches_the_oracle(region: str, at: float, hours: QuietHours) -> None:
    check_span(hours, region, at)


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_collection_hours(region: str) -> None:
    for at in (utc(2026, 1, 8, 23, 30), utc(2025, 10, 31, 19, 0), utc(2026, 3, 19, 20, 15), utc(2013, 6, 1, 3, 0)):
        check_span(COLLECTION, region, at)


@given(region=REGION, start=AT, steps=st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=40), hours=HOURS)
@settings(max_examples=60, deadline=None)
def test_cached_answers_equal_fresh_ones(region: str, start: float, steps: list[int], hours: QuietHours) -> None:
    shared = SendWindows(CAL)
    at = start
    for step in steps:
        at += step
        fresh = SendWindows(CAL).next_span(hours, ZONES[region], at, region)
        assert shared.next_span(hours, ZONES[region], at, region) == fresh


# ---------------------------------------------------------------------------------------------------------------------
# Exact values
# ---------------------------------------------------------------------------------------------------------------------

MOSCOW = ("Europe/Moscow",)


@pytest.mark.parametrize(
    ("zones", "at", "opens", "closes"),
    [
        # Tuesday 2026-03-10, 07:00 MSK: working day, 08-22 local
        (MOSCOW, utc(2026, 3, 10, 4), utc(2026, 3, 10, 5), utc(2026, 3, 10, 19)),
        (MOSCOW, utc(2026, 3, 10, 12), utc(2026, 3, 10, 12), utc(2026, 3, 10, 19)),
        (MOSCOW, utc(2026, 3, 10, 19), utc(2026, 3, 11, 5), utc(2026, 3, 11, 19)),  # 22:00 is already closed
        # Friday night → Saturday 09-20
        (MOSCOW, utc(2026, 3, 13, 20), utc(2026, 3, 14, 6), utc(2026, 3, 14, 17)),
        # Saturday 2025-11-01 was a working day, Monday 2025-11-03 a holiday
        (MOSCOW, utc(2025, 11, 1, 4), utc(2025, 11, 1, 5), utc(2025, 11, 1, 19)),
        (MOSCOW, utc(2025, 11, 2, 19), utc(2025, 11, 3, 6), utc(2025, 11, 3, 17)),
        # New Year 2026: holidays through Sunday 2026-01-11
        (MOSCOW, utc(2026, 1, 9, 4), utc(2026, 1, 9, 6), utc(2026, 1, 9, 17)),
        (MOSCOW, utc(2026, 1, 11, 18), utc(2026, 1, 12, 5), utc(2026, 1, 12, 19)),
        # Saratov UTC+4, Volgograd UTC+3 since 2020-12-27, Kaliningrad UTC+2, Kamchatka UTC+12
        (("Europe/Saratov",), utc(2026, 3, 10, 3), utc(2026, 3, 10, 4), utc(2026, 3, 10, 18)),
        (("Europe/Volgograd",), utc(2026, 3, 10, 3), utc(2026, 3, 10, 5), utc(2026, 3, 10, 19)),
        (("Europe/Kaliningrad",), utc(2026, 5, 11, 5), utc(2026, 5, 11, 7), utc(2026, 5, 11, 18)),
        (("Asia/Kamchatka",), utc(2026, 1, 8, 20), utc(2026, 1, 8, 21), utc(2026, 1, 9, 8)),
        (("Asia/Kamchatka",), utc(2026, 1, 11, 10), utc(2026, 1, 11, 20), utc(2026, 1, 12, 10)),
        # Yakutia: 08:00 at +9 .. 22:00 at +11, i.e. 08:00-20:00 Yakutsk time
        (ZONES[YAKUTIA], utc(2026, 3, 10, 0), utc(2026, 3, 10, 0), utc(2026, 3, 10, 11)),
        (ZONES[YAKUTIA], utc(2026, 3, 10, 11), utc(2026, 3, 10, 23), utc(2026, 3, 11, 11)),
        (ZONES[YAKUTIA], utc(2026, 3, 13, 12), utc(2026, 3, 14, 0), utc(2026, 3, 14, 9)),  # weekend 09-20
        # Anywhere in Russia (UTC+2..+12): working days 06:00-10:00 UTC, weekends 07:00-08:00 UTC
        (ZONES[RF], utc(2026, 3, 10, 0), utc(2026, 3, 10, 6), utc(2026, 3, 10, 10)),
        (ZONES[RF], utc(2026, 3, 13, 11), utc(2026, 3, 14, 7), utc(2026, 3, 14, 8)),
        # a day that is a working day in the west and already a weekend in the east: Friday 2026-03-13 10:00 UTC
        # is Saturday in Kamchatka from 12:00 UTC: the RF span that day still ends at 10:00 UTC (22:00 at +12)
        (ZONES[RF], utc(2026, 3, 13, 9, 30), utc(2026, 3, 13, 9, 30), utc(2026, 3, 13, 10)),
        # history: Moscow was UTC+4 2011-2014; Volgograd UTC+4 2018-10-28..2020-12-27; Saratov +3 until 2016-12-04
        (MOSCOW, utc(2013, 3, 12, 3), utc(2013, 3, 12, 4), utc(2013, 3, 12, 18)),
        (("Europe/Volgograd",), utc(2019, 6, 4, 3), utc(2019, 6, 4, 4), utc(2019, 6, 4, 18)),
        (("Europe/Saratov",), utc(2016, 11, 29, 3), utc(2016, 11, 29, 5), utc(2016, 11, 29, 19)),
        (("Europe/Saratov",), utc(2016, 12, 6, 3), utc(2016, 12, 6, 4), utc(2016, 12, 6, 18)),
    ],
)
def test_collection_hours_table(zones: tuple[str, ...], at: float, opens: float, closes: float) -> None:
    assert WINDOWS.next_span(COLLECTION, zones, at) == (opens, closes)


def test_regional_holiday_uses_weekend_hours() -> None:
    at = utc(2026, 3, 20, 4)  # Friday 07:00 MSK, Uraza Bayram in Tatarstan
    zones = ("Europe/Moscow",)
    tatarstan = "Республика Татарстан"
    assert WINDOWS.next_span(COLLECTION, zones, at, tatarstan) == (utc(2026, 3, 20, 6), utc(2026, 3, 20, 17))
    assert WINDOWS.next_span(COLLECTION, zones, at, "Город Москва") == (utc(2026, 3, 20, 5), utc(2026, 3, 20, 19))
    assert WINDOWS.next_span(COLLECTION, zones, at) == (utc(2026, 3, 20, 5), utc(2026, 3, 20, 19))


def test_always_open_and_errors() -> None:
    always = QuietHours(ALL_DAY, ALL_DAY)
    assert WINDOWS.next_span(always, ZONES[RF], 1.5e9) == (1.5e9, math.inf)
    assert WINDOWS.allowed(always, MOSCOW, 1.5e9)
    with pytest.raises(ValueError, match="empty"):
        WINDOWS.next_span(COLLECTION, (), 1.5e9)
    with pytest.raises(ValueError, match="horizon"):
        SendWindows(CAL, horizon_days=0)


def test_no_window_within_the_horizon() -> None:
    morning = QuietHours(DailyWindow(540, 720), DailyWindow(540, 720))  # 09-12 cannot hold at +2 and +12 at once
    assert WINDOWS.next_span(morning, ZONES[RF], utc(2026, 3, 10)) is None
    assert not WINDOWS.allowed(morning, ZONES[RF], utc(2026, 3, 10))


def test_long_spans_are_capped_at_the_horizon() -> None:
    short = SendWindows(CAL, horizon_days=1)
    hours = QuietHours(DailyWindow(1, 1440), ALL_DAY)  # weekends: whole days, joined to Friday's and Monday's
    at = utc(2026, 3, 13, 12)  # Friday 15:00 MSK
    assert short.next_span(hours, MOSCOW, at) == (at, at + 86_400)
    assert WINDOWS.next_span(hours, MOSCOW, at) == (at, utc(2026, 3, 15, 21))  # Sunday 24:00 MSK


def test_parse_window() -> None:
    assert parse_window("08:00-22:00") == DailyWindow(480, 1320)
    assert parse_window("00:00-24:00") == ALL_DAY
    assert parse_window("09:30-09:31") == DailyWindow(570, 571)
    for bad in ("8:00-22:00", "22:00-08:00", "10:00-10:00", "00:00-24:01", "08:60-09:00", "08:00 - 22:00", ""):
        with pytest.raises(ValueError) as info:
            parse_window(bad)
        assert str(info.value) == hours_problem(bad)


def test_from_config() -> None:
    assert QuietHours.from_config(QuietHoursConfig()) == QuietHours(ALL_DAY, ALL_DAY)
    assert QuietHours(DailyWindow(480, 1320), DailyWindow(540, 1200)) == COLLECTION
    with pytest.raises(ValueError):
        QuietHours.from_config(QuietHoursConfig(weekends="20:00-09:00"))
