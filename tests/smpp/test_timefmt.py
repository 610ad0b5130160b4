"""SMPP time formats (spec 7.1.1): spec examples, edge cases, round trips, and "malformed input raises only
SmppTimeError"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.errors import SmppError
from smppgw.smpp.timefmt import SmppTimeError, format_absolute_time, format_relative_time, parse_smpp_time

NOW = datetime(2024, 1, 31, 12, 0, 0, tzinfo=UTC)
MSK = timezone(timedelta(hours=3))


def test_empty_means_not_given() -> None:
    assert parse_smpp_time("", NOW) is None


def test_spec_relative_example() -> None:
    # Spec 7.1.1.2: "020610233429000R" = 2 years, 6 months, 10 days, 23 hours, 34 minutes and 29 seconds from now.
    assert parse_smpp_time("020610233429000R", NOW) == datetime(2026, 8, 11, 11, 34, 29, tzinfo=UTC)


def test_absolute_example_with_tenths() -> None:
    # developer.nvia.com SMPP date-time page: 10 April 2012 10:11:12.3 written as "120410101112300+".
    parsed = parse_smpp_time("120410101112300+", NOW)
    assert parsed == datetime(2012, 4, 10, 10, 11, 12, 300_000, tzinfo=UTC)
    assert parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("240601123000012+", datetime(2024, 6, 1, 9, 30, tzinfo=UTC)),  # Moscow, +03:00
        ("240601123000020-", datetime(2024, 6, 1, 17, 30, tzinfo=UTC)),  # -05:00
        ("240601123000023+", datetime(2024, 6, 1, 6, 45, tzinfo=UTC)),  # +05:45 (Nepal)
        ("240101003000048+", datetime(2023, 12, 31, 12, 30, tzinfo=UTC)),  # +12:00 crosses the year
        ("991231235959948-", datetime(2100, 1, 1, 11, 59, 59, 900_000, tzinfo=UTC)),
        ("000101000000000+", datetime(2000, 1, 1, tzinfo=UTC)),
        ("240229000000000+", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_absolute(value: str, expected: datetime) -> None:
    assert parse_smpp_time(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "delta"),
    [
        ("000001000000000R", timedelta(days=1)),  # NowSMS forum: 7 days is 000007000000000R
        ("000007000000000R", timedelta(days=7)),
        ("000000010203000R", timedelta(hours=1, minutes=2, seconds=3)),
        ("000000480000000R", timedelta(hours=48)),  # relative fields are not range-checked
        ("000000000000000R", timedelta(0)),
        ("000000000000999R", timedelta(0)),  # t and nn are ignored in relative times
    ],
)
def test_relative(value: str, delta: timedelta) -> None:
    assert parse_smpp_time(value, NOW) == NOW + delta


def test_relative_months_are_calendar_months_clamped() -> None:
    assert parse_smpp_time("000100000000000R", NOW) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert parse_smpp_time("010000000000000R", NOW) == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_smpp_time("001300000000000R", NOW) == datetime(2025, 2, 28, 12, tzinfo=UTC)


def test_relative_is_from_now_in_any_zone_and_returns_utc() -> None:
    now = datetime(2024, 3, 31, 1, 30, tzinfo=MSK)
    parsed = parse_smpp_time("000000010000000R", now)
    assert parsed == now + timedelta(hours=1)
    assert parsed is not None and parsed.tzinfo is UTC


def test_relative_overflow_is_a_time_error() -> None:
    with pytest.raises(SmppTimeError):
        parse_smpp_time("990000000000000R", datetime(9950, 1, 1, tzinfo=UTC))
    with pytest.raises(SmppTimeError):
        parse_smpp_time("000099000000000R", datetime(9999, 12, 1, tzinfo=UTC))


def test_naive_now_is_a_caller_bug_not_a_time_error() -> None:
    with pytest.raises(ValueError, match="aware") as info:
        parse_smpp_time("000001000000000R", datetime(2024, 1, 1))
    assert not isinstance(info.value, SmppTimeError)


@pytest.mark.parametrize(
    "value",
    [
        "2406011230",  # receipt-style, too short
        "24060112300001+",
        "2406011230000012+",
        "240601123000012 ",
        "240601123000012X",
        "241301123000000+",  # month 13
        "240001123000000+",  # month 0
        "240230123000000+",  # 30 February
        "240601243000000+",  # hour 24
        "240601126000000+",  # minute 60
        "240601123060000+",  # second 60
        "240601123000049+",  # nn over 48
        "24060112300a000+",
        "24060112300\u0661000+",  # ARABIC-INDIC DIGIT ONE: a digit to str.isdigit, not to SMPP
        " 40601123000000+",
        "-40601123000000+",
        "+00000000000000R",
        "0000010000000 0R",
    ],
)
def test_malformed(value: str) -> None:
    with pytest.raises(SmppTimeError):
        parse_smpp_time(value, NOW)


def test_error_classes() -> None:
    assert issubclass(SmppTimeError, ValueError)
    assert issubclass(SmppTimeError, SmppError)


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (datetime(2024, 6, 1, 12, 30, tzinfo=MSK), "240601123000012+"),
        (datetime(2024, 6, 1, 12, 30, tzinfo=UTC), "240601123000000+"),
        (datetime(2024, 6, 1, 12, 30, 5, 950_000, tzinfo=timezone(timedelta(hours=-5))), "240601123005920-"),
        (datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=5, minutes=45))), "240601123000023+"),
        (datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=-12))), "240601123000048-"),
        # An offset SMPP cannot carry (not whole quarter hours, or beyond ±12:00): same instant, written in UTC.
        (datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(hours=14))), "240531223000000+"),
        (datetime(2024, 6, 1, 12, 30, tzinfo=timezone(timedelta(minutes=20))), "240601121000000+"),
    ],
)
def test_format_absolute(dt: datetime, expected: str) -> None:
    assert format_absolute_time(dt) == expected
    assert parse_smpp_time(expected, NOW) == dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)


def test_format_absolute_rejects_naive_and_unwritable_years() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_absolute_time(datetime(2024, 1, 1))
    with pytest.raises(SmppTimeError):
        format_absolute_time(datetime(2100, 1, 1, tzinfo=UTC))
    with pytest.raises(SmppTimeError):
        format_absolute_time(datetime(1999, 12, 31, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(0), "000000000000000R"),
        (timedelta(days=1), "000001000000000R"),
        (timedelta(hours=36, minutes=5, seconds=7, microseconds=999_999), "000001120507000R"),
        (timedelta(days=99, hours=23, minutes=59, seconds=59), "000099235959000R"),
    ],
)
def test_format_relative(td: timedelta, expected: str) -> None:
    assert format_relative_time(td) == expected


@pytest.mark.parametrize("td", [timedelta(days=100), timedelta(seconds=-1), timedelta(microseconds=-1)])
def test_format_relative_out_of_range(td: timedelta) -> None:
    with pytest.raises(SmppTimeError):
        format_relative_time(td)


_OFFSETS = st.integers(-48, 48).map(lambda quarters: timezone(timedelta(minutes=15 * quarters)))
_TENTHS = st.integers(0, 9).map(lambda tenths: tenths * 100_000)


@settings(max_examples=500)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59), timezones=_OFFSETS),
    _TENTHS,
)
def test_absolute_round_trip_to_the_tenth(dt: datetime, tenths: int) -> None:
    dt = dt.replace(microsecond=tenths)
    text = format_absolute_time(dt)
    assert len(text) == 16
    offset = dt.utcoffset()
    assert offset is not None
    quarters = int(offset / timedelta(minutes=15))
    assert text[13:] == f"{abs(quarters):02d}{'-' if quarters < 0 else '+'}"
    parsed = parse_smpp_time(text, NOW)
    assert parsed == dt
    assert parsed is not None and parsed.tzinfo is UTC


@settings(max_examples=500)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=_OFFSETS))
def test_absolute_truncates_below_tenths(dt: datetime) -> None:
    assert parse_smpp_time(format_absolute_time(dt), NOW) == dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)


@settings(max_examples=500)
@given(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=99, hours=23, minutes=59, seconds=59)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=_OFFSETS),
)
def test_relative_round_trip_to_the_second(td: timedelta, now: datetime) -> None:
    assert parse_smpp_time(format_relative_time(td), now) == now + td - timedelta(microseconds=td.microseconds)


def _parse_or_error(value: str) -> None:
    try:
        result = parse_smpp_time(value, NOW)
    except SmppTimeError:
        return
    assert result is None if value == "" else result is not None and result.tzinfo is UTC


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_raises_only_smpp_time_error(value: str) -> None:
    _parse_or_error(value)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789+-R \u0661", min_size=15, max_size=17))
def test_near_valid_text_raises_only_smpp_time_error(value: str) -> None:
    _parse_or_error(value)
