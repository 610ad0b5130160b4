"""Message text: alphabets and data_coding (GSM 03.38 / 3GPP TS 23.038, SMPP 3.4 section 5.2.19).

Policy, in one place:

* **Encoding** raises :class:`TextError` when the text cannot be written in the requested alphabet (a character outside
  it, or a lone surrogate, which is not text). It never substitutes characters silently.
* **Decoding** never raises: bytes that do not fit the alphabet become U+FFFD (REPLACEMENT CHARACTER), so a message
  from a peer is always delivered and the damage is visible.

GSM-7 on the SMPP wire is unpacked by default (one septet per octet, the high bit clear); the SMSC packs it for the air
interface. :func:`pack_septets` / :func:`unpack_septets` serve the connectors that want packed septets.
"""

from __future__ import annotations

import codecs
import re
from enum import StrEnum
from typing import Final

from .constants import DataCoding
from .errors import SmppError


class TextError(SmppError, ValueError):
    """The text cannot be encoded in the requested alphabet (the message names the first offending character)."""


class Encoding(StrEnum):
    """How a message's characters become octets. Values are stable names for configuration."""

    GSM7 = "gsm7"  # GSM 03.38 default alphabet + extension table, one septet per octet (unpacked)
    LATIN1 = "latin1"  # ISO-8859-1, 8 bits per character on the air
    UCS2 = "ucs2"  # UTF-16BE; astral characters (emoji) take a surrogate pair
    ASCII = "ascii"  # IA5: an SMSC whose default alphabet is ASCII converts it to GSM-7 for the air


# Module aliases: reading an Enum member as a class attribute costs ~0.2 µs, too much on the hot path.
_GSM7: Final = Encoding.GSM7
_LATIN1: Final = Encoding.LATIN1
_UCS2: Final = Encoding.UCS2
_ASCII: Final = Encoding.ASCII


# --- GSM 03.38 tables -------------------------------------------------------------------------------------------------

ESCAPE: Final = 0x1B
"""Escape to the extension table: the next septet is looked up there, so the character costs two septets."""

GSM_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F (0x09 is capital C cedilla, as in the standard)
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F: Greek capitals; 0x1B is the escape, not a character
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F (0x24 is the currency sign, '$' is 0x02)
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F ('@' is 0x00)
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
"""The basic table: character at index = septet value."""

GSM_EXTENSION: Final[dict[int, str]] = {
    0x0A: "\f",  # page break (form feed)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
"""Extension table: septet after ESCAPE -> character."""

assert len(GSM_BASIC) == 128 and len(set(GSM_BASIC)) == 128

_GSM_ENCODE: Final[dict[int, str]] = {ord(ch): chr(code) for code, ch in enumerate(GSM_BASIC) if code != ESCAPE}
_GSM_ENCODE.update({ord(ch): f"\x1b{chr(code)}" for code, ch in GSM_EXTENSION.items()})

GSM_CHARS: Final = frozenset(chr(c) for c in _GSM_ENCODE)
"""Every character GSM-7 can carry (basic + extension)."""

GSM_EXTENSION_CHARS: Final = frozenset(GSM_EXTENSION.values())
"""Characters costing two septets."""

# str.translate leaves unmapped characters alone; map the ASCII characters GSM lacks to a non-ASCII marker so the
# final .encode("ascii") rejects them like every other non-GSM character.
_GSM_TRANSLATE: Final = {c: "\x80" for c in range(128)} | _GSM_ENCODE


def _outside(chars: frozenset[str]) -> re.Pattern[str]:
    """A regex finding the first character not in ``chars``."""
    return re.compile("[^" + "".join(re.escape(c) for c in sorted(chars)) + "]")


_NOT_GSM: Final = _outside(GSM_CHARS)
_NOT_GSM_LATIN1: Final = _outside(frozenset(c for c in GSM_CHARS if ord(c) < 0x100))
_NOT_GSM_ASCII: Final = _outside(frozenset(c for c in GSM_CHARS if ord(c) < 0x80))
_NOT_GSM_IN: Final = {_GSM7: _NOT_GSM, _LATIN1: _NOT_GSM_LATIN1, _ASCII: _NOT_GSM_ASCII}

# Fast path for Latin-1 text (Russian Latin-script and most Western text): bytes.translate octet -> septet. Extension
# characters become marker octets 0x80.. (expanded to ESC + code afterwards), characters GSM lacks become 0xFF.
_NOT_GSM_OCTET: Final = 0xFF
_EXTENSION_MARKERS: Final = {
    ch: 0x80 + i for i, ch in enumerate(sorted(c for c in GSM_EXTENSION_CHARS if ord(c) < 0x100))
}
_MARKER_EXPANSIONS: Final = tuple(
    (bytes((m,)), _GSM_ENCODE[ord(ch)].encode("ascii")) for ch, m in _EXTENSION_MARKERS.items()
)


def _latin1_to_gsm_octet(octet: int) -> int:
    char = chr(octet)
    if char in _EXTENSION_MARKERS:
        return _EXTENSION_MARKERS[char]
    septets = _GSM_ENCODE.get(octet)
    return ord(septets) if septets is not None and len(septets) == 1 else _NOT_GSM_OCTET


_LATIN1_TO_GSM: Final = bytes(_latin1_to_gsm_octet(octet) for octet in range(256))

_REPLACEMENT: Final = "\ufffd"
# Decoding table for codecs.charmap_decode: octets >= 0x80 are not septets.
_GSM_DECODE_TABLE: Final = GSM_BASIC + _REPLACEMENT * 128


# --- choosing ---------------------------------------------------------------------------------------------------------


def is_gsm7(text: str, default_alphabet: Encoding = Encoding.GSM7) -> bool:
    """True when every character is in GSM-7 *and* can be written in ``default_alphabet`` (data_coding 0's alphabet)."""
    if default_alphabet is _GSM7:
        return _NOT_GSM.search(text) is None
    return _NOT_GSM_IN.get(default_alphabet, _NOT_GSM).search(text) is None


def choose_encoding(text: str, default_alphabet: Encoding = Encoding.GSM7) -> Encoding:
    """GSM7 when the text fits GSM 03.38 (and the connector's data_coding 0 alphabet can write it), else UCS2."""
    return _GSM7 if is_gsm7(text, default_alphabet) else _UCS2


# --- GSM-7 ------------------------------------------------------------------------------------------------------------


def encode_gsm7(text: str) -> bytes:
    """Text -> unpacked septets (one per octet); extension characters become ESC + code. Raises TextError."""
    septets = try_encode_gsm7(text)
    if septets is None:
        raise _not_gsm7(text)
    return septets


def try_encode_gsm7(text: str) -> bytes | None:
    """:func:`encode_gsm7`, or None when the text is not GSM-7: choosing and encoding in one pass (hot path)."""
    if not text.isascii() and _NOT_GSM.search(text) is not None:  # e.g. Cyrillic: found at the first letter
        return None
    try:
        septets = text.encode("latin-1").translate(_LATIN1_TO_GSM)
    except UnicodeEncodeError:  # Greek capitals or the euro sign
        return text.translate(_GSM_TRANSLATE).encode("ascii")
    if septets.isascii():
        return septets
    if _NOT_GSM_OCTET in septets:
        return None
    for marker, escaped in _MARKER_EXPANSIONS:
        if marker in septets:
            septets = septets.replace(marker, escaped)
    return septets


def _not_gsm7(text: str) -> TextError:
    bad = _NOT_GSM.search(text)
    assert bad is not None
    return TextError(f"character {bad.group()!r} (U+{ord(bad.group()):04X}) at {bad.start()} is not in GSM-7")


def decode_gsm7(septets: bytes) -> str:
    """Unpacked septets -> text. Never raises: octets >= 0x80 become U+FFFD.

    After ESC, a code missing from the extension table reads as its basic-table character (23.038); ESC ESC and a
    trailing ESC read as a space.
    """
    text = codecs.charmap_decode(septets, "strict", _GSM_DECODE_TABLE)[0]
    if ESCAPE not in septets:
        return text
    return _ESCAPED.sub(_unescape, text)


_ESCAPED: Final = re.compile("\x1b(.?)", re.DOTALL)
_EXTENSION_BY_BASIC: Final = {GSM_BASIC[code]: char for code, char in GSM_EXTENSION.items()}


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    if escaped in ("", "\x1b"):  # "display a space until another extension table is defined"
        return " "
    return _EXTENSION_BY_BASIC.get(escaped, escaped)


def gsm7_septet_count(text: str) -> int:
    """Septets the text needs in GSM-7 (extension characters count 2). Raises TextError if it is not GSM-7."""
    return len(encode_gsm7(text))


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets 8-into-7 octets, least significant bit first (23.038 section 6.1.2.1).

    ``fill_bits`` (0-6) zero bits go first, to align the text on a septet boundary after a UDH. When 7 spare bits
    remain in the last octet they hold CR, as 23.038 asks, so the receiver does not read an extra '@'.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    if len(septets) % 8 == 7 and fill_bits == 0:
        septets += b"\r"
    packed = bytearray()
    for start in range(0, len(septets), 8):
        chunk = septets[start : start + 8]
        value = 0
        for shift, septet in enumerate(chunk):
            value |= (septet & 0x7F) << (7 * shift)
        packed += value.to_bytes((7 * len(chunk) + 7) // 8, "little")
    if fill_bits:
        total_bits = 7 * len(septets) + fill_bits
        value = int.from_bytes(packed, "little") << fill_bits
        return value.to_bytes((total_bits + 7) // 8, "little")
    return bytes(packed)


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Inverse of :func:`pack_septets`. Never raises for any ``data``.

    ``count`` is the number of septets when known (the TP-UDL); without it every whole septet is read and a CR that
    is padding (a final CR filling the last octet's 7 spare bits) is dropped.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    available = (8 * len(data) - fill_bits) // 7
    n = available if count is None else min(count, available)
    value = int.from_bytes(data, "little") >> fill_bits
    septets = bytes((value >> (7 * i)) & 0x7F for i in range(n))
    if count is None and fill_bits == 0 and n % 8 == 0 and septets.endswith(b"\r"):
        septets = septets[:-1]
    return septets


# --- UCS-2 / UTF-16 ---------------------------------------------------------------------------------------------------


def encode_ucs2(text: str) -> bytes:
    """Text -> UTF-16BE (emoji as surrogate pairs). Raises TextError on a lone surrogate."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise TextError(f"lone surrogate U+{ord(text[exc.start]):04X} at {exc.start} is not text") from None


def decode_ucs2(data: bytes) -> str:
    """UTF-16BE -> text. Never raises: an odd final octet or a lone surrogate becomes U+FFFD."""
    return codecs.utf_16_be_decode(data, "replace", True)[0]


def utf16_unit_count(text: str) -> int:
    """UTF-16 code units: characters, plus one for each astral character (it takes a surrogate pair)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-be", "surrogatepass")) // 2


# --- 8-bit alphabets --------------------------------------------------------------------------------------------------


def encode_latin1(text: str) -> bytes:
    """Text -> ISO-8859-1. Raises TextError."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise TextError(f"character {text[exc.start]!r} at {exc.start} is not in Latin-1") from None


def encode_ascii(text: str) -> bytes:
    """Text -> ASCII (IA5). Raises TextError."""
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise TextError(f"character {text[exc.start]!r} at {exc.start} is not ASCII") from None


def decode_latin1(data: bytes) -> str:
    """ISO-8859-1 (also the passthrough for 8-bit binary data). Never raises."""
    return codecs.latin_1_decode(data)[0]


def decode_ascii(data: bytes) -> str:
    """ASCII; octets >= 0x80 become U+FFFD. Never raises."""
    return codecs.ascii_decode(data, "replace")[0]


def encode_text(text: str, encoding: Encoding) -> bytes:
    """Text -> octets in ``encoding`` (GSM7 unpacked). Raises TextError."""
    return _ENCODERS[encoding](text)


def decode_text(data: bytes, encoding: Encoding) -> str:
    """Octets in ``encoding`` -> text. Never raises."""
    return _DECODERS[encoding](data)


_ENCODERS: Final = {
    _GSM7: encode_gsm7,
    _LATIN1: encode_latin1,
    _UCS2: encode_ucs2,
    _ASCII: encode_ascii,
}
_DECODERS: Final = {
    _GSM7: decode_gsm7,
    _LATIN1: decode_latin1,
    _UCS2: decode_ucs2,
    _ASCII: decode_ascii,
}


# --- data_coding ------------------------------------------------------------------------------------------------------


_DEFAULT = None  # marker: "the connector's default alphabet"
_NAMED_CODECS: Final[dict[int, str]] = {
    DataCoding.CYRILLIC: "iso8859_5",
    DataCoding.LATIN_HEBREW: "iso8859_8",
    DataCoding.ISO_2022_JP: "iso2022_jp",
    DataCoding.KS_C_5601: "euc_kr",
}


def _alphabet_of(data_coding: int) -> Encoding | str | None:
    """What a data_coding value says about the alphabet: an Encoding, a Python codec name, or _DEFAULT."""
    smpp: dict[int, Encoding | None] = {
        DataCoding.SMSC_DEFAULT: _DEFAULT,
        DataCoding.IA5_ASCII: _ASCII,
        DataCoding.LATIN_1: _LATIN1,
        DataCoding.UCS2: _UCS2,
    }
    if data_coding in smpp:
        return smpp[data_coding]
    if data_coding in _NAMED_CODECS:
        return _NAMED_CODECS[data_coding]
    group = data_coding >> 4
    # 23.038 coding groups: 00xx general / 01xx automatic deletion (bit 5: compressed, bits 3-2: alphabet);
    # 1100 / 1101 message waiting, GSM-7; 1110 message waiting, UCS2; 1111 message class (bit 2: 8-bit data).
    if 0x1 <= group <= 0x7 and not data_coding & 0x20:
        return (_DEFAULT, _LATIN1, _UCS2, _LATIN1)[(data_coding >> 2) & 0x03]
    if group in (0xC, 0xD):
        return _DEFAULT
    if group == 0xE:
        return _UCS2
    if group == 0xF:
        return _LATIN1 if data_coding & 0x04 else _DEFAULT
    return _LATIN1  # octet data (2, 4), compressed, reserved, JIS...: bytes as Latin-1, losslessly


_ALPHABET_BY_DATA_CODING: Final = tuple(_alphabet_of(dc) for dc in range(256))


def decode_short_message(data: bytes, data_coding: int, default_alphabet: Encoding = Encoding.GSM7) -> str:
    """Text of a short_message / message_payload (without UDH) for its data_coding. Never raises.

    ``default_alphabet`` is what data_coding 0 (and the 23.038 "GSM 7 bit default" codings) means on this connector.
    Binary and unknown codings come back as Latin-1, which maps every octet to one character losslessly.
    """
    alphabet = _ALPHABET_BY_DATA_CODING[data_coding & 0xFF]
    if alphabet is None:
        return _DECODERS[default_alphabet](data)
    if isinstance(alphabet, Encoding):
        return _DECODERS[alphabet](data)
    return codecs.decode(data, alphabet, "replace")


_DATA_CODING_FOR: Final = {
    _LATIN1: DataCoding.LATIN_1,
    _UCS2: DataCoding.UCS2,
    _ASCII: DataCoding.IA5_ASCII,
}


def data_coding_for(encoding: Encoding, gsm7_data_coding: int = DataCoding.SMSC_DEFAULT) -> int:
    """The data_coding to send: GSM7 -> ``gsm7_data_coding`` (0, or e.g. 0x10 / 0xF0 for a class), else fixed."""
    if encoding is _GSM7:
        return gsm7_data_coding
    return int(_DATA_CODING_FOR[encoding])
