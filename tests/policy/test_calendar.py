"""The Russian production calendar: shipped files, the art. 112 fallback, file validation, overrides."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.numbering import load_zones
from smppgw.core.policy.calendar import FIXED_HOLIDAYS, CalendarError, DayKind, WorkCalendar, default_year

CAL = WorkCalendar.load()
W, H = DayKind.WORKING, DayKind.WEEKEND
HEADER = "date,kind,regions,note\n"


def working_days(calendar: WorkCalendar, year: int, region: str | None = None) -> int:
    first = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - first).days
    return sum(calendar.kind(first + timedelta(n), region) is W for n in range(days))


def test_shipped_years() -> None:
    assert {2025, 2026, 2027} <= CAL.years
    assert CAL.regions <= set(load_zones())


@pytest.mark.parametrize(("year", "count"), [(2025, 247), (2026, 247)])
def test_working_day_totals_match_the_official_calendars(year: int, count: int) -> None:
    assert working_days(CAL, year) == count


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        *((date(2026, 1, d), H) for d in range(1, 12)),  # Jan 1-8 holidays, Jan 9 moved from Jan 3, 10-11 weekend
        (date(2026, 1, 12), W),
        (date(2026, 2, 23), H),
        (date(2026, 3, 9), H),  # Mar 8 was a Sunday
        (date(2026, 5, 11), H),  # May 9 was a Saturday
        (date(2026, 6, 12), H),
        (date(2026, 11, 4), H),
        (date(2026, 12, 31), H),  # moved from Jan 4
        (date(2026, 3, 16), W),  # an ordinary Monday
        (date(2026, 3, 14), H),  # an ordinary Saturday
        (date(2025, 11, 1), W),  # working Saturday (decree No. 1335)
        (date(2025, 11, 3), H),
        (date(2025, 5, 2), H),
        (date(2025, 5, 8), H),
        (date(2025, 6, 13), H),
        (date(2025, 12, 31), H),
        (date(2025, 12, 30), W),
        (date(2027, 1, 8), H),
        (date(2027, 5, 3), H),  # provisional: May 1 is a Saturday
        (date(2027, 6, 14), H),
    ],
)
def test_known_federal_days(day: date, kind: DayKind) -> None:
    assert CAL.kind(day) is kind
    assert CAL.kind(day, "Город Москва") is kind


def test_regional_days() -> None:
    tatarstan, bashkortostan = "Республика Татарстан", "Республика Башкортостан"
    assert CAL.kind(date(2026, 3, 20), tatarstan) is H  # Uraza Bayram, a Friday
    assert CAL.kind(date(2026, 3, 20), bashkortostan) is H
    assert CAL.kind(date(2026, 3, 20)) is W
    assert CAL.kind(date(2026, 3, 20), "Республика Татарстан ") is W  # names must match exactly
    assert CAL.kind(date(2025, 10, 13), bashkortostan) is H  # Republic Day moved from a Saturday
    assert CAL.kind(date(2025, 9, 1), tatarstan) is W  # Tatarstan does not move Republic Day (a Saturday)
    assert working_days(CAL, 2025, tatarstan) == 247 - 2  # Jun 6 and Nov 6 (the republic's own figure: 245)


def test_year_without_a_file_falls_back_to_art_112() -> None:
    assert 2031 not in CAL.years
    for month, day in FIXED_HOLIDAYS:
        assert CAL.kind(date(2031, month, day)) is H
    assert CAL.kind(date(2031, 3, 10)) is H  # Mar 8, 2031 is a Saturday: the day off moves to Monday
    assert CAL.kind(date(2031, 3, 11)) is W
    assert CAL.kind(date(2031, 1, 9)) is W  # January weekend holidays move only by decree
    assert CAL.kind(date(2031, 7, 5)) is H and CAL.kind(date(2031, 7, 7)) is W
    assert CAL.kind(date(1, 1, 1)) is H and CAL.kind(date(9999, 12, 31)) is W  # never raises
    assert 2031 not in CAL.years


def test_default_rule_reproduces_a_year_without_decree_transfers() -> None:
    """2027 ships as art. 112 plus the weekend rule only, so it must equal the built-in default (federal days)."""
    rows = WorkCalendar.from_rows([])
    for n in range(365):
        day = date(2027, 1, 1) + timedelta(n)
        assert CAL.kind(day) is rows.kind(day), day


@given(st.integers(min_value=1900, max_value=2200))
@settings(max_examples=100, deadline=None)
def test_default_year_properties(year: int) -> None:
    rows = default_year(year)
    days = [day for day, _, _ in rows]
    assert (
        len(days)
        == len(set(days))
        == len(FIXED_HOLIDAYS) + sum(date(year, m, d).weekday() >= 5 for m, d in FIXED_HOLIDAYS if m != 1)
    )
    assert all(day.year == year for day in days)


def test_from_rows() -> None:
    cal = WorkCalendar.from_rows(
        [(date(2030, 6, 3), "holiday", ()), (date(2030, 6, 8), "workday", ()), (date(2030, 6, 4), "holiday", ("X",))]
    )
    assert cal.years == frozenset({2030})
    assert cal.kind(date(2030, 6, 3)) is H
    assert cal.kind(date(2030, 6, 8)) is W
    assert cal.kind(date(2030, 6, 4)) is W and cal.kind(date(2030, 6, 4), "X") is H
    assert cal.kind(date(2030, 6, 12)) is W  # a year given by rows is complete: no art. 112 default added
    with pytest.raises(CalendarError):
        WorkCalendar.from_rows([(date(2030, 1, 1), "vacation", ())])


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_extra_dir_overrides_whole_years(tmp_path: Path) -> None:
    write(tmp_path, "ru-2027.csv", "# decree\n" + HEADER + "2027-11-05,holiday,,\n2027-11-13,workday,,\n")
    write(tmp_path, "ru-2040.csv", HEADER)
    write(tmp_path, "notes.txt", "ignored")
    cal = WorkCalendar.load(tmp_path)
    assert {2025, 2026, 2027, 2040} <= cal.years
    assert cal.kind(date(2027, 11, 5)) is H and cal.kind(date(2027, 11, 13)) is W
    assert cal.kind(date(2027, 5, 3)) is W  # the shipped 2027 is replaced, not merged
    assert cal.kind(date(2027, 1, 1)) is W  # (the override lists no holidays at all)
    assert cal.kind(date(2040, 1, 2)) is W  # an empty file: no holidays that year
    assert cal.kind(date(2026, 1, 9)) is H  # other years stay


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("ru-2027.csv", "date,kind,note\n", "ru-2027.csv:1"),
        ("ru-2027.csv", "", "ru-2027.csv:1"),
        ("ru-2027.csv", "# c\n" + HEADER + "2027-01-01,holiday,,\n2027-02-30,holiday,,\n", "ru-2027.csv:4"),
        ("ru-2027.csv", HEADER + "2027-1-01,holiday,,\n", "ru-2027.csv:2"),
        ("ru-2027.csv", HEADER + "2026-01-01,holiday,,\n", "ru-2027.csv:2"),
        ("ru-2027.csv", HEADER + "\n2027-01-01,off,,\n", "ru-2027.csv:3"),
        ("ru-2027.csv", HEADER + "2027-01-01,holiday,\n", "ru-2027.csv:2"),
        ("ru-2027.csv", HEADER + "2027-03-10,workday,,\n", "ru-2027.csv:2"),  # a Wednesday
        ("ru-2027.csv", HEADER + "2027-03-10,holiday,Татарстан,\n", "ru-2027.csv:2"),
        ("ru-2027.csv", HEADER + "2027-03-10,holiday,,\n2027-03-10,holiday,,\n", "ru-2027.csv:3"),
        ("ru-27.csv", HEADER, "ru-27.csv"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CalendarError, match=r"^" + str(path.parent).replace("\\", "\\\\") + "/" + where):
        WorkCalendar.load(tmp_path)


def test_same_date_in_different_regions_is_fine(tmp_path: Path) -> None:
    write(
        tmp_path,
        "ru-2027.csv",
        HEADER + "2027-03-10,holiday,,\n2027-03-10,holiday,Республика Татарстан,\n2027-03-11,holiday,"
        '"Республика Татарстан;Республика Башкортостан",two regions\n',
    )
    cal = WorkCalendar.load(tmp_path)
    assert cal.kind(date(2027, 3, 11), "Республика Башкортостан") is H
    assert cal.kind(date(2027, 3, 11)) is W


def test_missing_extra_dir(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="not a directory"):
        WorkCalendar.load(tmp_path / "nope")
    assert WorkCalendar.load("").years == CAL.years  # the config's "no extra calendars"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "ru-2027.csv").write_bytes(HEADER.encode() + "2027-03-10,holiday,Татарстан,\n".encode("cp1251"))
    with pytest.raises(CalendarError, match=r"ru-2027\.csv: not UTF-8"):
        WorkCalendar.load(tmp_path)
