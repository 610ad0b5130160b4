"""Delivery receipts: real-world texts, TLV precedence, stat mapping, message-id normalisation, and fuzz invariants
("any input parses or raises ReceiptError, nothing else")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp import receipt as receipt_module
from smppgw.smpp.constants import DataCoding, MessageState, Tag
from smppgw.smpp.errors import SmppError
from smppgw.smpp.receipt import (
    STAT_STATES,
    STATE_STATS,
    IdRadix,
    NetworkError,
    Receipt,
    ReceiptError,
    ReceiptText,
    format_receipt_text,
    message_id_key,
    message_id_keys,
    normalise_message_id,
    parse_receipt_date,
    parse_receipt_text,
    read_receipt,
    stat_to_state,
)

Tlvs = tuple[tuple[int, bytes], ...]

STANDARD = (
    "id:1715004 sub:001 dlvrd:001 submit date:2406011230 done date:2406011231 stat:DELIVRD err:000 text:Hello world"
)
STATE_TLV_DELIVERED = (int(Tag.MESSAGE_STATE), b"\x02")


# ---------------------------------------------------------------------------------------------------------------------
# Real-world texts. Each sample is quoted from the public report named next to it.

REAL_WORLD: list[tuple[str, ReceiptText]] = [
    (
        # onlinecity/php-smpp issue #70 (hex dump in the report): 4-digit err, a GSM-7 escape (0x1B) inside the text.
        "id:117062714244798261 sub:001 dlvrd:001 submit date:1706271624 done date:1706271624 stat:DELIVRD "
        "err:0000 text:H\x1bello world",
        ReceiptText(
            "117062714244798261",
            1,
            1,
            datetime(2017, 6, 27, 16, 24),
            datetime(2017, 6, 27, 16, 24),
            "DELIVRD",
            "0000",
            "H\x1bello world",
        ),
    ),
    (
        # uudashr/jsmpp issue #67: no sub, no dlvrd, no text.
        "id:0654354026 submit date:2302101454 done date:2302101454 stat:DELIVRD err:000",
        ReceiptText(
            "0654354026", None, None, datetime(2023, 2, 10, 14, 54), datetime(2023, 2, 10, 14, 54), "DELIVRD", "000"
        ),
    ),
    (
        # opentelecoms-org/jsmpp issue #62: sub and dlvrd omitted, text present.
        "id:1526758174 submit date:1701240904 done date:1701240904 stat:DELIVRD err:000 text:hellow",
        ReceiptText(
            "1526758174",
            None,
            None,
            datetime(2017, 1, 24, 9, 4),
            datetime(2017, 1, 24, 9, 4),
            "DELIVRD",
            "000",
            "hellow",
        ),
    ),
    (
        # jookies/jasmin issue #70 (Clickatell): 32-hex-digit id, dates with seconds, empty text.
        "id:a29f6845555647139e5c8f3b817f2c9a sub:001 dlvrd:001 submit date:141023215253 "
        "done date:141023215259 stat:DELIVRD err:000 text:",
        ReceiptText(
            "a29f6845555647139e5c8f3b817f2c9a",
            1,
            1,
            datetime(2014, 10, 23, 21, 52, 53),
            datetime(2014, 10, 23, 21, 52, 59),
            "DELIVRD",
            "000",
            "",
        ),
    ),
    (
        # funbox/smppex issue #46: base-36 id, dates written as SMPP absolute times (offset dropped), no text.
        "id:rdwjwxns18krxr9936ey96ymcw sub:000 dlvrd:000 submit date:180711070003912+ "
        "done date:180711070000012+ stat:UNDELIV err:000",
        ReceiptText(
            "rdwjwxns18krxr9936ey96ymcw",
            0,
            0,
            datetime(2018, 7, 11, 7, 0, 3, 900_000),
            datetime(2018, 7, 11, 7, 0, 0),
            "UNDELIV",
            "000",
        ),
    ),
    (
        # python-smpplib/python-smpplib issue #21 (comment of 2019-07-23): a text longer than appendix B's 20 chars.
        "id:0620903492 sub:001 dlvrd:001 submit date:1907231741 done date:1907231741 stat:DELIVRD err:000 "
        "text:Seu codigo de confirmacao para acessar",
        ReceiptText(
            "0620903492",
            1,
            1,
            datetime(2019, 7, 23, 17, 41),
            datetime(2019, 7, 23, 17, 41),
            "DELIVRD",
            "000",
            "Seu codigo de confirmacao para acessar",
        ),
    ),
    (
        # help.nexmo.com "What is Nexmo's SMPP DLR format" (template filled in): "text:none " with a trailing blank.
        "id:1715004 sub:001 dlvrd:000 submit date:2406011230 done date:2406011231 stat:EXPIRED err:003 text:none ",
        ReceiptText(
            "1715004",
            1,
            0,
            datetime(2024, 6, 1, 12, 30),
            datetime(2024, 6, 1, 12, 31),
            "EXPIRED",
            "003",
            "none ",
        ),
    ),
    (
        # SMPP 3.4 appendix B itself (quoted in komuw/naz issue #82) writes the key "Text:" and breaks the line.
        "id:0123456789 sub:001 dlvrd:001 submit date:0505051200 done\ndate:0505051201 stat:DELIVRD err:0 Text:abc: def",
        ReceiptText(
            "0123456789",
            1,
            1,
            datetime(2005, 5, 5, 12, 0),
            datetime(2005, 5, 5, 12, 1),
            "DELIVRD",
            "0",
            "abc: def",
        ),
    ),
    (
        # onlinecity/php-smpp issue #29 asks whether "err: 0" (blank after the colon) occurs; tolerated.
        "id:42 sub:1 dlvrd:1 submit date:2406011230 done date:2406011231 stat:DELIVRD err: 0 text:x",
        ReceiptText("42", 1, 1, datetime(2024, 6, 1, 12, 30), datetime(2024, 6, 1, 12, 31), "DELIVRD", "0", "x"),
    ),
    (
        # jookies/jasmin issue #916 (dlrlookupd log, fields re-assembled): dashed non-UUID id, ACCEPTD, 000 counts.
        "id:1101C1-C9D03D-F000 sub:000 dlvrd:000 submit date:2010290238 done date:2010290238 stat:ACCEPTD err:000 "
        "text:",
        ReceiptText(
            "1101C1-C9D03D-F000",
            0,
            0,
            datetime(2020, 10, 29, 2, 38),
            datetime(2020, 10, 29, 2, 38),
            "ACCEPTD",
            "000",
            "",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), REAL_WORLD)
def test_real_world_texts(text: str, expected: ReceiptText) -> None:
    assert parse_receipt_text(text) == expected
    assert read_receipt(text.encode("latin-1"), ()).fields == expected


@pytest.mark.parametrize(
    "text",
    [
        # Odd spellings, order, case and spacing: every one reads as STANDARD does.
        STANDARD.upper().replace("HELLO WORLD", "Hello world"),
        STANDARD.replace("submit date", "submit_date").replace("done date", "done_date"),
        STANDARD.replace("submit date", "submitdate").replace("done date", "done-date"),
        "  id: 1715004   sub : 001\tdlvrd:001  submit  date: 2406011230\r\ndone date:2406011231 stat:DELIVRD "
        "err:000 text:Hello world",
        "stat:DELIVRD err:000 done date:2406011231 submit date:2406011230 dlvrd:001 sub:001 id:1715004 "
        "text:Hello world",
        "id:1715004 sub:001 dlvrd:001 submit date:2024-06-01 12:30 done date:2024/06/01 12:31:00 stat:DELIVRD err:000 "
        "text:Hello world",
    ],
)
def test_tolerated_layouts(text: str) -> None:
    got = parse_receipt_text(text)
    want = parse_receipt_text(STANDARD)
    assert got.message_id == want.message_id
    assert (got.submitted, got.delivered, got.stat, got.err, got.text) == (1, 1, "DELIVRD", "000", "Hello world")
    assert got.submit_date == want.submit_date
    assert got.done_date is not None and got.done_date.replace(second=0) == want.done_date


def test_text_takes_the_rest_and_later_keys_are_text() -> None:
    fields = parse_receipt_text("id:7 stat:DELIVRD text:id:8 stat:UNDELIV err:1 \x00\xff")
    assert (fields.message_id, fields.stat, fields.err) == ("7", "DELIVRD", None)
    assert fields.text == "id:8 stat:UNDELIV err:1 \x00\xff"


def test_first_occurrence_of_a_key_wins() -> None:
    assert parse_receipt_text("id:1 id:2 stat:DELIVRD").message_id == "1"


def test_keys_need_a_boundary() -> None:
    fields = parse_receipt_text("message_id:5 xstat:FOO id:6 stat:DELIVRD")
    assert (fields.message_id, fields.stat) == ("6", "DELIVRD")


def test_missing_and_unreadable_values_are_none() -> None:
    fields = parse_receipt_text("id: sub:abc dlvrd: submit date:2413011230 done date:99 stat: err:")
    assert fields == ReceiptText()


@pytest.mark.parametrize("text", ["", "hello world", "Your code is 1234", "ids 12:30", "idx:1 status:ok"])
def test_not_a_receipt(text: str) -> None:
    with pytest.raises(ReceiptError):
        parse_receipt_text(text)


def test_error_classes() -> None:
    assert issubclass(ReceiptError, ValueError)
    assert issubclass(ReceiptError, SmppError)


# ---------------------------------------------------------------------------------------------------------------------
# Dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2406011230", datetime(2024, 6, 1, 12, 30)),
        ("240601123045", datetime(2024, 6, 1, 12, 30, 45)),
        ("20240601123045", datetime(2024, 6, 1, 12, 30, 45)),
        ("19991231235959", datetime(1999, 12, 31, 23, 59, 59)),
        ("24060112304531+", None),  # 15 characters: neither form
        ("240601123045312+0", None),
        ("240601123045712-", datetime(2024, 6, 1, 12, 30, 45, 700_000)),
        ("2024-06-01 12:30:45", datetime(2024, 6, 1, 12, 30, 45)),
        ("2024-06-01T12:30", datetime(2024, 6, 1, 12, 30)),
        ("2402301230", None),  # 30 February
        ("2406011260", None),
        ("240601123", None),
        ("24060112301", None),
        ("", None),
        ("000000000000", None),
        ("240601\u0661230", None),  # a non-ASCII digit
        ("24/06/01 12h30", None),
        ("2" * 40, None),
    ],
)
def test_parse_receipt_date(value: str, expected: datetime | None) -> None:
    assert parse_receipt_date(value) == expected


# ---------------------------------------------------------------------------------------------------------------------
# stat


@pytest.mark.parametrize(("stat", "state"), sorted(STAT_STATES.items()))
def test_every_stat_maps_in_any_case(stat: str, state: MessageState) -> None:
    assert stat_to_state(stat) is state
    assert stat_to_state(stat.lower()) is state
    assert stat_to_state(f" {stat.title()} ") is state


@pytest.mark.parametrize("state", list(MessageState))
def test_every_state_has_an_appendix_b_stat_that_reads_back(state: MessageState) -> None:
    assert len(STATE_STATS[state]) == 7
    assert stat_to_state(STATE_STATS[state]) is state


@pytest.mark.parametrize(
    ("stat", "final"),
    [
        ("DELIVRD", True),
        ("EXPIRED", True),
        ("DELETED", True),
        ("UNDELIV", True),
        ("UNKNOWN", True),
        ("REJECTD", True),
        ("ENROUTE", False),
        ("ACCEPTD", False),
        ("BUFFRED", False),  # Mblox extension, opentelecoms-org/jsmpp issue #9
        ("ACKED", False),  # Mblox
        ("FAILED", True),  # Mblox
    ],
)
def test_final_and_intermediate(stat: str, final: bool) -> None:
    receipt = read_receipt(f"id:1 stat:{stat}".encode(), ())
    assert receipt.state_recognised
    assert receipt.is_final is final


def test_unknown_stat_is_unknown_but_flagged_and_kept() -> None:
    receipt = read_receipt(b"id:1 stat:SCHEDLD err:000", ())
    assert receipt.state is MessageState.UNKNOWN
    assert not receipt.state_recognised
    assert receipt.stat == "SCHEDLD"


def test_known_unknown_is_recognised() -> None:
    receipt = read_receipt(b"id:1 stat:UNKNOWN", ())
    assert (receipt.state, receipt.state_recognised) == (MessageState.UNKNOWN, True)


def test_no_state_anywhere() -> None:
    receipt = read_receipt(b"id:1 err:000", ())
    assert (receipt.state, receipt.state_recognised, receipt.stat) == (MessageState.UNKNOWN, False, None)


# ---------------------------------------------------------------------------------------------------------------------
# read_receipt: TLVs and text


def test_tlvs_win_over_text() -> None:
    tlvs = ((int(Tag.RECEIPTED_MESSAGE_ID), b"1A2B3C\x00"), (int(Tag.MESSAGE_STATE), b"\x05"))
    receipt = read_receipt(STANDARD.encode(), tlvs)
    assert (receipt.message_id, receipt.state, receipt.id_from_tlv, receipt.state_from_tlv) == (
        "1A2B3C",
        MessageState.UNDELIVERABLE,
        True,
        True,
    )
    assert receipt.fields is not None and receipt.fields.message_id == "1715004"
    assert receipt.stat == "DELIVRD"
    assert receipt.done_date == datetime(2024, 6, 1, 12, 31)
    assert receipt.submit_date == datetime(2024, 6, 1, 12, 30)
    assert receipt.err == "000"


def test_text_only() -> None:
    receipt = read_receipt(STANDARD.encode(), ())
    assert receipt == Receipt(
        message_id="1715004",
        state=MessageState.DELIVERED,
        state_recognised=True,
        id_from_tlv=False,
        state_from_tlv=False,
        network_error=None,
        fields=parse_receipt_text(STANDARD),
        raw_text=STANDARD,
    )


def test_tlv_only_receipt() -> None:
    tlvs = (
        (int(Tag.RECEIPTED_MESSAGE_ID), b"0e999f21-81ef-4974-a414-3de98174e3c7\x00"),
        STATE_TLV_DELIVERED,
        (int(Tag.NETWORK_ERROR_CODE), b"\x03\x00\x00"),
    )
    receipt = read_receipt(b"", tlvs)
    assert receipt.message_id == "0e999f21-81ef-4974-a414-3de98174e3c7"
    assert receipt.state is MessageState.DELIVERED
    assert receipt.network_error == NetworkError(network_type=3, error_code=0)
    assert (receipt.fields, receipt.raw_text) == (None, "")
    assert (receipt.stat, receipt.err, receipt.done_date, receipt.submit_date) == (None, None, None, None)


def test_receipted_message_id_without_nul_and_with_padding() -> None:
    tlvs = ((int(Tag.RECEIPTED_MESSAGE_ID), b" 00B8BE19 "),)
    assert read_receipt(b"", tlvs).message_id == "00B8BE19"
    tlvs = ((int(Tag.RECEIPTED_MESSAGE_ID), b"ABC\x00junk"),)
    assert read_receipt(b"", tlvs).message_id == "ABC"


def test_empty_receipted_message_id_falls_back_to_text() -> None:
    receipt = read_receipt(STANDARD.encode(), ((int(Tag.RECEIPTED_MESSAGE_ID), b"\x00"),))
    assert (receipt.message_id, receipt.id_from_tlv) == ("1715004", False)


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x09", b"\x02\x00", b"\xff"])
def test_malformed_or_foreign_message_state_falls_back_to_text(value: bytes) -> None:
    # 0 (SCHEDULED) and 9 (SKIPPED) are SMPP 5.0 states outside constants.MessageState.
    receipt = read_receipt(STANDARD.encode(), ((int(Tag.MESSAGE_STATE), value),))
    assert (receipt.state, receipt.state_recognised, receipt.state_from_tlv) == (MessageState.DELIVERED, True, False)


def test_first_tlv_of_a_kind_wins() -> None:
    tlvs = (
        (int(Tag.RECEIPTED_MESSAGE_ID), b"first\x00"),
        (int(Tag.RECEIPTED_MESSAGE_ID), b"second\x00"),
        (int(Tag.MESSAGE_STATE), b"\x03"),
        (int(Tag.MESSAGE_STATE), b"\x02"),
    )
    receipt = read_receipt(b"", tlvs)
    assert (receipt.message_id, receipt.state) == ("first", MessageState.EXPIRED)


@pytest.mark.parametrize("value", [b"", b"\x03\x00", b"\x03\x00\x00\x00"])
def test_malformed_network_error_code_is_ignored(value: bytes) -> None:
    receipt = read_receipt(STANDARD.encode(), ((int(Tag.NETWORK_ERROR_CODE), value),))
    assert receipt.network_error is None


def test_network_error_code_decoding() -> None:
    receipt = read_receipt(STANDARD.encode(), ((int(Tag.NETWORK_ERROR_CODE), b"\x08\x01\x2c"),))
    assert receipt.network_error == NetworkError(network_type=8, error_code=300)


def test_text_in_message_payload() -> None:
    tlvs = ((int(Tag.MESSAGE_PAYLOAD), STANDARD.encode()),)
    receipt = read_receipt(b"", tlvs)
    assert (receipt.message_id, receipt.state, receipt.raw_text) == ("1715004", MessageState.DELIVERED, STANDARD)


def test_short_message_preferred_over_payload() -> None:
    tlvs = ((int(Tag.MESSAGE_PAYLOAD), b"id:2 stat:EXPIRED"),)
    assert read_receipt(b"id:1 stat:DELIVRD", tlvs).message_id == "1"


def test_ucs2_receipt_text() -> None:
    receipt = read_receipt(STANDARD.encode("utf-16-be"), (), data_coding=DataCoding.UCS2)
    assert (receipt.message_id, receipt.state, receipt.raw_text) == ("1715004", MessageState.DELIVERED, STANDARD)


def test_ascii_receipt_labelled_ucs2_is_read_as_ascii() -> None:
    receipt = read_receipt(STANDARD.encode(), (), data_coding=DataCoding.UCS2)
    assert receipt.raw_text == STANDARD


def test_odd_length_ucs2_does_not_raise() -> None:
    receipt = read_receipt("id:9 stat:DELIVRD".encode("utf-16-be") + b"\x00", (), data_coding=DataCoding.UCS2)
    assert receipt.message_id == "9"


def test_non_utf8_bytes_and_trailing_nuls() -> None:
    receipt = read_receipt(b"id:9 stat:DELIVRD text:\xff\xfe\x80 ok\x00\x00", ())
    assert receipt.fields is not None and receipt.fields.text == "\xff\xfe\x80 ok"


@pytest.mark.parametrize(
    ("short_message", "tlvs"),
    [
        (b"", ()),
        (b"hello", ()),
        (b"stat:DELIVRD err:000", ()),
        (b"id: stat:DELIVRD", ()),
        (b"", (STATE_TLV_DELIVERED, (int(Tag.RECEIPTED_MESSAGE_ID), b"\x00"))),
    ],
)
def test_no_message_id_is_a_receipt_error(short_message: bytes, tlvs: Tlvs) -> None:
    with pytest.raises(ReceiptError):
        read_receipt(short_message, tlvs)


# ---------------------------------------------------------------------------------------------------------------------
# format_receipt_text


def test_format_appendix_b() -> None:
    text = format_receipt_text(
        "1715004",
        submit_date=datetime(2024, 6, 1, 12, 30, 59),
        done_date=datetime(2024, 6, 1, 12, 31),
        text="Hello world, this is longer than twenty",
    )
    assert text == (
        "id:1715004 sub:001 dlvrd:001 submit date:2406011230 done date:2406011231 stat:DELIVRD err:000 "
        "text:Hello world, this is"
    )


def test_format_undelivered_with_seconds_and_raw_err() -> None:
    text = format_receipt_text(
        "ab-12",
        MessageState.UNDELIVERABLE,
        submit_date=datetime(2024, 6, 1, 12, 30, 59),
        done_date=datetime(2024, 6, 1, 12, 31, 1),
        err="0x1B",
        seconds=True,
    )
    assert text == (
        "id:ab-12 sub:001 dlvrd:000 submit date:240601123059 done date:240601123101 stat:UNDELIV err:0x1B text:"
    )


def test_format_raw_stat() -> None:
    text = format_receipt_text("1", "BUFFRED", submit_date=datetime(2024, 1, 1), done_date=datetime(2024, 1, 1), err=5)
    assert " stat:BUFFRED err:005 " in text


@pytest.mark.parametrize("message_id", ["", " 1", "1 2", "1\n"])
def test_format_rejects_ids_that_would_not_read_back(message_id: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        format_receipt_text(message_id, submit_date=datetime(2024, 1, 1), done_date=datetime(2024, 1, 1))


def test_format_rejects_unwritable_years() -> None:
    with pytest.raises(ValueError, match="year"):
        format_receipt_text("1", submit_date=datetime(1999, 1, 1), done_date=datetime(2024, 1, 1))


_IDS = st.text(alphabet="0123456789abcdefABCDEF-xyzXYZ_", min_size=1, max_size=64)
_MINUTES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59)).map(
    lambda dt: dt.replace(second=0, microsecond=0)
)


@settings(max_examples=500)
@given(
    message_id=_IDS,
    state=st.sampled_from(list(MessageState)),
    submit_date=_MINUTES,
    done_date=_MINUTES,
    submitted=st.integers(0, 999),
    delivered=st.integers(0, 999),
    err=st.integers(0, 999),
    text=st.text(max_size=20),
)
def test_parse_of_format_round_trips(
    message_id: str,
    state: MessageState,
    submit_date: datetime,
    done_date: datetime,
    submitted: int,
    delivered: int,
    err: int,
    text: str,
) -> None:
    formatted = format_receipt_text(
        message_id,
        state,
        submit_date=submit_date,
        done_date=done_date,
        submitted=submitted,
        delivered=delivered,
        err=err,
        text=text,
    )
    expected = ReceiptText(
        message_id, submitted, delivered, submit_date, done_date, STATE_STATS[state], f"{err:03d}", text
    )
    assert parse_receipt_text(formatted) == expected
    assert receipt_module._scan_any(formatted) == expected  # the slow path agrees with the fast one
    receipt = read_receipt(formatted.encode("utf-8"), ())  # a non-ASCII text reads as mojibake, the rest intact
    assert (receipt.message_id, receipt.state, receipt.state_recognised) == (message_id, state, True)


# ---------------------------------------------------------------------------------------------------------------------
# Fuzz invariants

_KEYS = ["id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:", "Text:", "submit_date:"]
_FRAGMENTS = st.one_of(
    st.sampled_from([*_KEYS, " ", "  ", "\t", "\n", ":", "DELIVRD", "2406011230", "240601123000012+", "0" * 30]),
    st.text(max_size=6),
    st.from_regex(r"[0-9]{1,20}", fullmatch=True),
)
_RECEIPTISH = st.lists(_FRAGMENTS, max_size=24).map("".join)


def _parse_or_error(text: str) -> None:
    try:
        fields = parse_receipt_text(text)
    except ReceiptError:
        return
    assert isinstance(fields, ReceiptText)


@settings(max_examples=500)
@given(st.text())
def test_parser_raises_only_receipt_error_on_any_text(text: str) -> None:
    _parse_or_error(text)


@settings(max_examples=500)
@given(_RECEIPTISH)
def test_parser_raises_only_receipt_error_on_receipt_like_text(text: str) -> None:
    _parse_or_error(text)


@settings(max_examples=500)
@given(
    st.from_regex(
        r"id:[^\s:]{0,8}( sub:[0-9]{0,12})?( dlvrd:[0-9]{0,3})? submit[ _]date:[0-9]{0,16} done[ _]date:[0-9]{0,14}"
        r" stat:[^\s:]{0,8} err:[^\s:]{0,4}( text:.{0,30})?",
        fullmatch=True,
    )
)
def test_fast_path_reads_as_the_general_scanner(text: str) -> None:
    assert receipt_module._STANDARD_RE.fullmatch(text) is not None
    assert receipt_module._scan(text) == receipt_module._scan_any(text)


_TAGS = st.sampled_from(
    [int(Tag.RECEIPTED_MESSAGE_ID), int(Tag.MESSAGE_STATE), int(Tag.NETWORK_ERROR_CODE), int(Tag.MESSAGE_PAYLOAD)]
)
_TLVS = st.lists(st.tuples(st.one_of(_TAGS, st.integers(0, 0xFFFF)), st.binary(max_size=12)), max_size=6).map(tuple)


@settings(max_examples=500)
@given(
    st.one_of(st.binary(max_size=200), _RECEIPTISH.map(lambda text: text.encode("utf-8"))),
    _TLVS,
    st.sampled_from([0, 1, 3, 8, 0x18, 0xF0]),
)
def test_read_receipt_raises_only_receipt_error(short_message: bytes, tlvs: Tlvs, data_coding: int) -> None:
    try:
        receipt = read_receipt(short_message, tlvs, data_coding=data_coding)
    except ReceiptError:
        return
    assert receipt.message_id
    assert isinstance(receipt.state, MessageState)


# ---------------------------------------------------------------------------------------------------------------------
# Message ids


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("1715004", "1715004"),
        ("0001715004", "1715004"),
        ("001A2B3C", "1a2b3c"),
        (" 1a2b3c\x00", "1a2b3c"),
        ("12\x00garbage", "12"),
        ("0000", "0"),
        ("0", "0"),
        ("", ""),
        ("1101C1-C9D03D-F000", "1101c1-c9d03d-f000"),  # jookies/jasmin issue #916: only the case differed
        ("0E999F21-81EF-4974-A414-3DE98174E3C7", "0e999f21-81ef-4974-a414-3de98174e3c7"),
        # jookies/jasmin issue #643: the same UUID with its leading zero stripped.
        ("E999F21-81EF-4974-A414-3DE98174E3C7", "0e999f21-81ef-4974-a414-3de98174e3c7"),
        ("6C7C7DE28BB3E961947700000000FE37", "6c7c7de2-8bb3-e961-9477-00000000fe37"),  # python-smpplib PR #90
        ("rdwjwxns18krxr9936ey96ymcw", "rdwjwxns18krxr9936ey96ymcw"),
        ("MSG-42", "msg-42"),
    ],
)
def test_normalise_message_id(raw: str, normalised: str) -> None:
    assert normalise_message_id(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("1715004", ("1715004", "24203268")),
        ("1A2B3C", ("1715004",)),
        ("001a2b3c", ("1715004",)),
        ("10", ("10", "16")),
        ("7", ("7",)),
        ("000", ("0",)),
        ("", ()),
        (" \x00", ()),
        ("1101C1-C9D03D-F000", ("1101c1-c9d03d-f000",)),
        ("0e999f21-81ef-4974-a414-3de98174e3c7", ("0e999f21-81ef-4974-a414-3de98174e3c7",)),
        (
            "0e999f2181ef4974a4143de98174e3c7",
            ("0e999f21-81ef-4974-a414-3de98174e3c7", str(0x0E999F2181EF4974A4143DE98174E3C7)),
        ),
        ("1" * 65, ("1" * 65,)),  # too long to be a number
    ],
)
def test_message_id_keys(raw: str, keys: tuple[str, ...]) -> None:
    assert message_id_keys(raw) == keys


@pytest.mark.parametrize(
    ("submit_sm_resp_id", "receipt_id"),
    [
        ("812FC7470000001B", "9308878062554710043"),  # jookies/jasmin issue #586 (code_dlr_msgid log line)
        ("10C8F40D", "281605133"),  # jookies/jasmin issue #535
        ("39f99dd5", "0972660181"),  # jookies/jasmin issue #1034: hex resp, zero-padded decimal receipt
        ("00B8BE19", "B8BE19"),  # jookies/jasmin issue #1129: leading zeros
        ("0e999f21-81ef-4974-a414-3de98174e3c7", "E999F21-81EF-4974-A414-3DE98174E3C7"),  # jookies/jasmin #643
        ("1101c1-c9d03d-f000", "1101C1-C9D03D-F000"),  # jookies/jasmin issue #916
    ],
)
def test_real_world_id_pairs_share_a_key(submit_sm_resp_id: str, receipt_id: str) -> None:
    assert set(message_id_keys(submit_sm_resp_id)) & set(message_id_keys(receipt_id))


def test_message_id_key_for_a_connector_policy() -> None:
    # Nexmo's SMPP page (help.nexmo.com): hex in submit_sm_resp, decimal in the receipt.
    assert message_id_key("812FC7470000001B", IdRadix.HEX) == message_id_key("9308878062554710043", IdRadix.DECIMAL)
    assert message_id_key("1A2B3C", IdRadix.DECIMAL) is None
    assert message_id_key("1A2B3C", IdRadix.HEX) == "1715004"
    assert message_id_key("0010", IdRadix.HEX) == "16"
    assert message_id_key("0010", IdRadix.DECIMAL) == "10"
    assert message_id_key("0010", IdRadix.TEXT) == "10"
    assert message_id_key("MSG-1", IdRadix.TEXT) == "msg-1"
    assert message_id_key(" \x00", IdRadix.TEXT) is None
    assert message_id_key("1" * 65, IdRadix.DECIMAL) is None
    for raw in ("0010", "1a2b3c", "0e999f2181ef4974a4143de98174e3c7"):
        for radix in (IdRadix.DECIMAL, IdRadix.HEX):
            key = message_id_key(raw, radix)
            assert key is None or key in message_id_keys(raw)


_CASES: st.SearchStrategy[Callable[[str], str]] = st.sampled_from([str.lower, str.upper, str.strip])


@settings(max_examples=500)
@given(n=st.integers(0, 2**200), hex_zeros=st.integers(0, 12), dec_zeros=st.integers(0, 12), case=_CASES)
def test_hex_and_decimal_forms_of_one_number_share_a_key(
    n: int, hex_zeros: int, dec_zeros: int, case: Callable[[str], str]
) -> None:
    hex_form = case("0" * hex_zeros + format(n, "x"))
    dec_form = "0" * dec_zeros + str(n)
    if max(len(hex_form), len(dec_form)) > receipt_module.MAX_NUMERIC_ID_LENGTH:
        return
    assert set(message_id_keys(hex_form)) & set(message_id_keys(dec_form))
    assert str(n) in message_id_keys(hex_form)
    if len(dec_form) != 32:  # 32 digits also read as a UUID, first
        assert message_id_keys(dec_form)[0] == str(n)


@settings(max_examples=500)
@given(st.uuids())
def test_uuid_forms_normalise_equal(u: uuid.UUID) -> None:
    forms = [str(u), str(u).upper(), u.hex, u.hex.upper(), f" {u}\x00"]
    assert {normalise_message_id(form) for form in forms} == {str(u)}
    assert message_id_keys(str(u)) == (str(u),)
    assert all(message_id_keys(form)[0] == str(u) for form in forms)


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_id_functions_never_raise(raw: str) -> None:
    normalise_message_id(raw)
    keys = message_id_keys(raw)
    assert len(set(keys)) == len(keys)
    for radix in IdRadix:
        message_id_key(raw, radix)
