"""The Russian production calendar: which days are working days, federally and per region.

Files ``ru-YYYY.csv`` (shipped in ``smppgw/data/calendar``; a directory of extra files overrides whole years) hold the
exceptions to "Monday-Friday work, Saturday-Sunday rest" for one year::

    date,kind,regions,note
    2025-11-01,workday,,working Saturday (decree No. 1335)
    2025-11-03,holiday,,day off moved from 2025-11-01

* ``kind``: ``holiday`` (a non-working day: public holiday or a day off moved there) or ``workday`` (a Saturday or
  Sunday made a working day by a transfer decree);
* ``regions``: empty for a federal day, else ``;``-separated region names spelled as in ``region_tz.csv``;
* ``note``: free text. Blank lines and lines starting with ``#`` are ignored.

A year without a file falls back to Labour Code art. 112: Saturdays and Sundays, the fixed public holidays, and a
holiday falling on a weekend moves the day off to the next working day (except January 1-8).

Files are read only by :meth:`WorkCalendar.load`; :meth:`WorkCalendar.kind` is dictionary lookups.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Final

__all__ = ["FIXED_HOLIDAYS", "CalendarError", "DayKind", "WorkCalendar", "default_year"]


class CalendarError(ValueError):
    """A calendar file is malformed; the message names the file and line."""


class DayKind(enum.Enum):
    """How a day counts for sending hours."""

    WORKING = "working"
    WEEKEND = "weekend"  # a Saturday, a Sunday or a non-working holiday


FIXED_HOLIDAYS: Final[tuple[tuple[int, int], ...]] = (
    *((1, d) for d in range(1, 9)),  # New Year holidays and Christmas (January 1-8)
    (2, 23),  # Defender of the Fatherland Day
    (3, 8),  # International Women's Day
    (5, 1),  # Spring and Labour Day
    (5, 9),  # Victory Day
    (6, 12),  # Russia Day
    (11, 4),  # National Unity Day
)
"""Non-working public holidays of Labour Code art. 112 as (month, day)."""

_HEADER: Final = ("date", "kind", "regions", "note")
_KINDS: Final = {"holiday": DayKind.WEEKEND, "workday": DayKind.WORKING}
_FILE_RE: Final = re.compile(r"ru-(\d{4})\.csv", re.ASCII)
_DATE_RE: Final = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)
_SHIPPED: Final = "calendar"

Row = tuple[date, str, tuple[str, ...]]
"""One calendar entry: (day, ``"holiday"`` or ``"workday"``, region names; empty = federal)."""


def _is_weekend(day: date) -> bool:
    return day.weekday() >= 5


def default_year(year: int) -> list[Row]:
    """The federal holidays of ``year`` by art. 112 alone: fixed holidays, and a weekend holiday (not January 1-8)
    moves the day off to the next working day."""
    holidays = [date(year, month, day) for month, day in FIXED_HOLIDAYS]
    off = set(holidays)
    for day in holidays:
        if day.month == 1 or not _is_weekend(day):
            continue
        moved = day + timedelta(days=1)
        while _is_weekend(moved) or moved in off:
            moved += timedelta(days=1)
        off.add(moved)
    return [(day, "holiday", ()) for day in sorted(off)]


class WorkCalendar:
    """Working days and weekends by date, federally and per region."""

    def __init__(self) -> None:
        self._days: dict[date, DayKind] = {}  # federal exceptions to Monday-Friday / Saturday-Sunday
        self._regional: dict[str, dict[date, DayKind]] = {}
        self._years: set[int] = set()  # years given by files or rows
        self._covered: set[int] = set()  # ``_years`` plus years filled in by :func:`default_year`

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, extra_dir: str | Path | None = None) -> WorkCalendar:
        """The shipped ``ru-YYYY.csv`` files, then the files of ``extra_dir`` (None or "": none), each replacing its
        whole year.

        Region names are checked against ``region_tz.csv``. Raises :class:`CalendarError` on a malformed file."""
        from smppgw.core.numbering import load_zones  # noqa: PLC0415 - numbering is only needed to check names

        known = frozenset(load_zones())
        files: dict[int, tuple[str, str]] = {}
        for name, text in _shipped_files():
            files[_year_of(name, f"smppgw/data/{_SHIPPED}/{name}")] = (f"smppgw/data/{_SHIPPED}/{name}", text)
        if extra_dir:  # None or "" (the config's "no extra calendars")
            for path in _extra_files(Path(extra_dir)):
                files[_year_of(path.name, str(path))] = (str(path), _read(path))
        calendar = cls()
        for year, (where, text) in sorted(files.items()):
            calendar._add_year(year, _parse(io.StringIO(text, newline=""), where, year, known))
        return calendar

    @classmethod
    def from_rows(cls, rows: Iterable[Row]) -> WorkCalendar:
        """A calendar of the given rows only (years with a row are complete, others use the art. 112 default)."""
        by_year: dict[int, list[Row]] = {}
        for row in rows:
            by_year.setdefault(row[0].year, []).append(row)
        calendar = cls()
        for year, year_rows in sorted(by_year.items()):
            calendar._add_year(year, year_rows)
        return calendar

    def _add_year(self, year: int, rows: Iterable[Row]) -> None:
        self._years.add(year)
        self._covered.add(year)
        for day, kind, regions in rows:
            value = _KINDS.get(kind)
            if value is None:
                raise CalendarError(f"{day}: kind must be holiday or workday, got {kind!r}")
            if not regions:
                self._days[day] = value
            for region in regions:
                self._regional.setdefault(region, {})[day] = value

    def _cover(self, year: int) -> None:
        for day, _kind, _regions in default_year(year):
            self._days[day] = DayKind.WEEKEND
        self._covered.add(year)

    # ------------------------------------------------------------------ queries

    def kind(self, day: date, region: str | None = None) -> DayKind:
        """Working day or weekend of ``day``; a region's own holidays count when ``region`` is given. Never raises."""
        if region is not None:
            regional = self._regional.get(region)
            if regional is not None:
                found = regional.get(day)
                if found is not None:
                    return found
        if day.year not in self._covered:
            self._cover(day.year)
        found = self._days.get(day)
        if found is not None:
            return found
        return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKING

    @property
    def years(self) -> frozenset[int]:
        """Years given by a file (or by rows), not by the art. 112 default."""
        return frozenset(self._years)

    @property
    def regions(self) -> frozenset[str]:
        """Regions with days of their own."""
        return frozenset(self._regional)


# ---------------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------------


def _shipped_files() -> Iterator[tuple[str, str]]:
    folder = resources.files("smppgw.data").joinpath(_SHIPPED)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("ru-") and entry.name.endswith(".csv"):
            yield entry.name, entry.read_bytes().decode("utf-8-sig")


def _extra_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CalendarError(f"{folder}: not a directory")
    return sorted(folder.glob("ru-*.csv"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _year_of(name: str, where: str) -> int:
    match = _FILE_RE.fullmatch(name)
    if match is None:
        raise CalendarError(f"{where}: calendar files must be named ru-YYYY.csv")
    return int(match.group(1))


def _rows(f: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with their line numbers, skipping blank and ``#`` lines."""
    reader = csv.reader(f)
    for row in reader:
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        yield reader.line_num, row


def _parse(f: IO[str], where: str, year: int, known_regions: frozenset[str]) -> list[Row]:
    """Validated rows of one file of ``year``."""
    rows = _rows(f)
    first = next(rows, None)
    if first is None or tuple(h.strip() for h in first[1]) != _HEADER:
        line = first[0] if first is not None else 1
        raise CalendarError(f"{where}:{line}: expected header {','.join(_HEADER)}")
    seen: set[tuple[date, str]] = set()
    out: list[Row] = []
    for line, fields in rows:
        row = _parse_row(fields, year, known_regions, f"{where}:{line}")
        for key in row[2] or ("",):
            if (row[0], key) in seen:
                raise CalendarError(f"{where}:{line}: {row[0]} listed twice for {key or 'the federation'}")
            seen.add((row[0], key))
        out.append(row)
    return out


def _parse_row(fields: list[str], year: int, known_regions: frozenset[str], where: str) -> Row:
    if len(fields) != len(_HEADER):
        raise CalendarError(f"{where}: expected {len(_HEADER)} fields, got {len(fields)}")
    text, kind, regions_text = (v.strip() for v in fields[:3])
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise CalendarError(f"{where}: bad date {text!r} (YYYY-MM-DD)") from None
    if day.year != year:
        raise CalendarError(f"{where}: {day} is not in {year}")
    if kind not in _KINDS:
        raise CalendarError(f"{where}: kind must be holiday or workday, got {kind!r}")
    if kind == "workday" and not _is_weekend(day):
        raise CalendarError(f"{where}: {day} is a weekday; workday rows are for working Saturdays and Sundays")
    regions = tuple(r.strip() for r in regions_text.split(";")) if regions_text else ()
    unknown = [r for r in regions if r not in known_regions]
    if unknown:
        raise CalendarError(f"{where}: unknown region {unknown[0]!r} (spell it as in region_tz.csv)")
    return day, kind, regions
