"""GSM 03.38 / UCS-2 / data_coding: golden bytes from the standard, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.text import (
    GSM_BASIC,
    GSM_CHARS,
    GSM_EXTENSION,
    Encoding,
    TextError,
    choose_encoding,
    data_coding_for,
    decode_gsm7,
    decode_short_message,
    decode_text,
    decode_ucs2,
    encode_gsm7,
    encode_text,
    encode_ucs2,
    gsm7_septet_count,
    is_gsm7,
    pack_septets,
    unpack_septets,
    utf16_unit_count,
)

gsm_text = st.text(alphabet=sorted(GSM_CHARS), max_size=400)


# --- golden facts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "septet"),
    [
        ("@", 0x00),
        ("£", 0x01),
        ("$", 0x02),
        ("¥", 0x03),
        ("Ç", 0x09),
        ("\n", 0x0A),
        ("\r", 0x0D),
        ("Δ", 0x10),
        ("_", 0x11),
        ("Ω", 0x15),
        ("Ξ", 0x1A),
        ("É", 0x1F),
        (" ", 0x20),
        ("¤", 0x24),
        ("¡", 0x40),
        ("A", 0x41),
        ("§", 0x5F),
        ("¿", 0x60),
        ("a", 0x61),
        ("à", 0x7F),
    ],
)
def test_basic_table_positions(char: str, septet: int) -> None:
    assert encode_gsm7(char) == bytes((septet,))
    assert decode_gsm7(bytes((septet,))) == char


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("\f", 0x0A),
        ("^", 0x14),
        ("{", 0x28),
        ("}", 0x29),
        ("\\", 0x2F),
        ("[", 0x3C),
        ("~", 0x3D),
        ("]", 0x3E),
        ("|", 0x40),
        ("€", 0x65),
    ],
)
def test_extension_table_costs_two_septets(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes((0x1B, code))
    assert gsm7_septet_count(char) == 2
    assert decode_gsm7(bytes((0x1B, code))) == char


def test_tables_are_complete_and_distinct() -> None:
    assert len(GSM_BASIC) == 128
    assert len(GSM_CHARS) == 127 + len(GSM_EXTENSION)  # every basic position but ESC, plus the extension
    assert "ç" not in GSM_CHARS  # 0x09 is the capital Ç
    assert "`" not in GSM_CHARS
    assert "\x1b" not in GSM_CHARS


def test_at_sign_keeps_its_byte() -> None:
    data = encode_gsm7("a@b@")
    assert data == b"a\x00b\x00"
    assert decode_gsm7(data) == "a@b@"


@pytest.mark.parametrize("text", ["`", "ç", "Привет", "😀", "\x00", "\x1b", "\x7f", "é`"])
def test_encode_gsm7_rejects_other_characters(text: str) -> None:
    with pytest.raises(TextError):
        encode_gsm7(text)


def test_choose_encoding() -> None:
    assert choose_encoding("Hello {world} €5 @home") is Encoding.GSM7
    assert choose_encoding("") is Encoding.GSM7
    assert choose_encoding("Привет") is Encoding.UCS2
    assert choose_encoding("ç") is Encoding.UCS2
    # data_coding 0 meaning Latin-1 or ASCII: GSM text outside that alphabet goes UCS2
    assert choose_encoding("Δ", Encoding.LATIN1) is Encoding.UCS2
    assert choose_encoding("é", Encoding.LATIN1) is Encoding.GSM7
    assert choose_encoding("é", Encoding.ASCII) is Encoding.UCS2
    assert choose_encoding("€", Encoding.LATIN1) is Encoding.UCS2
    assert is_gsm7("abc{")


def test_decode_escape_policy() -> None:
    assert decode_gsm7(b"\x1bA") == "A"  # unknown extension code: the basic character (23.038)
    assert decode_gsm7(b"\x1b\x1bA") == " A"  # ESC ESC: a space
    assert decode_gsm7(b"ab\x1b") == "ab "  # trailing ESC: a space
    assert decode_gsm7(b"\x80a") == "\ufffda"


def test_ucs2_surrogate_pairs() -> None:
    assert encode_ucs2("😀") == b"\xd8\x3d\xde\x00"
    assert utf16_unit_count("a😀я") == 4
    assert decode_ucs2(b"\xd8\x3d\xde\x00") == "😀"
    assert decode_ucs2(b"\x00a\x00") == "a\ufffd"  # odd length
    assert decode_ucs2(b"\xd8\x3d\x00a") == "\ufffda"  # lone high surrogate
    with pytest.raises(TextError):
        encode_ucs2("a\ud800")


def test_pack_septets_golden() -> None:
    assert pack_septets(encode_gsm7("hellohello")).hex() == "e8329bfd4697d9ec37"
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37")) == b"hellohello"
    # 7 septets leave 7 spare bits: CR fills them and unpacking drops it (not a trailing '@')
    packed = pack_septets(b"abcdefg")
    assert len(packed) == 7
    assert packed[-1] >> 1 == 0x0D
    assert unpack_septets(packed) == b"abcdefg"
    assert unpack_septets(pack_septets(b"abc", fill_bits=1), 3, fill_bits=1) == b"abc"


@pytest.mark.parametrize(
    ("data_coding", "data", "expected"),
    [
        (0x00, b"@\x00", "¡@"),  # GSM-7 default alphabet: 0x40 is '¡', 0x00 is '@'
        (0x01, b"@", "@"),
        (0x03, b"\xe9", "é"),
        (0x08, "Привет".encode("utf-16-be"), "Привет"),
        (0x18, "Привет".encode("utf-16-be"), "Привет"),  # flash UCS2
        (0x04, b"\xff\x00", "\xff\x00"),  # binary: octets as Latin-1
        (0x02, b"\x80", "\x80"),
        (0x06, "Привет".encode("iso8859_5"), "Привет"),
        (0xF0, b"\x00", "@"),  # message class 0, GSM-7
        (0xF4, b"\x00", "\x00"),  # message class 0, 8-bit data
        (0x10, b"\x00", "@"),  # general group, class 0, GSM-7
        (0xE0, "я".encode("utf-16-be"), "я"),  # message waiting, UCS2
        (0xC0, b"\x00", "@"),
    ],
)
def test_decode_short_message(data_coding: int, data: bytes, expected: str) -> None:
    assert decode_short_message(data, data_coding) == expected


def test_data_coding_zero_follows_the_connector() -> None:
    assert decode_short_message(b"@", 0, Encoding.ASCII) == "@"
    assert decode_short_message(b"\xe9", 0, Encoding.LATIN1) == "é"
    assert decode_short_message(b"\x00", 0) == "@"


def test_data_coding_for() -> None:
    assert data_coding_for(Encoding.GSM7) == 0
    assert data_coding_for(Encoding.GSM7, 0xF0) == 0xF0
    assert data_coding_for(Encoding.UCS2) == 8
    assert data_coding_for(Encoding.LATIN1) == 3
    assert data_coding_for(Encoding.ASCII) == 1


# --- properties -----------------------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(gsm_text)
def test_gsm7_round_trip(text: str) -> None:
    data = encode_gsm7(text)
    assert max(data, default=0) < 0x80
    assert decode_gsm7(data) == text
    assert len(data) == gsm7_septet_count(text) == len(text) + sum(c in GSM_EXTENSION.values() for c in text)
    assert choose_encoding(text) is Encoding.GSM7


@settings(max_examples=500)
@given(st.text())
def test_gsm7_accepts_exactly_its_repertoire(text: str) -> None:
    if set(text) <= GSM_CHARS:
        assert decode_gsm7(encode_gsm7(text)) == text
    else:
        with pytest.raises(TextError):
            encode_gsm7(text)
        assert choose_encoding(text) is Encoding.UCS2


@settings(max_examples=500)
@given(st.text())
def test_ucs2_round_trip(text: str) -> None:
    data = encode_ucs2(text)
    assert len(data) == 2 * utf16_unit_count(text)
    assert decode_short_message(data, 8) == text


@settings(max_examples=500)
@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)))
def test_pack_unpack_round_trip(septets: bytes) -> None:
    assert unpack_septets(pack_septets(septets), len(septets)) == septets
    assert len(pack_septets(septets)) == (7 * len(septets) + 7) // 8
    if not septets.endswith(b"\r"):  # a final CR on an octet boundary reads as padding (23.038 6.1.2.3.1)
        assert unpack_septets(pack_septets(septets)) == septets
    for fill in range(1, 7):
        assert unpack_septets(pack_septets(septets, fill), len(septets), fill) == septets


@settings(max_examples=500)
@given(st.binary(max_size=400), st.integers(0, 255), st.sampled_from(list(Encoding)))
def test_decoding_never_raises(data: bytes, data_coding: int, default: Encoding) -> None:
    text = decode_short_message(data, data_coding, default)
    assert isinstance(text, str)
    decode_text(data, default)
    unpack_septets(data)


@settings(max_examples=500)
@given(st.text(max_size=50), st.sampled_from(list(Encoding)))
def test_encode_raises_only_text_error(text: str, encoding: Encoding) -> None:
    try:
        data = encode_text(text, encoding)
    except TextError:
        return
    assert decode_text(data, encoding) == text
