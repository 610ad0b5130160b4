"""SMSC delivery receipts: the text of spec appendix B, the receipt TLVs, and message-id normalisation.

A receipt is a deliver_sm / data_sm whose esm_class says "SMSC delivery receipt" (``constants.is_delivery_receipt``).
Its facts arrive in two places: TLVs (``receipted_message_id``, ``message_state``, ``network_error_code``) and a text
in ``short_message`` (or ``message_payload``)::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...

The text format is "SMSC vendor specific" (appendix B), so the parser is tolerant: any field may be missing, keys are
case-insensitive (the spec itself writes ``Text:``), ``submit_date`` / ``done-date`` spellings, odd whitespace and
another field order are accepted, ``text:`` takes the rest of the string whatever it holds. When both are present the
TLVs win over the text (design §1).

Message ids: operators answer ``submit_sm_resp`` with one form of an id and the receipt with another (hex vs decimal,
leading zeros, case, UUID with or without dashes). ``normalise_message_id`` and ``message_id_keys`` give the keys under
which "the same id in another form" compares equal; the correlation layer picks among them by connector policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Final

import msgspec

from .constants import DataCoding, MessageState, Tag
from .errors import SmppError


class ReceiptError(SmppError, ValueError):
    """The bytes are not a usable delivery receipt (no receipt fields in the text, no message id anywhere)."""


# ---------------------------------------------------------------------------------------------------------------------
# stat: <-> message_state

STAT_STATES: Final[Mapping[str, MessageState]] = {
    # Spec appendix B, table B-2, then variants seen in the wild: full words (Jasmin issue #181 shows a gateway emitting
    # them), Mblox's BUFFRED / ACKED / FAILED extensions (opentelecoms-org/jsmpp issue #9).
    "ENROUTE": MessageState.ENROUTE,
    "EN_ROUTE": MessageState.ENROUTE,
    "BUFFRED": MessageState.ENROUTE,
    "BUFFERED": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "EXPIRD": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "DELETD": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "UNDELIVERED": MessageState.UNDELIVERABLE,
    "UNDELIVRD": MessageState.UNDELIVERABLE,
    "FAILED": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "ACCEPTED": MessageState.ACCEPTED,
    "ACKED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED,
}
"""Upper-case ``stat:`` values and the message_state each means."""

STATE_STATS: Final[Mapping[MessageState, str]] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}
"""The 7-letter appendix-B spelling of every message_state, as written by ``format_receipt_text``."""

_STATES_BY_VALUE: Final[Mapping[int, MessageState]] = {state.value: state for state in MessageState}


def stat_to_state(stat: str) -> MessageState | None:
    """The message_state a ``stat:`` value means (any case, surrounding blanks ignored); None if not recognised."""
    state = STAT_STATES.get(stat)
    return state if state is not None else STAT_STATES.get(stat.strip().upper())


# ---------------------------------------------------------------------------------------------------------------------
# Values


class ReceiptText(msgspec.Struct, frozen=True):
    """The fields of a receipt text, each None when missing or unreadable.

    ``stat`` and ``err`` are kept as received (``err`` is vendor specific: ``000``, ``0000``, ``0x1B``...).
    Dates are naive: the SMSC writes its local wall-clock time and its zone is not known here.
    """

    message_id: str | None = None
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    stat: str | None = None
    err: str | None = None
    text: str | None = None


class NetworkError(msgspec.Struct, frozen=True):
    """The network_error_code TLV: network type (1 ANSI-136, 2 IS-95, 3 GSM, 4 ANSI-136 cause, 5 IS-95 cause,
    6 ANSI-41, 7 SMPP, 8 message centre specific) and the 16-bit error code (spec 5.3.2.31)."""

    network_type: int
    error_code: int


class Receipt(msgspec.Struct, frozen=True):
    """A delivery receipt read from a PDU, TLVs taking precedence over the text.

    ``message_id`` is the id as received (NUL terminator and surrounding blanks removed, nothing else): look it up with
    ``message_id_keys``. ``state_recognised`` is False when neither a valid message_state TLV nor a known ``stat:``
    was found; ``state`` is then ``UNKNOWN``, which ``MessageState.is_final`` counts as final, so a caller that must
    not close a message on a vendor's unknown word checks this flag first.
    """

    message_id: str
    state: MessageState
    state_recognised: bool
    id_from_tlv: bool
    state_from_tlv: bool
    network_error: NetworkError | None
    fields: ReceiptText | None
    """The parsed text, or None when the PDU carries no receipt text (TLV-only receipts)."""
    raw_text: str
    """The decoded text as received (evidence to store)."""

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def stat(self) -> str | None:
        return None if self.fields is None else self.fields.stat

    @property
    def err(self) -> str | None:
        return None if self.fields is None else self.fields.err

    @property
    def submit_date(self) -> datetime | None:
        return None if self.fields is None else self.fields.submit_date

    @property
    def done_date(self) -> datetime | None:
        return None if self.fields is None else self.fields.done_date


# ---------------------------------------------------------------------------------------------------------------------
# Text parsing

_KEY_RE: Final = re.compile(
    r"(?=[deist])(?<![0-9A-Za-z_])(?:"  # the look-ahead only skips early: every key starts with one of these
    r"(?P<submit_date>submit[\s_-]*date)|(?P<done_date>done[\s_-]*date)|(?P<message_id>id)|(?P<submitted>sub)"
    r"|(?P<delivered>dlvrd)|(?P<stat>stat)|(?P<err>err)|(?P<text>text)"
    r")[ \t]*:",
    re.IGNORECASE,
)
"""A field key, wherever it stands. A value is what lies between its key and the next one."""

_STANDARD_RE: Final = re.compile(
    r"id:([^\s:]*)(?: sub:([0-9]*))?(?: dlvrd:([0-9]*))? submit[ _]date:([0-9]*) done[ _]date:([0-9]*)"
    r" stat:([^\s:]*) err:([^\s:]*)(?: text:(.*))?",
    re.IGNORECASE | re.DOTALL,
)
"""Fast path: the appendix-B layout (``sub``/``dlvrd``/``text`` optional). Its values hold no ':' so no key can hide
in them, and a text it matches reads exactly as ``_scan_any`` reads it; everything else goes to ``_scan_any``."""

_DATE_SEPARATORS: Final = frozenset(" -:/.T")
MAX_COUNT_DIGITS: Final = 9
"""``sub:`` / ``dlvrd:`` are 3 digits by the spec; longer digit runs are junk (and ``int()`` of a huge one raises)."""
MAX_DATE_LENGTH: Final = 32
"""Longer strings are not dates; keeping them out of the cache bounds its memory on hostile input."""


def parse_receipt_text(text: str) -> ReceiptText:
    """Parse a receipt text (see the module docstring for what is tolerated).

    Raises ``ReceiptError`` when the string holds no receipt field at all; any other string gives a ``ReceiptText``
    (possibly with every field None: ``"id:"``).
    """
    fields = _scan(text)
    if fields is None:
        raise ReceiptError(f"not a delivery receipt text: {text[:80]!r}")
    return fields


def _scan(text: str) -> ReceiptText | None:
    standard = _STANDARD_RE.fullmatch(text)
    if standard is None:
        return _scan_any(text)
    message_id, submitted, delivered, submit_date, done_date, stat, err, rest = standard.groups()
    return ReceiptText(
        message_id=message_id or None,
        submitted=int(submitted) if submitted and len(submitted) <= MAX_COUNT_DIGITS else None,
        delivered=int(delivered) if delivered and len(delivered) <= MAX_COUNT_DIGITS else None,
        submit_date=parse_receipt_date(submit_date),
        done_date=parse_receipt_date(done_date),
        stat=stat or None,
        err=err or None,
        text=rest,
    )


def _scan_any(text: str) -> ReceiptText | None:
    values: dict[str, str] = {}
    name: str | None = None
    start = 0
    for match in _KEY_RE.finditer(text):
        if name is not None and name not in values:
            values[name] = text[start : match.start()]
        name, start = match.lastgroup, match.end()
        if name == "text":
            break
    if name is None:
        return None
    values.setdefault(name, text[start:])
    return ReceiptText(
        message_id=_token(values.get("message_id")),
        submitted=_count(values.get("submitted")),
        delivered=_count(values.get("delivered")),
        submit_date=_date(values.get("submit_date")),
        done_date=_date(values.get("done_date")),
        stat=_token(values.get("stat")),
        err=_token(values.get("err")),
        text=values.get("text"),
    )


def _token(value: str | None) -> str | None:
    if value is None:
        return None
    parts = value.split(None, 1)
    return parts[0] if parts else None


def _count(value: str | None) -> int | None:
    token = _token(value)
    if token is None or len(token) > MAX_COUNT_DIGITS or not (token.isascii() and token.isdigit()):
        return None
    return int(token)


def _date(value: str | None) -> datetime | None:
    return None if value is None else parse_receipt_date(value.strip())


def parse_receipt_date(value: str) -> datetime | None:
    """A receipt date as a naive datetime, or None when it is not one.

    Accepted: ``yyMMddHHmm`` (appendix B), ``yyMMddHHmmss``, ``yyyyMMddHHmmss``, the same with separators
    (``2023-01-02 10:11:12``, ``2023-01-02 10:11``), and a 16-character SMPP absolute time (``180711070003912+``,
    seen in a receipt in funbox/smppex issue #46) whose UTC offset is dropped: the result is the wall-clock time as
    written.
    Cached: receipts arriving within the same minute share their dates.
    """
    return _parse_date_cached(value) if len(value) <= MAX_DATE_LENGTH else None


@lru_cache(maxsize=4096)
def _parse_date_cached(value: str) -> datetime | None:
    if len(value) == 16 and value[15] in "+-" and value[:15].isascii() and value[:15].isdigit():
        return _digits_to_datetime(value[:12], int(value[12]) * 100_000)
    if value.isascii() and value.isdigit():
        return _digits_to_datetime(value, 0)
    if not value.isascii() or not all(char.isdigit() or char in _DATE_SEPARATORS for char in value):
        return None
    digits = "".join(char for char in value if char.isdigit())
    if len(digits) == 12 and value[:4].isdigit() and not value[4].isdigit():
        digits += "00"  # "2024-06-01 12:30": a four-digit year, no seconds
    return _digits_to_datetime(digits, 0)


def _digits_to_datetime(digits: str, microsecond: int) -> datetime | None:
    if len(digits) == 14:
        digits, century = digits[2:], int(digits[:2]) * 100
    else:
        century = 2000
    if len(digits) not in (10, 12):
        return None
    try:
        return datetime(
            century + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12] or 0),
            microsecond,
        )
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------------------
# Text formatting


def format_receipt_text(
    message_id: str,
    state: MessageState | str = MessageState.DELIVERED,
    *,
    submit_date: datetime,
    done_date: datetime,
    submitted: int = 1,
    delivered: int | None = None,
    err: int | str = 0,
    text: str = "",
    seconds: bool = False,
) -> str:
    """The appendix-B receipt text: ``id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DELIVRD err:000 text:<first 20 characters>``.

    ``state`` is written in its 7-letter form (a string is written as given); ``delivered`` defaults to 1 for
    DELIVERED, else 0; an integer ``err`` is zero-padded to 3 digits. Dates are written as their wall-clock time (no
    zone conversion), to the minute, or to the second with ``seconds=True`` (``YYMMDDhhmmss``).
    Raises ``ValueError`` for an empty id or one containing blanks, and dates outside 2000-2099: the result would not
    read back.
    """
    if not message_id or len(message_id.split()) != 1 or message_id.strip() != message_id:
        raise ValueError(f"receipt message id must be non-empty without blanks: {message_id!r}")
    stat = state if isinstance(state, str) else STATE_STATS[state]
    if delivered is None:
        delivered = 1 if state is MessageState.DELIVERED else 0
    err_text = f"{err:03d}" if isinstance(err, int) else err
    return (
        f"id:{message_id} sub:{submitted:03d} dlvrd:{delivered:03d} submit date:{_format_date(submit_date, seconds)} "
        f"done date:{_format_date(done_date, seconds)} stat:{stat} err:{err_text} text:{text[:20]}"
    )


def _format_date(dt: datetime, seconds: bool) -> str:
    if not 2000 <= dt.year <= 2099:
        raise ValueError(f"receipt date year {dt.year} cannot be written as YY")
    # f-string instead of strftime: ~3x cheaper, and this runs once per receipt sent
    minutes = f"{dt.year - 2000:02d}{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}"
    return f"{minutes}{dt.second:02d}" if seconds else minutes


# ---------------------------------------------------------------------------------------------------------------------
# Reading a receipt PDU

_TAG_RECEIPTED_MESSAGE_ID: Final = int(Tag.RECEIPTED_MESSAGE_ID)
_TAG_MESSAGE_STATE: Final = int(Tag.MESSAGE_STATE)
_TAG_NETWORK_ERROR_CODE: Final = int(Tag.NETWORK_ERROR_CODE)
_TAG_MESSAGE_PAYLOAD: Final = int(Tag.MESSAGE_PAYLOAD)
_UCS2_CODINGS: Final = frozenset({int(DataCoding.UCS2), int(DataCoding.FLASH_UCS2)})
NETWORK_ERROR_CODE_LENGTH: Final = 3
"""network_error_code: network type (1 octet) + error code (2 octets, big-endian), spec 5.3.2.31."""


def read_receipt(short_message: bytes, tlvs: tuple[tuple[int, bytes], ...], *, data_coding: int = 0) -> Receipt:
    """Combine a receipt PDU's TLVs and text into a ``Receipt``.

    The text is ``short_message``, or ``message_payload`` when ``short_message`` is empty. It is decoded as Latin-1
    (receipts are ASCII; GSM-7 unpacked agrees on letters, digits, ':' and ' '), or as UCS-2 when ``data_coding`` says
    so and the bytes hold NUL octets (some SMSCs copy the original message's data_coding onto an ASCII receipt).
    A TLV that occurs twice counts once (the first); a malformed message_state or network_error_code TLV (wrong
    length, value outside message_state) is ignored, falling back to the text.
    Raises ``ReceiptError`` when neither the TLV nor the text gives a message id; nothing else for any input.
    """
    tlv_id: str | None = None
    tlv_state: MessageState | None = None
    network_error: NetworkError | None = None
    payload: bytes | None = None
    for tag, value in tlvs:
        if tag == _TAG_RECEIPTED_MESSAGE_ID:
            tlv_id = _c_string(value) if tlv_id is None else tlv_id
        elif tag == _TAG_MESSAGE_STATE:
            tlv_state = _state_tlv(value) if tlv_state is None else tlv_state
        elif tag == _TAG_NETWORK_ERROR_CODE:
            network_error = _network_error(value) if network_error is None else network_error
        elif tag == _TAG_MESSAGE_PAYLOAD and payload is None:
            payload = value
    raw_text = _decode_text(short_message or payload or b"", data_coding)
    fields = _scan(raw_text) if raw_text else None
    message_id = tlv_id or (fields.message_id if fields is not None else None)
    if not message_id:
        raise ReceiptError(f"delivery receipt without a message id: {raw_text[:80]!r}")
    if tlv_state is not None:
        state, recognised = tlv_state, True
    else:
        text_state = stat_to_state(fields.stat) if fields is not None and fields.stat is not None else None
        state, recognised = (text_state, True) if text_state is not None else (MessageState.UNKNOWN, False)
    return Receipt(
        message_id=message_id,
        state=state,
        state_recognised=recognised,
        id_from_tlv=bool(tlv_id),
        state_from_tlv=tlv_state is not None,
        network_error=network_error,
        fields=fields,
        raw_text=raw_text,
    )


def _c_string(value: bytes) -> str:
    end = value.find(b"\x00")
    return (value if end < 0 else value[:end]).decode("latin-1").strip()


def _state_tlv(value: bytes) -> MessageState | None:
    return _STATES_BY_VALUE.get(value[0]) if len(value) == 1 else None


def _network_error(value: bytes) -> NetworkError | None:
    if len(value) != NETWORK_ERROR_CODE_LENGTH:
        return None
    return NetworkError(network_type=value[0], error_code=int.from_bytes(value[1:], "big"))


def _decode_text(raw: bytes, data_coding: int) -> str:
    if data_coding in _UCS2_CODINGS and b"\x00" in raw:
        text = raw.decode("utf-16-be", "replace")
    else:
        text = raw.decode("latin-1")
    return text.rstrip("\x00")


# ---------------------------------------------------------------------------------------------------------------------
# Message-id normalisation

MAX_NUMERIC_ID_LENGTH: Final = 64
"""Longer ids are never read as numbers (message_id is at most 64 characters, spec 5.2.23; this also keeps ``int()``
far below its digit limit on hostile input)."""

_HEX_DIGITS: Final = "0123456789abcdef"
_UUID_RE: Final = re.compile(r"([0-9a-f]{1,8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})")
_UUID_HEX_LENGTH: Final = 32


class IdRadix(StrEnum):
    """How a connector's SMSC writes message ids, for ``message_id_key``."""

    TEXT = "text"  # an opaque string: compare normalised (lower case, trimmed)
    DECIMAL = "decimal"
    HEX = "hex"


def _clean(raw: str) -> str:
    end = raw.find("\x00")
    return (raw if end < 0 else raw[:end]).strip().lower()


def _is_hex(text: str) -> bool:
    # str.strip removes set members from both ends: only an all-hex string strips to nothing.
    return bool(text) and not text.strip(_HEX_DIGITS)


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _uuid(text: str) -> str | None:
    """Canonical dashed form of a UUID written with dashes (first group possibly zero-stripped) or as 32 hex digits."""
    if len(text) == _UUID_HEX_LENGTH and _is_hex(text):
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    match = _UUID_RE.fullmatch(text) if "-" in text else None
    if match is None:
        return None
    return f"{match[1]:0>8}-{match[2]}-{match[3]}-{match[4]}-{match[5]}"


def normalise_message_id(raw: str) -> str:
    """The canonical form of an id *in the radix it is written in*.

    Cut at the first NUL, trimmed, lower-cased; a UUID (dashed, or exactly 32 hex digits) becomes its dashed form;
    otherwise an all-hex string (this includes all-digit ones) loses its leading zeros (``"000"`` -> ``"0"``).
    Anything else is returned lower-cased: ids are assumed case-insensitive (an SMSC with mixed-case ids that differ
    only in case would collide - none is known).
    """
    text = _clean(raw)
    uuid = _uuid(text)
    if uuid is not None:
        return uuid
    if _is_hex(text):
        return text.lstrip("0") or "0"
    return text


def message_id_keys(raw: str) -> tuple[str, ...]:
    """Every key the id may be stored or looked up under, most plausible reading first.

    In order, each at most once:

    1. a UUID (dashed, or 32 hex digits) -> its canonical dashed form. A dashed UUID gives only this key; it is never
       read as a number.
    2. all decimal digits -> the integer in decimal (``"001715004"`` -> ``"1715004"``);
    3. all hex digits -> the integer it is in hex, written in decimal (``"1A2B3C"`` -> ``"1715004"``);
    4. nothing above -> the normalised string (lower case).

    So hex ``1A2B3C``, ``001a2b3c`` and decimal ``1715004`` share the key ``"1715004"``. Numeric keys are all-digit
    and string keys are not, so the two kinds never collide. The ambiguity: an all-digit id is also valid hex
    (``"10"`` gives ``("10", "16")``), and 32 hex digits may be a UUID or a 128-bit number; a lookup that matches
    under a second key is a guess, which is why the correlation layer applies a per-connector policy (see
    ``message_id_key``) and can prefer the first key. Ids longer than 64 characters are never read as numbers.
    """
    text = _clean(raw)
    if not text:
        return ()
    uuid = _uuid(text)
    if uuid is not None and len(text) != _UUID_HEX_LENGTH:
        return (uuid,)
    keys: list[str] = [] if uuid is None else [uuid]
    if len(text) <= MAX_NUMERIC_ID_LENGTH and _is_hex(text):
        if _is_decimal(text):
            keys.append(str(int(text)))
        as_hex = str(int(text, 16))
        if as_hex not in keys:
            keys.append(as_hex)
    return tuple(keys) if keys else (text,)


def message_id_key(raw: str, radix: IdRadix) -> str | None:
    """The one key of an id read in a known radix, or None when the id is not valid in it (or empty).

    Compatible with ``message_id_keys``: a connector whose submit_sm_resp ids are hex and receipt ids decimal stores
    ``message_id_key(resp_id, IdRadix.HEX)`` and looks up ``message_id_key(receipt_id, IdRadix.DECIMAL)``.
    """
    text = _clean(raw)
    if not text:
        return None
    if radix is IdRadix.TEXT:
        return normalise_message_id(text)
    if len(text) > MAX_NUMERIC_ID_LENGTH:
        return None
    if radix is IdRadix.DECIMAL:
        return str(int(text)) if _is_decimal(text) else None
    return str(int(text, 16)) if _is_hex(text) else None
