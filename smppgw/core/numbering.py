"""Phone numbers: normalisation, the Russian numbering plan (DEF 9xx), ported-number overrides.

Pure domain code: no asyncio, no clock. Files are read only by the explicit ``load`` constructors.

* :func:`normalise_msisdn` turns what clients send into canonical international digits without ``+``.
* :class:`NumberingPlan` answers "who holds this range, in which region and time zone" by binary search over sorted
  range starts held in ``array('q')``; operators are identified by INN, never by the registry's (varying) names.
* :class:`PortedNumbers` is the MNP override table (number → operator), 8 bytes per entry, also binary search.
* :class:`OperatorResolver` checks the override table first, then the plan.

Operator keys: ``mts``, ``beeline``, ``megafon``, ``tele2`` for the big four; ``inn:<INN>`` for every other range
holder; ``mnc:<MNC>`` for a ported number whose recipient is known only by a mobile network code outside the big four
(the ported-numbers database carries MNCs, not INNs). Routing rules match on these keys.
"""

from __future__ import annotations

import csv
import functools
import heapq
import io
import itertools
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import IO, Final, Literal, NamedTuple

import msgspec

__all__ = [
    "KNOWN_OPERATORS",
    "RUSSIAN_ZONES_BY_OFFSET",
    "InvalidNumberError",
    "NumberInfo",
    "NumberingDataError",
    "NumberingPlan",
    "Operator",
    "OperatorResolver",
    "PortLoadReport",
    "PortedNumbers",
    "default_plan",
    "normalise_msisdn",
    "operator_key",
]


# --------------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------------


class InvalidNumberError(ValueError):
    """The text is not a usable phone number. The gateway answers ESME_RINVDSTADR / HTTP 422.

    ``str(exc)`` is the reason only — never the number, which is personal data (152-FZ) and must not reach logs
    unmasked; the offending input (cut to 64 characters) is on ``exc.raw`` for callers that may show it.
    """

    def __init__(self, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw[:64]


class NumberingDataError(ValueError):
    """A numbering-plan, time-zone or ported-numbers file is malformed; the message names ``file:line``."""


# --------------------------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------------------------

# Separators people and CRMs put into numbers: whitespace (incl. no-break and thin spaces), hyphens, dots, brackets;
# Unicode hyphens/dashes (U+2010..U+2015, minus sign) are dropped too, on the rare non-ASCII path.
_UNICODE_DASHES: Final = str.maketrans("", "", "\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
# Zone 7 national numbers: 3xx/4xx/8xx/9xx are Russian (ABC geographic, 8xx non-geographic, DEF 9xx mobile);
# 6xx/7xx are Kazakhstan (it shares country code 7). 0xx/1xx/2xx/5xx are unassigned.
_ZONE7_FIRST: Final = frozenset("346789")
# ITU spare country codes worth rejecting: nothing starts with 0; 28x, 83x, 89x are unassigned. "89" also catches
# the common Russian slip "+8 9xx ..." instead of "+7 9xx ..." (or "8 9xx ...").
_SPARE_CC: Final = ("0", "28", "83", "89")
_E164_MIN: Final = 8
_E164_MAX: Final = 15


def normalise_msisdn(raw: str, *, international: bool = False) -> str:
    """Canonical international digits without ``+``; raises :class:`InvalidNumberError` for anything else.

    Accepted (separators are ignored: whitespace incl. no-break/thin spaces, ``-``, ``.``, ``(``, ``)``, Unicode
    dashes):

    * ``+7 916 123-45-67``, ``0079161234567``, ``79161234567`` → ``79161234567``
    * ``8 (916) 123-45-67`` (Russian trunk prefix 8, 11 digits) → ``79161234567``
    * ``9161234567`` (bare 10-digit national number) → ``79161234567``
    * ``+375 29 123-45-67`` / ``00375291234567`` → ``375291234567`` (8–15 digits, not a spare country code)
    * bare 11-digit numbers not starting with 7/8 and bare 12–15-digit numbers are read as international without
      ``+`` (what SMPP clients send with TON=1), so the function is idempotent on its own output for those.

    Zone 7 numbers must have exactly 11 digits and a national part starting with 3, 4, 8, 9 (Russia) or 6, 7
    (Kazakhstan, kept as a foreign number: the plan has no ranges for it). Anything else — empty, letters, other
    lengths, ``+8 9xx`` — is an :class:`InvalidNumberError` whose message says why.

    ``international=True`` reads bare digits strictly as E.164 (the SMPP ``TON=1`` case and re-reading canonical
    values): no trunk-8 or 10-digit-national guessing, so ``normalise_msisdn(x, international=True) == x`` holds for
    every output ``x``. Plain mode is idempotent for Russian outputs; a foreign output of 10 digits or of 11 digits
    starting with 8 is ambiguous as bare digits and is read the Russian way there (documented, tested).
    """
    if raw.isdigit() and raw.isascii() and raw[0] != "0":  # fast path: bare digits, e.g. already canonical
        digits = raw
        if not international and not (len(raw) == 11 and raw[0] == "7"):
            digits = _national_to_international(raw, raw)
    else:
        digits = _strip_prefix(_strip_separators(raw), raw, international)
    if digits[0] == "7":
        if len(digits) == 11 and digits[1] in _ZONE7_FIRST:
            return digits
        raise _zone7_error(digits, raw)
    return _check_foreign(digits, raw)


def _strip_separators(raw: str) -> str:
    # str.split() drops all whitespace (incl. no-break and thin spaces); replace() chains beat str.translate 2-3x.
    s = "".join(raw.split()).replace("-", "").replace("(", "").replace(")", "").replace(".", "")
    return s if s.isascii() else s.translate(_UNICODE_DASHES)


def _strip_prefix(s: str, raw: str, international: bool) -> str:
    if s[:1] == "+":
        digits, intl = s[1:], True
    elif s[:2] == "00":
        digits, intl = s[2:], True
    else:
        digits, intl = s, international
    if not (digits.isdigit() and digits.isascii()):
        raise InvalidNumberError(_non_digit_reason(s), raw)
    return digits if intl else _national_to_international(digits, raw)


def _non_digit_reason(s: str) -> str:
    if not s or s in ("+", "00"):
        return "empty phone number"
    return "phone number may contain only digits, a leading '+' or '00', and separators ' -.()'"


def _national_to_international(digits: str, raw: str) -> str:
    n = len(digits)
    if n == 10:
        return "7" + digits
    if n == 11 and digits[0] in "78":
        return "7" + digits[1:]
    if n >= 11:
        return digits
    raise InvalidNumberError(
        f"phone number too short: {n} digits (a Russian number has 10 digits after +7; "
        f"a foreign one needs '+' or '00' and its country code)",
        raw,
    )


def _zone7_error(digits: str, raw: str) -> InvalidNumberError:
    if len(digits) != 11:
        return InvalidNumberError(f"a +7 number must have 11 digits, got {len(digits)}", raw)
    return InvalidNumberError(
        f"no +7 numbers start with {digits[1]} after the country code (Russia: 3, 4, 8, 9; Kazakhstan: 6, 7)", raw
    )


def _check_foreign(digits: str, raw: str) -> str:
    n = len(digits)
    if n < _E164_MIN or n > _E164_MAX:
        raise InvalidNumberError(f"an international number must have {_E164_MIN}-{_E164_MAX} digits, got {n}", raw)
    if digits.startswith(_SPARE_CC):
        raise InvalidNumberError("no such country code (a Russian number starts with +7)", raw)
    return digits


def is_russian(msisdn: str) -> bool:
    """True for a canonical Russian number (``7`` + national part starting with 3, 4, 8 or 9)."""
    return len(msisdn) == 11 and msisdn[0] == "7" and msisdn[1] in "3489"


def _national(msisdn: str) -> int:
    """The 10-digit national part of a canonical Russian number as an int, or -1 (also for Kazakhstan's +7 6/7)."""
    if len(msisdn) == 11 and msisdn[0] == "7" and msisdn[1] in "3489" and msisdn.isdigit() and msisdn.isascii():
        return int(msisdn[1:])
    return -1


# --------------------------------------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------------------------------------


class Operator(NamedTuple):
    key: str
    inn: str
    mnc: str
    owner_id: str
    name: str


# INN from the numbering registry; MNC (MCC 250) from ITU E.212 lists: MTS 01, MegaFon 02, Tele2 20, Beeline 99.
# OwnerId is the ported-numbers database's recipient id: mMEGAFON, mTELE2, mBEELINE are seen in published file
# samples (e.g. "9000000000,mMEGAFON,02,D2502,25,..."; Route = "D" + region code + MNC); mMTS follows the same pattern.
KNOWN_OPERATORS: Final[tuple[Operator, ...]] = (
    Operator("mts", "7740000076", "01", "mMTS", "МТС"),
    Operator("megafon", "7812014560", "02", "mMEGAFON", "МегаФон"),
    Operator("tele2", "7743895280", "20", "mTELE2", "Т2 (Tele2)"),
    Operator("beeline", "7713076301", "99", "mBEELINE", "Билайн (ВымпелКом)"),
)
_BY_KEY: Final = {op.key: op for op in KNOWN_OPERATORS}
_KEY_BY_INN: Final = {op.inn: op.key for op in KNOWN_OPERATORS}
_KEY_BY_MNC: Final = {op.mnc: op.key for op in KNOWN_OPERATORS}
_KEY_BY_OWNER: Final = {op.owner_id.upper(): op.key for op in KNOWN_OPERATORS}
_INN_RE: Final = re.compile(r"\d{10}|\d{12}", re.ASCII)
_KEY_RE: Final = re.compile(r"inn:(?:\d{10}|\d{12})|mnc:\d{2,3}", re.ASCII)


def operator_key(value: str) -> str:
    """The operator key for a key (``mts``, ``inn:…``, ``mnc:…``, any case) or an INN; ``ValueError`` otherwise."""
    v = value.strip().lower()
    if v in _BY_KEY or _KEY_RE.fullmatch(v):
        return _KEY_BY_INN.get(v[4:], v) if v.startswith("inn:") else v
    if _INN_RE.fullmatch(v):
        return _KEY_BY_INN.get(v, "inn:" + v)
    raise ValueError(f"not an operator key or INN: {value!r} (use mts, beeline, megafon, tele2, inn:<INN>, mnc:<NN>)")


# --------------------------------------------------------------------------------------------------------------------
# Number information
# --------------------------------------------------------------------------------------------------------------------

TzConfidence = Literal["certain", "uncertain"]

# One representative IANA zone per UTC offset used in Russia (Kaliningrad +2 .. Kamchatka +12); used when a region's
# note gives an offset span ("UTC+2..+12") instead of zone names.
RUSSIAN_ZONES_BY_OFFSET: Final[Mapping[int, str]] = {
    2: "Europe/Kaliningrad",
    3: "Europe/Moscow",
    4: "Europe/Samara",
    5: "Asia/Yekaterinburg",
    6: "Asia/Omsk",
    7: "Asia/Krasnoyarsk",
    8: "Asia/Irkutsk",
    9: "Asia/Yakutsk",
    10: "Asia/Vladivostok",
    11: "Asia/Magadan",
    12: "Asia/Kamchatka",
}


class NumberInfo(msgspec.Struct, frozen=True, gc=False):
    """What the plan (and the override table) knows about one number. Instances are shared: one per distinct
    (holder, registry name, region) — never mutate, never rely on identity."""

    operator: str  # key: mts | beeline | megafon | tele2 | inn:<INN> | mnc:<MNC>
    operator_name: str  # the registry's spelling (display only) or a known operator's brand
    inn: str  # "" when the operator is known only by MNC
    region: str  # the registry's "Территория ГАР"; survives porting (MNP is within one region)
    tz: str  # IANA zone
    tz_confidence: TzConfidence
    # Every zone the subscriber may be in, ``tz`` first: ``(tz,)`` when certain; several for Yakutia (+9..+11),
    # "Российская Федерация" (+2..+12), the new regions (Moscow, or Kyiv per tzdata). Policy intersects windows.
    tz_candidates: tuple[str, ...]
    ported: bool = False


class _Zone(NamedTuple):
    tz: str
    confidence: TzConfidence
    candidates: tuple[str, ...]


_IANA_RE: Final = re.compile(r"\b(?:Europe|Asia)/[A-Z][A-Za-z_-]+", re.ASCII)
_OFFSET_SPAN_RE: Final = re.compile(r"UTC\+(\d{1,2})\s*\.\.\s*\+(\d{1,2})", re.ASCII)


def _candidates(tz: str, confidence: str, note: str) -> tuple[str, ...]:
    """Candidate zones of an uncertain region: the chosen zone, the IANA names the note mentions, and for an offset
    span in the note ("UTC+2..+12") one zone per offset from :data:`RUSSIAN_ZONES_BY_OFFSET`."""
    if confidence == "certain":
        return (tz,)
    found = [tz, *_IANA_RE.findall(note)]
    for lo, hi in _OFFSET_SPAN_RE.findall(note):
        found += [z for off, z in RUSSIAN_ZONES_BY_OFFSET.items() if int(lo) <= off <= int(hi)]
    return tuple(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------------------------------
# Bucket index: shortens bisect over big sorted arrays
# --------------------------------------------------------------------------------------------------------------------

_NATIONAL_LIMIT: Final = 10**10  # national numbers have 10 digits


def _bucket_index(values: array[int], divisor: int, buckets: int) -> array[int]:
    """``index[b]`` = position of the first value with ``value // divisor >= b`` (``index[buckets] == len``): a
    bisect for a number in bucket ``b`` then needs only ``lo=index[b], hi=index[b + 1]`` — about half the steps,
    and each step on an ``array`` costs an int allocation."""
    return array("I", (bisect_left(values, b * divisor) for b in range(buckets + 1)))


# --------------------------------------------------------------------------------------------------------------------
# CSV helpers
# --------------------------------------------------------------------------------------------------------------------

Source = str | Path


def _open_source(source: Source | None, default_name: str) -> IO[str]:
    if source is None:
        data = resources.files("smppgw.data").joinpath(default_name).open("rb")
        return io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    return open(source, encoding="utf-8-sig", newline="", errors="replace")


def _where(source: Source | None, default_name: str, line: int) -> str:
    return f"{source if source is not None else 'smppgw/data/' + default_name}:{line}"


def _expect_header(reader: Iterator[list[str]], expected: Sequence[str], where: str) -> None:
    header = next(reader, None)
    if header is None or [h.strip() for h in header[: len(expected)]] != list(expected):
        raise NumberingDataError(f"{where}: expected header starting {','.join(expected)}, got {header!r}")


# --------------------------------------------------------------------------------------------------------------------
# Numbering plan
# --------------------------------------------------------------------------------------------------------------------

_PLAN_FILE: Final = "def9xx.csv"
_TZ_FILE: Final = "region_tz.csv"
_PLAN_HEADER: Final = ("prefix_from", "prefix_to", "operator", "region", "inn")
_TZ_HEADER: Final = (
    "region",
    "iana_tz",
    "utc_offset",
    "confidence",
    "source_column",
    "rows_gar",
    "rows_region",
    "note",
)
_NATIONAL_RE: Final = re.compile(r"\d{10}", re.ASCII)
_ZONE_NAME_RE: Final = re.compile(r"[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_+-]+)+", re.ASCII)


class PlanRow(NamedTuple):
    start: int  # 10-digit national number, inclusive
    end: int  # inclusive
    operator_name: str
    region: str
    inn: str


def load_zones(source: Source | None = None) -> dict[str, _Zone]:
    """Region name → zone, from ``region_tz.csv`` (shipped copy by default); validated."""
    with _open_source(source, _TZ_FILE) as f:
        reader = csv.reader(f)
        _expect_header(reader, _TZ_HEADER, _where(source, _TZ_FILE, 1))
        zones: dict[str, _Zone] = {}
        for row in reader:
            if not row:
                continue
            where = _where(source, _TZ_FILE, reader.line_num)
            if len(row) != len(_TZ_HEADER):
                raise NumberingDataError(f"{where}: expected {len(_TZ_HEADER)} fields, got {len(row)}")
            region, tz, _off, conf, *_, note = row
            if not _ZONE_NAME_RE.fullmatch(tz) or conf not in ("certain", "uncertain") or region in zones:
                raise NumberingDataError(f"{where}: bad zone {tz!r}, confidence {conf!r} or duplicate region")
            zones[region] = _Zone(tz, "certain" if conf == "certain" else "uncertain", _candidates(tz, conf, note))
    return zones


def _plan_rows(source: Source | None) -> Iterator[tuple[int, PlanRow]]:
    """(line, row) pairs of ``def9xx.csv``, syntax checked; order is checked by the caller."""
    with _open_source(source, _PLAN_FILE) as f:
        reader = csv.reader(f)
        _expect_header(reader, _PLAN_HEADER, _where(source, _PLAN_FILE, 1))
        for row in reader:
            if not row:
                continue
            if len(row) != len(_PLAN_HEADER):
                raise NumberingDataError(f"{_where(source, _PLAN_FILE, reader.line_num)}: expected 5 fields")
            lo, hi, name, region, inn = (c.strip() for c in row)
            if not (_NATIONAL_RE.fullmatch(lo) and _NATIONAL_RE.fullmatch(hi) and _INN_RE.fullmatch(inn)):
                raise NumberingDataError(
                    f"{_where(source, _PLAN_FILE, reader.line_num)}: prefix_from/prefix_to must have 10 digits "
                    f"and inn 10 or 12, got {lo!r}, {hi!r}, {inn!r}"
                )
            yield reader.line_num, PlanRow(int(lo), int(hi), name, region, inn)


class NumberingPlan:
    """Range lookup over the DEF 9xx registry: ``bisect`` on a sorted ``array('q')`` of range starts.

    Storage: starts and ends as ``array('q')`` (8 B each), a per-row index into a small table of shared
    :class:`NumberInfo` values as ``array('H')`` — ~18 B per range plus ~2,000 interned infos.
    """

    __slots__ = ("_buckets", "_ends", "_infos", "_names_by_inn", "_rows", "_starts")

    _DIVISOR: Final = 10**7  # bucket = the 3-digit DEF/ABC code: ~17 ranges per bucket in the DEF 9xx plan

    def __init__(self, rows: Iterable[PlanRow], zones: Mapping[str, _Zone], *, where: str = "<rows>") -> None:
        """Build from rows sorted by start and non-overlapping; ``NumberingDataError`` otherwise, or when a row's
        region has no zone."""
        self._starts: array[int] = array("q")
        self._ends: array[int] = array("q")
        self._rows: array[int] = array("H")
        self._infos: list[NumberInfo] = []
        self._names_by_inn: dict[str, str] = {}
        interned: dict[tuple[str, str, str], int] = {}
        for i, row in enumerate(rows, 1):
            self._append(row, zones, interned, f"{where} row {i}")
        self._reindex()

    def _reindex(self) -> None:
        self._buckets = _bucket_index(self._starts, self._DIVISOR, _NATIONAL_LIMIT // self._DIVISOR)

    @classmethod
    def load(cls, plan: Source | None = None, zones: Source | None = None) -> NumberingPlan:
        """Load ``def9xx.csv`` and ``region_tz.csv`` (the shipped copies by default) and validate them."""
        tz = load_zones(zones)
        self = cls((), tz)
        interned: dict[tuple[str, str, str], int] = {}
        for line, row in _plan_rows(plan):
            self._append(row, tz, interned, _where(plan, _PLAN_FILE, line))
        if not self._starts:
            raise NumberingDataError(f"{_where(plan, _PLAN_FILE, 1)}: no ranges")
        self._reindex()
        return self

    def _append(
        self, row: PlanRow, zones: Mapping[str, _Zone], interned: dict[tuple[str, str, str], int], where: str
    ) -> None:
        if row.start > row.end:
            raise NumberingDataError(f"{where}: prefix_from {row.start} > prefix_to {row.end}")
        if self._ends and row.start <= self._ends[-1]:
            raise NumberingDataError(
                f"{where}: range {row.start}.. overlaps or is out of order (previous ends {self._ends[-1]})"
            )
        zone = zones.get(row.region)
        if zone is None:
            raise NumberingDataError(f"{where}: region {row.region!r} has no row in region_tz.csv")
        ident = (row.inn, row.operator_name, row.region)
        idx = interned.get(ident)
        if idx is None:
            idx = interned[ident] = len(self._infos)
            key = _KEY_BY_INN.get(row.inn, "inn:" + row.inn)
            self._infos.append(
                NumberInfo(key, row.operator_name, row.inn, row.region, zone.tz, zone.confidence, zone.candidates)
            )
            self._names_by_inn.setdefault(row.inn, row.operator_name)
        self._starts.append(row.start)
        self._ends.append(row.end)
        self._rows.append(idx)

    # -- queries ------------------------------------------------------------------------------------------------------

    def lookup(self, msisdn: str) -> NumberInfo | None:
        """Info for a canonical number (output of :func:`normalise_msisdn`); None for foreign numbers and Russian
        numbers outside every range."""
        national = _national(msisdn)
        return self.lookup_national(national) if national >= 0 else None

    def lookup_national(self, national: int) -> NumberInfo | None:
        """Info for a 10-digit national number given as an int (the hot path: ``_row`` inlined)."""
        if 0 <= national < _NATIONAL_LIMIT:
            buckets, b = self._buckets, national // self._DIVISOR
            i = bisect_right(self._starts, national, buckets[b], buckets[b + 1]) - 1
            if i >= 0 and national <= self._ends[i]:
                return self._infos[self._rows[i]]
        return None

    def _row(self, national: int) -> int:
        if not 0 <= national < _NATIONAL_LIMIT:
            return -1
        b = national // self._DIVISOR
        # Starts before bucket b are all < national, so a miss inside the bucket lands on the row just before it.
        i = bisect_right(self._starts, national, self._buckets[b], self._buckets[b + 1]) - 1
        return i if i >= 0 and national <= self._ends[i] else -1

    def range_of(self, msisdn: str) -> tuple[int, int] | None:
        """The inclusive national range holding a canonical number, for explanations."""
        i = self._row(_national(msisdn))
        return (self._starts[i], self._ends[i]) if i >= 0 else None

    def ranges(self) -> Iterator[tuple[int, int, NumberInfo]]:
        """Every range in order (for tests, exports and linear checks)."""
        for s, e, r in zip(self._starts, self._ends, self._rows, strict=True):
            yield s, e, self._infos[r]

    def name_for_inn(self, inn: str) -> str | None:
        """A registry name for an INN (the first spelling met), for display of ``inn:`` keys."""
        return self._names_by_inn.get(inn)

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def nbytes(self) -> int:
        """Bytes held by the range arrays (the shared infos are not counted)."""
        return sum(a.itemsize * len(a) for a in (self._starts, self._ends, self._rows, self._buckets))


@functools.cache
def default_plan() -> NumberingPlan:
    """The plan shipped in ``smppgw/data`` (loaded once, ~0.1 s)."""
    return NumberingPlan.load()


# --------------------------------------------------------------------------------------------------------------------
# Ported numbers (MNP)
# --------------------------------------------------------------------------------------------------------------------

_CODE_BITS: Final = 16
_CODE_MASK: Final = (1 << _CODE_BITS) - 1
_SEQ_BITS: Final = 29  # 10-digit numbers fit in 34 bits: 34 + 29 < 63, so (number << 29 | row) fits array('q')
_SEQ_MASK: Final = (1 << _SEQ_BITS) - 1
_SORT_CHUNK: Final = 1 << 20
_MAX_REPORTED_ERRORS: Final = 20


class PortLoadReport(msgspec.Struct, frozen=True):
    """What a load did: data rows read, entries kept, duplicates (a later row or file won), rows skipped (lenient
    mode) with the first few reasons as ``file:line: reason``."""

    rows: int
    entries: int
    duplicates: int
    skipped: int
    errors: tuple[str, ...]


class _PortBuilder:
    """Collects ``number << 16 | code`` in input order. Input that is strictly increasing (the official dump is
    sorted by number) is already the final table; anything else is sorted on ``finish`` with the last row winning."""

    def __init__(self, chunk: int = _SORT_CHUNK) -> None:
        self.packed: array[int] = array("q")
        self.increasing = True
        self.last = -1
        self.keys: list[str] = []
        self.code_of: dict[str, int] = {}
        self.rows = 0
        self.skipped = 0
        self.errors: list[str] = []
        self.chunk = chunk

    def code(self, key: str) -> int:
        code = self.code_of.get(key)
        if code is None:
            if len(self.keys) > _CODE_MASK:
                raise NumberingDataError(f"more than {_CODE_MASK + 1} distinct operators in ported-number data")
            code = self.code_of[key] = len(self.keys)
            self.keys.append(key)
        return code

    def bad(self, where: str, reason: str, *, strict: bool) -> None:
        if strict:
            raise NumberingDataError(f"{where}: {reason}")
        self.skipped += 1
        if len(self.errors) < _MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {reason}")

    def finish(self) -> tuple[array[int], list[str], PortLoadReport]:
        n = len(self.packed)
        packed = self.packed if self.increasing else self._sorted_last_wins()
        self.packed = array("q")
        report = PortLoadReport(self.rows, len(packed), n - len(packed), self.skipped, tuple(self.errors))
        return packed, self.keys, report

    def _sorted_last_wins(self) -> array[int]:
        """Sort by number, keep the last row of each number. Sort keys are ``number << 29 | row`` (34 + 29 bits fit
        in an int64), sorted in 1 M chunks and merged so the transient list of Python ints stays ~40 MB."""
        src = self.packed
        if len(src) > _SEQ_MASK:
            raise NumberingDataError(f"too many ported-number rows: {len(src)}")
        chunks = []
        for lo in range(0, len(src), self.chunk):
            part = [((v >> _CODE_BITS) << _SEQ_BITS) | i for i, v in enumerate(src[lo : lo + self.chunk], lo)]
            part.sort()
            chunks.append(array("q", part))
        out: array[int] = array("q")
        prev = -1
        for key in heapq.merge(*chunks):
            number, value = key >> _SEQ_BITS, src[key & _SEQ_MASK]
            if number == prev:
                out[-1] = value  # same number again: the later row (larger row index, merged after) wins
            else:
                out.append(value)
                prev = number
        return out


class PortedNumbers:
    """Ported-number overrides: national number → operator key, checked before the plan.

    Storage is one sorted ``array('q')`` of ``number << 16 | operator code`` — **8 bytes per entry** (20 M ported
    numbers ≈ 160 MB; a dict would need ~100 B per entry) — searched with ``bisect``. Operator codes index a small
    key table (≤ 65,536 operators).

    Input files (UTF-8, optional BOM; blank lines ignored; several files: later ones win, like increments):

    * simple: ``number,operator`` — number in any form :func:`normalise_msisdn` accepts (must be Russian), operator
      a key (``mts``, ``inn:…``, ``mnc:…``) or an INN; an optional header row whose first cell is not a number.
    * the ported-numbers database export ``Port_All_<YYYYMMDDhhmm>_<n>.csv``:
      ``Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount`` (also ``Port_All_Full`` with more columns, and the
      increment files' ``Number,RecipientId,…,NewMNC``); detected by the header, columns found by name. Number is
      the 10-digit national number; the operator is MNC → key (01 mts, 02 megafon, 20 tele2, 99 beeline), else
      OwnerId (``mMTS``, ``mMEGAFON``, ``mTELE2``, ``mBEELINE``), else ``mnc:<MNC>``.

    Bad rows: **lenient by default** — counted, skipped, the first 20 reasons kept with ``file:line`` in
    :attr:`report` — because one malformed line in a 20 M-row official dump must not leave the gateway with no
    overrides at all; the caller decides from ``report.skipped`` whether to accept the table. ``strict=True`` raises
    :class:`NumberingDataError` at the first bad row (use it for hand-written override files and in CI).
    """

    __slots__ = ("_buckets", "_keys", "_packed", "report")

    _DIVISOR: Final = 10**6  # 10,000 buckets (40 KB): ~2,000 entries each for 20 M numbers

    def __init__(
        self, packed: array[int] | None = None, keys: Sequence[str] = (), report: PortLoadReport | None = None
    ) -> None:
        self._packed: array[int] = packed if packed is not None else array("q")
        self._keys: tuple[str, ...] = tuple(keys)
        self._buckets = _bucket_index(self._packed, self._DIVISOR << _CODE_BITS, _NATIONAL_LIMIT // self._DIVISOR)
        self.report = report or PortLoadReport(0, len(self._packed), 0, 0, ())

    @classmethod
    def load(cls, *sources: Source, strict: bool = False) -> PortedNumbers:
        """Stream one or more CSV files (see the class docstring) into a table."""
        builder = _PortBuilder()
        for source in sources:
            with open(source, encoding="utf-8-sig", newline="", errors="replace") as f:
                _read_port_rows(csv.reader(f), str(source), builder, strict=strict)
        return cls(*builder.finish())

    @classmethod
    def from_rows(
        cls, rows: Iterable[Sequence[str]], *, source: str = "<rows>", strict: bool = False, chunk: int = _SORT_CHUNK
    ) -> PortedNumbers:
        """Build from already split rows in either file format (header included if any)."""
        builder = _PortBuilder(chunk)
        _read_port_rows(iter(rows), source, builder, strict=strict)
        return cls(*builder.finish())

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> PortedNumbers:
        """Build from ``{number: operator}`` (any accepted number form; operator key or INN); strict."""
        return cls.from_rows(([n, op] for n, op in mapping.items()), source="<mapping>", strict=True)

    def get(self, msisdn: str) -> str | None:
        """The operator key a canonical Russian number was ported to, or None."""
        return self.get_national(_national(msisdn))

    def get_national(self, national: int) -> str | None:
        if not 0 <= national < _NATIONAL_LIMIT:
            return None
        packed, b = self._packed, national // self._DIVISOR
        hi = self._buckets[b + 1]
        i = bisect_left(packed, national << _CODE_BITS, self._buckets[b], hi)
        if i < hi:
            v = packed[i]
            if v >> _CODE_BITS == national:
                return self._keys[v & _CODE_MASK]
        return None

    def __len__(self) -> int:
        return len(self._packed)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        """(national number, operator key) in ascending number order."""
        for v in self._packed:
            yield v >> _CODE_BITS, self._keys[v & _CODE_MASK]

    @property
    def nbytes(self) -> int:
        """Bytes of the entry array plus the 40 KB bucket index (the operator key table is negligible)."""
        return self._packed.itemsize * len(self._packed) + self._buckets.itemsize * len(self._buckets)


_OFFICIAL_NUMBER: Final = "number"
_OFFICIAL_MNC: Final = ("mnc", "newmnc")
_OFFICIAL_OWNER: Final = ("ownerid", "recipientid")


def _read_port_rows(
    reader: Iterator[list[str]] | Iterator[Sequence[str]], source: str, b: _PortBuilder, *, strict: bool
) -> None:
    """Detect the format from the first non-blank row and feed every data row to the builder."""
    line = 0
    for row in reader:
        line += 1
        if not row or not "".join(row).strip():
            continue
        head = [c.strip().lower() for c in row]
        if _OFFICIAL_NUMBER in head and any(m in head for m in _OFFICIAL_MNC):
            _read_official(reader, head, source, line, b, strict=strict)
        elif any(c.isdigit() for c in head[0]):  # no header: the first row is data
            _read_simple(itertools.chain((row,), reader), source, line - 1, b, strict=strict)
        else:
            _read_simple(reader, source, line, b, strict=strict)
        return


def _read_simple(rows: Iterable[Sequence[str]], source: str, line: int, b: _PortBuilder, *, strict: bool) -> None:
    """``number,operator`` rows. The loop is the load's hot path (~1.5 µs/row): kept flat on purpose."""
    codes: dict[str, int] = {}
    append, last, increasing = b.packed.append, b.last, b.increasing
    for row in rows:
        line += 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        b.rows += 1
        if len(row) != 2:
            b.bad(f"{source}:{line}", f"expected 2 fields (number,operator), got {len(row)}", strict=strict)
            continue
        number, code = _simple_number(row[0]), codes.get(row[1], -1)
        if code < 0:
            try:
                code = codes[row[1]] = b.code(operator_key(row[1]))
            except ValueError as exc:
                b.bad(f"{source}:{line}", str(exc), strict=strict)
                continue
        if number < 0:
            b.bad(f"{source}:{line}", "number is not a Russian phone number", strict=strict)
            continue
        increasing = increasing and number > last
        last = number
        append((number << _CODE_BITS) | code)
    b.last, b.increasing = last, increasing


def _simple_number(cell: str) -> int:
    if len(cell) == 10 and cell.isdigit() and cell.isascii():
        return int(cell) if cell[0] in "3489" else -1
    try:
        return _national(normalise_msisdn(cell))
    except InvalidNumberError:
        return -1


def _read_official(
    rows: Iterator[Sequence[str]], head: list[str], source: str, line: int, b: _PortBuilder, *, strict: bool
) -> None:
    """Rows of the ported-numbers database export; columns found by name in ``head``. Flat hot loop."""
    num_col = head.index(_OFFICIAL_NUMBER)
    mnc_col = next(head.index(m) for m in _OFFICIAL_MNC if m in head)
    owner_col = next((head.index(o) for o in _OFFICIAL_OWNER if o in head), mnc_col)
    need = max(num_col, mnc_col, owner_col) + 1
    codes: dict[tuple[str, str], int] = {}
    append, last, increasing = b.packed.append, b.last, b.increasing
    for row in rows:
        line += 1
        if len(row) < need:
            if row and "".join(row).strip():
                b.rows += 1
                b.bad(f"{source}:{line}", f"expected at least {need} fields, got {len(row)}", strict=strict)
            continue
        b.rows += 1
        num = row[num_col]
        if not (len(num) == 10 and num.isdigit() and num.isascii() and num[0] in "3489"):
            b.bad(f"{source}:{line}", "Number must be the 10-digit national number", strict=strict)
            continue
        ident = (row[mnc_col], row[owner_col])
        code = codes.get(ident, -1)
        if code < 0:
            key = _official_key(*ident)
            if key is None:
                b.bad(f"{source}:{line}", f"bad MNC {ident[0]!r}", strict=strict)
                continue
            code = codes[ident] = b.code(key)
        number = int(num)
        increasing = increasing and number > last
        last = number
        append((number << _CODE_BITS) | code)
    b.last, b.increasing = last, increasing


def _official_key(mnc: str, owner: str) -> str | None:
    mnc = mnc.strip()
    key = _KEY_BY_MNC.get(mnc) or _KEY_BY_OWNER.get(owner.strip().upper())
    if key is not None:
        return key
    return f"mnc:{mnc}" if 2 <= len(mnc) <= 3 and mnc.isdigit() and mnc.isascii() else None


# --------------------------------------------------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------------------------------------------------

_PORTED_UNKNOWN_REGION: Final = "неизвестно"


class OperatorResolver:
    """Ported override first, then the plan. Returns shared :class:`NumberInfo` values (ported variants cached).

    A ported number keeps its range's region and time zone (porting is only allowed within a region). A number
    ported back to its range holder is reported as not ported. A ported number outside every range (a stale plan)
    gets region "неизвестно" and the whole-of-Russia candidate zones.
    """

    __slots__ = ("_derived", "plan", "ported")

    def __init__(self, plan: NumberingPlan | None = None, ported: PortedNumbers | None = None) -> None:
        self.plan = plan if plan is not None else default_plan()
        self.ported = ported if ported is not None else PortedNumbers()
        self._derived: dict[tuple[str, str], NumberInfo] = {}

    def resolve(self, msisdn: str) -> NumberInfo | None:
        """Info for a canonical number; None for foreign numbers and Russian numbers in no range and not ported."""
        national = _national(msisdn)
        if national < 0:
            return None
        info = self.plan.lookup_national(national)
        key = self.ported.get_national(national)
        if key is None or (info is not None and key == info.operator):
            return info
        return self._ported_info(info, key)

    def _ported_info(self, base: NumberInfo | None, key: str) -> NumberInfo:
        ident = (base.region if base is not None else "", key)
        info = self._derived.get(ident)
        if info is None:
            info = self._derived[ident] = self._make_ported(base, key)
        return info

    def _make_ported(self, base: NumberInfo | None, key: str) -> NumberInfo:
        known = _BY_KEY.get(key)
        inn = known.inn if known else (key[4:] if key.startswith("inn:") else "")
        name = known.name if known else (self.plan.name_for_inn(inn) or key)
        if base is None:
            everywhere = tuple(RUSSIAN_ZONES_BY_OFFSET.values())
            return NumberInfo(key, name, inn, _PORTED_UNKNOWN_REGION, "Europe/Moscow", "uncertain", everywhere, True)
        return msgspec.structs.replace(base, operator=key, operator_name=name, inn=inn, ported=True)
