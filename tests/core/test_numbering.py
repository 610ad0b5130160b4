"""Number normalisation, the shipped numbering plan, ported-number overrides, the resolver."""

from __future__ import annotations

import random
import time
import zoneinfo
from bisect import bisect_right
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.numbering import (
    KNOWN_OPERATORS,
    InvalidNumberError,
    NumberingDataError,
    NumberingPlan,
    OperatorResolver,
    PlanRow,
    PortedNumbers,
    default_plan,
    is_russian,
    load_zones,
    normalise_msisdn,
    operator_key,
)

PLAN = default_plan()
RANGES = list(PLAN.ranges())
STARTS = [s for s, _, _ in RANGES]


def linear_lookup(national: int) -> str | None:
    """Reference: scan every range (the binary search must agree)."""
    for start, end, info in RANGES:
        if start <= national <= end:
            return info.operator + "|" + info.region
    return None


# ---------------------------------------------------------------------------------------------------------------------
# normalise_msisdn
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+7 916 123-45-67",
        "+7(916)123-45-67",
        "+79161234567",
        "79161234567",
        "8 (916) 1234567",
        "8-916-123-45-67",
        "89161234567",
        "9161234567",
        "916 123 45 67",
        "0079161234567",
        "00 7 916 123 45 67",
        "+7\u00a0916\u00a0123\u201145\u201167",  # no-break spaces, non-breaking hyphens
        " +7 916.123.45.67 ",
        "\t+7 (916) 123 45 67\n",
    ],
)
def test_russian_forms_normalise_to_one_canonical_number(raw: str) -> None:
    assert normalise_msisdn(raw) == "79161234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+375 29 123-45-67", "375291234567"),
        ("00375291234567", "375291234567"),
        ("375291234567", "375291234567"),  # bare 12 digits: international without '+', as SMPP TON=1 sends
        ("+1 212 555 1234", "12125551234"),
        ("12125551234", "12125551234"),  # bare 11 digits not starting with 7/8
        ("+49 30 123456", "4930123456"),
        ("+7 701 123 45 67", "77011234567"),  # Kazakhstan shares +7 (6xx/7xx)
        ("8 (800) 555-35-35", "78005553535"),  # Russian non-geographic
        ("+7 495 123-45-67", "74951234567"),  # Russian geographic (ABC)
        ("+7 3012 12-34-56", "73012123456"),
    ],
)
def test_other_numbers(raw: str, expected: str) -> None:
    assert normalise_msisdn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("+", "empty"),
        ("00", "empty"),
        ("+7 916 ABC-45-67", "only digits"),
        ("tel:+79161234567", "only digits"),
        ("+7 916 123 45 67 доб. 1", "only digits"),
        ("+7 916 123-45-6", "11 digits, got 10"),
        ("+7 916 123-45-678", "11 digits, got 12"),
        ("7916123456789", "11 digits, got 13"),
        ("+7 516 123-45-67", "start with 5"),
        ("+7 016 123-45-67", "start with 0"),
        ("8 (216) 123-45-67", "start with 2"),
        ("5161234567", "start with 5"),
        ("916123456", "too short: 9 digits"),
        ("12345", "too short"),
        ("+1234567", "8-15 digits, got 7"),
        ("+3752912345678901", "8-15 digits, got 16"),
        ("+8 916 123-45-67", "no such country code"),
        ("+0 916 123-45-67", "no such country code"),
        ("+7 ９１６ 123 45 67", "only digits"),  # full-width digits are digits to Python, not to us
        ("+7 916 ١٢٣ 45 67", "only digits"),  # Arabic-Indic digits
        ("+-7916", "11 digits, got 4"),  # separators are dropped anywhere
        ("+7+9161234567", "only digits"),
        ("++79161234567", "only digits"),
    ],
)
def test_invalid_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumberError, match=reason) as info:
        normalise_msisdn(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.raw == raw[:64]
    assert "9161234567" not in str(info.value)  # personal data stays out of the message


def test_international_flag_reads_bare_digits_as_e164() -> None:
    assert normalise_msisdn("79161234567", international=True) == "79161234567"
    assert normalise_msisdn("4930123456", international=True) == "4930123456"  # plain mode: a Russian 10-digit
    assert normalise_msisdn("4930123456") == "74930123456"
    with pytest.raises(InvalidNumberError, match="country code"):
        normalise_msisdn("89161234567", international=True)  # TON=1 must not carry the trunk prefix
    assert normalise_msisdn("9161234567", international=True) == "9161234567"  # +91 ...: TON=1 means E.164


# Formats a Russian national number the way people do.
FORMATS = (
    "+7{a}{b}{c}",
    "+7 {a} {b}-{d}-{e}",
    "+7 ({a}) {b} {d} {e}",
    "8 ({a}) {b}{c}",
    "8-{a}-{b}-{d}-{e}",
    "8{a}{b}{c}",
    "7{a}{b}{c}",
    "{a}{b}{c}",
    "{a} {b} {d} {e}",
    "007 {a} {b} {c}",
    "+7\u00a0{a}\u00a0{b}\u2011{d}\u2011{e}",
)

russian_national = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("3489"),
    st.text("0123456789", min_size=9, max_size=9),
)


@settings(max_examples=500)
@given(national=russian_national, fmt=st.sampled_from(FORMATS))
def test_formatted_russian_numbers_normalise_and_are_idempotent(national: str, fmt: str) -> None:
    a, b, c = national[:3], national[3:6], national[6:]
    raw = fmt.format(a=a, b=b, c=c, d=c[:2], e=c[2:])
    out = normalise_msisdn(raw)
    assert out == "7" + national
    assert normalise_msisdn(out) == out
    assert normalise_msisdn(out, international=True) == out


@settings(max_examples=500)
@given(cc=st.sampled_from(["1", "44", "49", "86", "375", "380", "998", "7"]), rest=st.text("0123456789", max_size=14))
def test_normalise_is_idempotent(cc: str, rest: str) -> None:
    try:
        out = normalise_msisdn("+" + cc + rest)
    except InvalidNumberError:
        return
    # Read back as what it is, an international number: always the same.
    assert normalise_msisdn(out, international=True) == out
    # Plain mode re-reads bare digits the Russian way only for the shapes a Russian number has (10 digits,
    # 11 starting with 8); every other canonical output is a fixed point of plain mode too.
    if not (len(out) == 10 or (len(out) == 11 and out[0] == "8") or len(out) < 10):
        assert normalise_msisdn(out) == out


number_like = st.text(alphabet="0123456789+-() .\u00a0\u2011x٣９", max_size=24)


@settings(max_examples=500)
@given(raw=st.one_of(st.text(max_size=40), number_like), international=st.booleans())
def test_normalise_raises_only_invalid_number_error(raw: str, international: bool) -> None:
    try:
        out = normalise_msisdn(raw, international=international)
    except InvalidNumberError as exc:
        assert str(exc)
        return
    assert out.isdigit() and out.isascii() and 8 <= len(out) <= 15
    assert out[0] != "0"
    if out[0] == "7":
        assert len(out) == 11 and out[1] in "346789"


def test_is_russian() -> None:
    assert is_russian("79161234567") and is_russian("74951234567")
    assert not is_russian("77011234567") and not is_russian("375291234567")


# ---------------------------------------------------------------------------------------------------------------------
# Numbering plan
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msisdn", "operator", "region", "inn"),
    [
        ("79161234567", "mts", "Город Москва, Московская область", "7740000076"),
        ("79030000000", "beeline", "Город Москва, Московская область", "7713076301"),
        ("79210900000", "megafon", "Город Санкт-Петербург, Ленинградская область", "7812014560"),
        ("79000000000", "tele2", "Краснодарский край", "7743895280"),
    ],
)
def test_real_numbers(msisdn: str, operator: str, region: str, inn: str) -> None:
    info = PLAN.lookup(msisdn)
    assert info is not None
    assert (info.operator, info.region, info.inn) == (operator, region, inn)
    assert info.tz == "Europe/Moscow" and info.tz_confidence == "certain" and info.tz_candidates == ("Europe/Moscow",)
    assert not info.ported


def test_operators_are_identified_by_inn_not_by_name() -> None:
    # MTS appears under two spellings; both resolve to the same key, the spelling is kept for display.
    mts_names = {info.operator_name for _, _, info in RANGES if info.operator == "mts"}
    assert mts_names == {'ПАО "МТС"', 'ПАО "Мобильные ТелеСистемы"'}
    other = PLAN.lookup("79999999999")
    assert other is not None and other.operator == "inn:7701725181" and other.operator_name == 'ООО "Скартел"'


def test_range_edges_and_gaps() -> None:
    # 9000000000..9000061999 Tele2 Krasnodar, then 9000062000..9000062999 Tele2 Rostov
    assert PLAN.range_of("79000061999") == (9000000000, 9000061999)
    first, last = PLAN.lookup("79000000000"), PLAN.lookup("79000061999")
    nxt = PLAN.lookup("79000062000")
    assert first is last and first is not None and first.region == "Краснодарский край"
    assert nxt is not None and nxt.region == "Ростовская область"
    # gap 9070000000..9079999999 (no 907 ranges) and 9086089400..9086089999
    assert PLAN.lookup("79069999999") is not None and PLAN.lookup("79080000000") is not None
    assert PLAN.lookup("79070000000") is None and PLAN.lookup("79075555555") is None
    assert PLAN.lookup("79086089399") is not None and PLAN.lookup("79086090000") is not None
    assert PLAN.lookup("79086089400") is None and PLAN.lookup("79086089999") is None
    # the last number of the plan
    assert PLAN.lookup("79999999999") is not None


def test_non_russian_and_malformed_inputs_are_none() -> None:
    for msisdn in ("375291234567", "77011234567", "74951234567", "7916123456", "7916123456x", "", "79161234567 "):
        assert PLAN.lookup(msisdn) is None
    assert PLAN.lookup_national(-1) is None and PLAN.lookup_national(10**10) is None


edge_numbers = st.sampled_from(STARTS).flatmap(lambda s: st.sampled_from([s - 1, s, s + 1]))
range_ends = st.sampled_from([e for _, e, _ in RANGES]).flatmap(lambda e: st.sampled_from([e - 1, e, e + 1]))


@settings(max_examples=500)
@given(national=st.one_of(st.integers(8_999_999_990, 10**10 - 1), edge_numbers, range_ends))
def test_binary_search_equals_linear_scan(national: int) -> None:
    info = PLAN.lookup_national(national)
    got = None if info is None else info.operator + "|" + info.region
    assert got == linear_lookup(national)
    if 0 <= national < 10**10:
        assert PLAN.lookup("7" + f"{national:010d}") == info


def test_plan_is_compact() -> None:
    assert len(PLAN) == 17_059
    assert PLAN.nbytes < 20 * len(PLAN) + 8_000  # 8+8+2 B per range + 4 KB bucket index
    assert len({id(info) for _, _, info in RANGES}) < 2_500  # infos are shared


def test_zones_cover_every_region_and_are_valid_iana_names() -> None:
    zones = load_zones()
    assert {info.region for _, _, info in RANGES} <= zones.keys()
    for zone in zones.values():
        assert zone.candidates[0] == zone.tz
        for name in zone.candidates:
            zoneinfo.ZoneInfo(name)
        assert (len(zone.candidates) == 1) == (zone.confidence == "certain") or zone.confidence == "uncertain"


def _offsets(candidates: tuple[str, ...]) -> set[int]:
    winter = datetime(2026, 1, 15, 12)
    return {int(winter.replace(tzinfo=zoneinfo.ZoneInfo(z)).utcoffset().total_seconds()) // 3600 for z in candidates}  # type: ignore[union-attr]


def test_uncertain_regions_carry_candidate_zones() -> None:
    yakutia = [info for _, _, info in RANGES if "Якутия" in info.region]
    assert yakutia and all(i.tz_confidence == "uncertain" for i in yakutia)
    assert _offsets(yakutia[0].tz_candidates) == {9, 10, 11}
    federal = next(info for _, _, info in RANGES if info.region == "Российская Федерация")
    assert _offsets(federal.tz_candidates) == set(range(2, 13))
    dnr = next(info for _, _, info in RANGES if "Донецкая" in info.region)
    assert dnr.tz == "Europe/Moscow" and "Europe/Kyiv" in dnr.tz_candidates


def test_russia_changed_offsets_need_recent_tzdata() -> None:
    # Saratov UTC+4 since Dec 2020, Volgograd back to UTC+3 since Dec 2020
    assert _offsets(("Europe/Saratov",)) == {4} and _offsets(("Europe/Volgograd",)) == {3}


# -- plan validation ----------------------------------------------------------------------------------------------

ZONES = load_zones()


def _row(start: int, end: int, region: str = "Краснодарский край", inn: str = "7743895280") -> PlanRow:
    return PlanRow(start, end, "x", region, inn)


def test_plan_rejects_overlap_disorder_and_unknown_region() -> None:
    with pytest.raises(NumberingDataError, match="overlaps or is out of order"):
        NumberingPlan([_row(9000000000, 9000000999), _row(9000000999, 9000001999)], ZONES)
    with pytest.raises(NumberingDataError, match="overlaps or is out of order"):
        NumberingPlan([_row(9000001000, 9000001999), _row(9000000000, 9000000999)], ZONES)
    with pytest.raises(NumberingDataError, match=r"prefix_from .* > prefix_to"):
        NumberingPlan([_row(9000001000, 9000000999)], ZONES)
    with pytest.raises(NumberingDataError, match=r"no row in region_tz\.csv"):
        NumberingPlan([_row(9000000000, 9000000999, region="Атлантида")], ZONES)


def test_plan_file_errors_name_the_line(tmp_path: Path) -> None:
    good = "prefix_from,prefix_to,operator,region,inn\n9000000000,9000000999,A,Краснодарский край,7743895280\n"
    path = tmp_path / "plan.csv"
    path.write_text(good, encoding="utf-8")
    plan = NumberingPlan.load(path)
    assert len(plan) == 1 and plan.lookup("79000000500") is not None
    path.write_text(good + "9000000500,9000001999,A,Краснодарский край,7743895280\n", encoding="utf-8")
    with pytest.raises(NumberingDataError, match=r"plan\.csv:3: .*overlaps"):
        NumberingPlan.load(path)
    path.write_text(good + "900000100,9000001999,A,Краснодарский край,7743895280\n", encoding="utf-8")
    with pytest.raises(NumberingDataError, match=r"plan\.csv:3: prefix_from/prefix_to must have 10 digits"):
        NumberingPlan.load(path)
    path.write_text("from,to,operator,region,inn\n", encoding="utf-8")
    with pytest.raises(NumberingDataError, match=r"plan\.csv:1: expected header"):
        NumberingPlan.load(path)
    path.write_text(good.splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(NumberingDataError, match="no ranges"):
        NumberingPlan.load(path)


# ---------------------------------------------------------------------------------------------------------------------
# Operator keys
# ---------------------------------------------------------------------------------------------------------------------


def test_operator_key_accepts_keys_and_inns() -> None:
    for op in KNOWN_OPERATORS:
        assert operator_key(op.key) == operator_key(op.inn) == operator_key("inn:" + op.inn) == op.key
    assert operator_key("MTS") == "mts"
    assert operator_key("7701725181") == "inn:7701725181"
    assert operator_key("mnc:35") == "mnc:35"
    for bad in ("", "vodafone", "inn:123", "12345", "mnc:x"):
        with pytest.raises(ValueError, match="not an operator key"):
            operator_key(bad)


# ---------------------------------------------------------------------------------------------------------------------
# Ported numbers
# ---------------------------------------------------------------------------------------------------------------------


def test_simple_file_with_header_blank_lines_and_inn(tmp_path: Path) -> None:
    path = tmp_path / "ported.csv"
    path.write_text(
        "number,operator\n\n+7 916 123-45-67,beeline\n89031234567,7740000076\n\n9261234567,inn:7701725181\n",
        encoding="utf-8",
    )
    ported = PortedNumbers.load(path, strict=True)
    assert ported.get("79161234567") == "beeline"
    assert ported.get("79031234567") == "mts"
    assert ported.get("79261234567") == "inn:7701725181"
    assert ported.get("79161234568") is None
    assert ported.report.rows == 3 and ported.report.entries == 3 and ported.report.skipped == 0


def test_simple_file_without_header(tmp_path: Path) -> None:
    path = tmp_path / "ported.csv"
    path.write_text("\ufeff79161234567,tele2\r\n79161234568,megafon\r\n", encoding="utf-8")  # BOM, CRLF
    ported = PortedNumbers.load(path)
    assert dict(ported) == {9161234567: "tele2", 9161234568: "megafon"}


BAD_ROWS = (
    "number,operator\n"
    "79161234567,beeline\n"
    "not a number,mts\n"
    "79161234568,vodafone\n"
    "79161234569\n"
    "375291234567,mts\n"
    "79161234570,mts\n"
)


def test_bad_rows_lenient_by_default_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ported.csv"
    path.write_text(BAD_ROWS, encoding="utf-8")
    ported = PortedNumbers.load(path)
    assert dict(ported) == {9161234567: "beeline", 9161234570: "mts"}
    report = ported.report
    assert (report.rows, report.entries, report.skipped) == (6, 2, 4)
    assert [e.split(": ")[0].rsplit(":", 1)[1] for e in report.errors] == ["3", "4", "5", "6"]
    assert "not an operator key" in report.errors[1] and "expected 2 fields" in report.errors[2]


def test_bad_rows_strict_raises_at_the_first(tmp_path: Path) -> None:
    path = tmp_path / "ported.csv"
    path.write_text(BAD_ROWS, encoding="utf-8")
    with pytest.raises(NumberingDataError, match=r"ported\.csv:3: number is not a Russian phone number"):
        PortedNumbers.load(path, strict=True)


PORT_ALL = """Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount
9000000000,mMEGAFON,02,D2502,25,2016-09-07T12:00:17+03:00,6
9000000001,mMEGAFON,02,D2502,25,2016-07-26T17:00:07+03:00,
9160000001,mBEELINE,99,D7799,77,2017-02-09T10:00:18+03:00,
9160000002,mTELE2,20,D7720,77,2017-02-09T10:00:18+03:00,
9030000003,mMTS,01,D7701,77,2017-02-09T10:00:18+03:00,
9030000004,mMTT,42,D7742,77,2018-06-28T11:59:46+03:00,

"""


def test_official_port_all_file(tmp_path: Path) -> None:
    path = tmp_path / "Port_All_201710010000_1299.csv"
    path.write_text(PORT_ALL, encoding="utf-8")
    ported = PortedNumbers.load(path, strict=True)
    assert dict(ported) == {
        9000000000: "megafon",
        9000000001: "megafon",
        9030000003: "mts",
        9030000004: "mnc:42",
        9160000001: "beeline",
        9160000002: "tele2",
    }


def test_official_increment_file_columns_found_by_name(tmp_path: Path) -> None:
    path = tmp_path / "Port_Increment.csv"
    path.write_text(
        "NPId,Number,RecipientId,DonorId,RangeHolderId,OldRoute,NewRoute,OldMNC,NewMNC,RegionCode,PortDate,RowCount\n"
        "1000000015391205,9946666819,mBEELINE,mMTT,mMTT,D7742,D7799,42,99,77,2018-06-28T11:59:46+03:00,1\n",
        encoding="utf-8",
    )
    assert dict(PortedNumbers.load(path, strict=True)) == {9946666819: "beeline"}


def test_official_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "Port_All.csv"
    path.write_text(PORT_ALL + "916000000,mMTS,01,D7701,77,,\n9160000009,mX,x,,,,\n9160000010,mMTS\n", "utf-8")
    ported = PortedNumbers.load(path)
    assert len(ported) == 6 and ported.report.skipped == 3
    assert "Number must be the 10-digit" in ported.report.errors[0] and ":9:" in ported.report.errors[0]
    assert "bad MNC" in ported.report.errors[1] and "expected at least 3 fields" in ported.report.errors[2]


def test_later_rows_and_files_win(tmp_path: Path) -> None:
    full, incr = tmp_path / "full.csv", tmp_path / "incr.csv"
    full.write_text("79161234567,beeline\n79161234568,beeline\n79161234567,tele2\n", encoding="utf-8")
    incr.write_text("79161234568,megafon\n79031111111,mts\n", encoding="utf-8")
    ported = PortedNumbers.load(full, incr)
    assert dict(ported) == {9161234567: "tele2", 9161234568: "megafon", 9031111111: "mts"}
    assert ported.report.duplicates == 2


@settings(max_examples=200)
@given(
    rows=st.lists(
        st.tuples(st.integers(9_000_000_000, 9_000_000_050), st.sampled_from(["mts", "beeline", "tele2"])),
        max_size=60,
    ),
    chunk=st.integers(1, 8),
)
def test_unsorted_input_with_duplicates_last_row_wins(rows: list[tuple[int, str]], chunk: int) -> None:
    ported = PortedNumbers.from_rows(([str(n), op] for n, op in rows), strict=True, chunk=chunk)
    expected = dict(rows)  # later pairs overwrite earlier ones
    assert dict(ported) == expected
    assert [n for n, _ in ported] == sorted(expected)
    for n in range(9_000_000_000, 9_000_000_052):
        assert ported.get_national(n) == expected.get(n)


def test_empty_table() -> None:
    empty = PortedNumbers()
    assert len(empty) == 0 and empty.get("79161234567") is None and empty.get("garbage") is None


def test_million_ported_numbers_load_fast_and_compact(tmp_path: Path) -> None:
    rng = random.Random(20260819)
    n = 1_000_000
    numbers, number = [], 9_000_000_000
    for _ in range(n):
        number += rng.randrange(1, 900)  # sorted and unique, as in the official dump, with gaps
        numbers.append(number)
    mncs = ["01", "02", "20", "99", "42"]
    ops = [rng.randrange(5) for _ in range(n)]
    path = tmp_path / "Port_All_202608190000_1.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount\n")
        f.writelines(
            f"{num},mX,{mncs[op]},D77{mncs[op]},77,2025-01-01T00:00:00+03:00,\n"
            for num, op in zip(numbers, ops, strict=True)
        )
    cpu = time.process_time()  # CPU, not wall time: the bound must hold on a busy CI box
    ported = PortedNumbers.load(path, strict=True)
    cpu = time.process_time() - cpu
    assert len(ported) == n and ported.report.skipped == 0
    assert cpu < 6.0, f"loading 1M rows took {cpu:.1f} CPU-s"
    assert ported.nbytes <= 8 * n + 41_000  # 8 B per entry + the 40 KB bucket index
    keys = {"01": "mts", "02": "megafon", "20": "tele2", "99": "beeline", "42": "mnc:42"}
    for i in rng.sample(range(n), 2_000):
        assert ported.get_national(numbers[i]) == keys[mncs[ops[i]]]
        if i + 1 == n or numbers[i + 1] != numbers[i] + 1:
            assert ported.get_national(numbers[i] + 1) is None


# ---------------------------------------------------------------------------------------------------------------------
# Resolver
# ---------------------------------------------------------------------------------------------------------------------


def test_resolver_ported_override_keeps_region_and_zone() -> None:
    resolver = OperatorResolver(PLAN, PortedNumbers.from_mapping({"79161234567": "beeline", "79031234567": "beeline"}))
    info = resolver.resolve("79161234567")
    assert info is not None and info.operator == "beeline" and info.ported and info.inn == "7713076301"
    assert info.region == "Город Москва, Московская область" and info.tz == "Europe/Moscow"
    assert resolver.resolve("79161234567") is info  # derived infos are cached
    home = resolver.resolve("79031234567")  # "ported" back to the range holder
    assert home is not None and home.operator == "beeline" and not home.ported
    assert resolver.resolve("79161234568") == PLAN.lookup("79161234568")
    assert resolver.resolve("375291234567") is None


def test_resolver_ported_outside_plan_and_to_small_operator() -> None:
    resolver = OperatorResolver(PLAN, PortedNumbers.from_mapping({"79075555555": "mts", "79161234567": "7701725181"}))
    lost = resolver.resolve("79075555555")
    assert lost is not None and lost.operator == "mts" and lost.tz_confidence == "uncertain"
    assert len(lost.tz_candidates) == 11
    small = resolver.resolve("79161234567")
    assert small is not None and small.operator == "inn:7701725181" and small.operator_name == 'ООО "Скартел"'


@settings(max_examples=500)
@given(
    index=st.integers(0, len(RANGES) - 1),
    offset=st.integers(0, 10**7),
    key=st.sampled_from(["mts", "beeline", "megafon", "tele2", "inn:7701725181", "mnc:35"]),
)
def test_ported_override_wins(index: int, offset: int, key: str) -> None:
    start, end, holder = RANGES[index]
    national = start + offset % (end - start + 1)
    msisdn = f"7{national:010d}"
    resolver = OperatorResolver(PLAN, PortedNumbers.from_mapping({msisdn: key}))
    info = resolver.resolve(msisdn)
    assert info is not None and info.operator == key
    assert (info.region, info.tz, info.tz_candidates) == (holder.region, holder.tz, holder.tz_candidates)
    assert info.ported == (key != holder.operator)
    neighbour = f"7{national + 1:010d}" if national < 9_999_999_999 else f"7{national - 1:010d}"
    assert resolver.resolve(neighbour) == PLAN.lookup(neighbour)  # only the ported number changes


def test_bisect_helper_sanity() -> None:
    # the plan's bucketed search agrees with a plain bisect over the starts for every range start
    for i, start in enumerate(STARTS[:: max(1, len(STARTS) // 500)]):
        assert bisect_right(STARTS, start) - 1 >= 0
        assert PLAN.range_of(f"7{start:010d}") == RANGES[STARTS.index(start)][:2], i
