"""Long messages: splitting into segments, reading concatenation info, reassembling (3GPP TS 23.040 9.2.3.24.1/.8).

Segment limits (what fits one SMS on the air, 140 octets = 160 septets):

=========  ======  ===========  ============  ========================================
encoding   single  UDH8 (6 o.)  UDH16 (7 o.)  SAR
=========  ======  ===========  ============  ========================================
GSM-7      160     153          152           152  (septets)
UCS-2      70      67           66            66   (UTF-16 code units)
Latin-1    140     134          133           133  (octets)
=========  ======  ===========  ============  ========================================

SAR parts carry no UDH on the SMPP wire, but the SMSC must add one for the handset, and ``sar_msg_ref_num`` is 16 bits,
so it may add the 7-octet IEI 0x08 header: 152/66/133 fits whichever header it picks, at the price of one character per
part. The segment count of PAYLOAD mode (one ``message_payload``, split by the SMSC) is reported with UDH8 limits, the
usual SMSC behaviour, and ``max_parts`` applies to it too.

A split never cuts a GSM-7 escape sequence (ESC + code) nor a UTF-16 surrogate pair.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

import msgspec

from .constants import CommandStatus, EsmClass, Tag
from .errors import RemoteProtocolError, SmppError
from .text import (
    ESCAPE,
    Encoding,
    choose_encoding,
    decode_gsm7,
    encode_ascii,
    encode_gsm7,
    encode_latin1,
    encode_ucs2,
    try_encode_gsm7,
)

MAX_PARTS: Final = 255
"""Total and sequence number are one octet in both the UDH and the SAR TLVs."""


class ConcatMode(Enum):
    """How a long message is carried, per connector (SMSCs differ)."""

    UDH8 = "udh8"  # UDH IEI 0x00, 8-bit reference, 6-octet header, esm_class UDHI
    UDH16 = "udh16"  # UDH IEI 0x08, 16-bit reference, 7-octet header, esm_class UDHI
    SAR = "sar"  # sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs, no UDH
    PAYLOAD = "payload"  # the whole message in one message_payload TLV; the SMSC splits it


class MessageTooLongError(SmppError, ValueError):
    """The message needs more segments than allowed (``parts_needed`` > ``max_parts``); nothing is truncated."""

    def __init__(self, parts_needed: int, max_parts: int) -> None:
        super().__init__(f"message needs {parts_needed} segments, at most {max_parts} allowed")
        self.parts_needed = parts_needed
        self.max_parts = max_parts


class ConcatError(RemoteProtocolError, ValueError):
    """A peer's UDH or SAR parameters are malformed; ``status`` is the command_status to answer with."""


_GSM7: Final = Encoding.GSM7  # module aliases: Enum class attribute reads cost ~0.2 µs each
_LATIN1: Final = Encoding.LATIN1
_UCS2: Final = Encoding.UCS2
_ASCII: Final = Encoding.ASCII
_MODE_UDH8: Final = ConcatMode.UDH8
_MODE_UDH16: Final = ConcatMode.UDH16
_MODE_SAR: Final = ConcatMode.SAR
_MODE_PAYLOAD: Final = ConcatMode.PAYLOAD


# --- limits -----------------------------------------------------------------------------------------------------------


class _Limits(NamedTuple):
    """Limits of one encoding, in octets of the measured form (units x unit size)."""

    unit: int  # octets per unit
    single: int  # a message without concatenation
    udh8: int
    udh16: int
    sar: int

    def part(self, mode: ConcatMode) -> int:
        if mode is _MODE_UDH16:
            return self.udh16
        return self.sar if mode is _MODE_SAR else self.udh8


# Units: septets for GSM-7 (and ASCII, which the SMSC sends as GSM-7), code units for UCS-2, octets for Latin-1.
_LIMITS: Final = {
    _GSM7: _Limits(1, 160, 153, 152, 152),
    _ASCII: _Limits(1, 160, 153, 152, 152),
    _UCS2: _Limits(2, 140, 134, 132, 132),  # 70 / 67 / 66 / 66 code units
    _LATIN1: _Limits(1, 140, 134, 133, 133),
}


# --- the plan ---------------------------------------------------------------------------------------------------------


class Part(msgspec.Struct, frozen=True, gc=False):
    """One submit_sm's worth of a message: OR ``esm_class_bits`` into esm_class, append ``tlvs``."""

    short_message: bytes  # with the UDH in UDH modes; empty in PAYLOAD mode
    esm_class_bits: int  # EsmClass.UDHI in UDH modes, else 0
    tlvs: tuple[tuple[int, bytes], ...]  # SAR TLVs, or message_payload, or ()
    seqnum: int  # 1-based
    total: int


class SplitMessage(msgspec.Struct, frozen=True, gc=False):
    """A message planned for sending. ``segments`` is what the handset receives (billing), even in PAYLOAD mode."""

    encoding: Encoding
    mode: ConcatMode
    parts: tuple[Part, ...]
    segments: int


def _validate(mode: ConcatMode, reference: int, max_parts: int, default_alphabet: Encoding) -> None:
    top = 0xFF if mode is _MODE_UDH8 else 0xFFFF
    if mode is not _MODE_PAYLOAD and not 0 <= reference <= top:
        raise ValueError(f"reference {reference} out of range 0..{top} for {mode.name}")
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    if default_alphabet is _UCS2:
        raise ValueError("data_coding 0 cannot mean UCS2")


def _measure(text: str, encoding: Encoding) -> bytes:
    """Octets to measure and cut: GSM-7 septets for GSM7 and ASCII (the SMSC sends both as GSM-7), else the wire."""
    if encoding is _UCS2:
        return encode_ucs2(text)
    if encoding is _GSM7:
        return encode_gsm7(text)
    if encoding is _LATIN1:
        return encode_latin1(text)
    encode_ascii(text)  # rejects non-ASCII; encode_gsm7 then rejects '`' and controls
    return encode_gsm7(text)


def _choose_and_measure(text: str, encoding: Encoding | None, default_alphabet: Encoding) -> tuple[Encoding, bytes]:
    if encoding is None:
        if default_alphabet is not _GSM7:
            encoding = choose_encoding(text, default_alphabet)
        elif (septets := try_encode_gsm7(text)) is not None:
            return _GSM7, septets
        else:
            return _UCS2, encode_ucs2(text)
    return encoding, _measure(text, encoding)


def _needs_walk(data: bytes, encoding: Encoding, text: str) -> bool:
    """True when a cut might land inside an escape sequence or a surrogate pair."""
    if encoding is _UCS2:
        return len(data) != 2 * len(text)  # astral characters present (lone surrogates were rejected)
    return encoding is not _LATIN1 and ESCAPE in data


def _walk(data: bytes, step: int, ucs2: bool) -> list[int]:
    """End offsets of parts of at most ``step`` octets, never inside an escape sequence or a surrogate pair."""
    ends = []
    start = 0
    size = len(data)
    while size - start > step:
        end = start + step
        if ucs2:
            if data[end - 2] & 0xFC == 0xD8:  # a high surrogate last: its pair starts the next part
                end -= 2
        elif data[end - 1] == ESCAPE:
            end -= 1
        ends.append(end)
        start = end
    ends.append(size)
    return ends


def _segments(data: bytes, encoding: Encoding, mode: ConcatMode, text: str) -> int:
    limits = _LIMITS[encoding]
    if len(data) <= limits.single:
        return 1
    step = limits.part(mode)
    if _needs_walk(data, encoding, text):
        return len(_walk(data, step, encoding is _UCS2))
    return -(-len(data) // step)


def segment_count(
    text: str,
    encoding: Encoding | None = None,
    mode: ConcatMode = ConcatMode.UDH8,
    default_alphabet: Encoding = Encoding.GSM7,
) -> int:
    """Segments the handset receives for ``text`` (what :func:`split_message` would plan). Raises TextError.

    PAYLOAD mode counts as UDH8: the SMSC splits the payload.
    """
    encoding, data = _choose_and_measure(text, encoding, default_alphabet)
    return _segments(data, encoding, mode, text)


_UDHI: Final = int(EsmClass.UDHI)
_SAR_REF: Final = int(Tag.SAR_MSG_REF_NUM)
_SAR_TOTAL: Final = int(Tag.SAR_TOTAL_SEGMENTS)
_SAR_SEQNUM: Final = int(Tag.SAR_SEGMENT_SEQNUM)
_PAYLOAD: Final = int(Tag.MESSAGE_PAYLOAD)
_IEI_CONCAT_8: Final = 0x00
_IEI_CONCAT_16: Final = 0x08


_OCTET: Final = tuple(bytes((i,)) for i in range(256))


def _build_parts(chunks: list[bytes], mode: ConcatMode, reference: int) -> tuple[Part, ...]:
    total = len(chunks)
    if mode is _MODE_SAR:
        ref_total = ((_SAR_REF, reference.to_bytes(2, "big")), (_SAR_TOTAL, _OCTET[total]))
        return tuple(
            [
                Part(chunk, 0, (*ref_total, (_SAR_SEQNUM, _OCTET[seq])), seq, total)
                for seq, chunk in enumerate(chunks, 1)
            ]
        )
    if mode is _MODE_UDH16:  # UDHL 6, IEI 0x08, IEDL 4, reference (big-endian), total, seqnum
        prefix = bytes((6, _IEI_CONCAT_16, 4, reference >> 8, reference & 0xFF, total))
    else:  # UDHL 5, IEI 0x00, IEDL 3, reference, total, seqnum
        prefix = bytes((5, _IEI_CONCAT_8, 3, reference, total))
    return tuple([Part(prefix + _OCTET[seq] + chunk, _UDHI, (), seq, total) for seq, chunk in enumerate(chunks, 1)])


def split_message(
    text: str,
    *,
    reference: int,
    encoding: Encoding | None = None,
    mode: ConcatMode = ConcatMode.UDH8,
    max_parts: int = MAX_PARTS,
    default_alphabet: Encoding = Encoding.GSM7,
) -> SplitMessage:
    """Plan the submit_sm parts of ``text``. Pure: the caller owns the ``reference`` counter.

    ``encoding`` None chooses GSM7 or UCS2. ``default_alphabet`` is what data_coding 0 means on the connector: GSM7
    text is measured in septets but written in that alphabet (LATIN1/ASCII octets). A text that fits one SMS gets one
    part with no UDH or SAR TLVs; the empty text is one empty part. Raises TextError (text not representable),
    MessageTooLongError (more than ``max_parts`` segments, capped at 255), ValueError (reference out of range).
    """
    _validate(mode, reference, max_parts, default_alphabet)
    encoding, data = _choose_and_measure(text, encoding, default_alphabet)
    segments = _segments(data, encoding, mode, text)
    if segments > min(max_parts, MAX_PARTS):
        raise MessageTooLongError(segments, min(max_parts, MAX_PARTS))
    wire = _wire_converter(encoding, default_alphabet)
    if mode is _MODE_PAYLOAD:
        part = Part(b"", 0, ((_PAYLOAD, wire(data)),), 1, 1)
        return SplitMessage(encoding, mode, (part,), segments)
    if segments == 1:
        return SplitMessage(encoding, mode, (Part(wire(data), 0, (), 1, 1),), 1)
    step = _LIMITS[encoding].part(mode)
    if _needs_walk(data, encoding, text):
        ends = _walk(data, step, encoding is _UCS2)
        chunks = [wire(data[start:end]) for start, end in zip([0, *ends], ends, strict=False)]
    else:
        chunks = [wire(data[start : start + step]) for start in range(0, len(data), step)]
    return SplitMessage(encoding, mode, _build_parts(chunks, mode, reference), segments)


def _identity(data: bytes) -> bytes:
    return data


def _wire_converter(encoding: Encoding, default_alphabet: Encoding) -> Callable[[bytes], bytes]:
    """Measured octets -> wire octets: GSM-7 septets become ASCII / Latin-1 when the SMSC's alphabet is one of those."""
    target = _ASCII if encoding is _ASCII else default_alphabet
    if encoding not in (_GSM7, _ASCII) or target is _GSM7:
        return _identity
    encode = encode_ascii if target is _ASCII else encode_latin1
    return lambda septets: encode(decode_gsm7(septets))


# --- reading ----------------------------------------------------------------------------------------------------------


class ConcatInfo(msgspec.Struct, frozen=True, gc=False):
    """Concatenation data of one received part; ``payload`` is its message octets without the UDH."""

    reference: int
    total: int
    seqnum: int
    payload: bytes


def read_concat_info(short_message: bytes, esm_class: int, tlvs: tuple[tuple[int, bytes], ...]) -> ConcatInfo | None:
    """Concatenation info of a received submit_sm / deliver_sm / data_sm, or None for a message on its own.

    The message is ``short_message``, or the message_payload TLV when short_message is empty. With esm_class UDHI the
    UDH decides (IEI 0x00 or 0x08; other IEs are skipped; None when it holds no concatenation IE); without it the
    three SAR TLVs do. Raises ConcatError (a ValueError) for a malformed UDH or SAR set, nothing else.
    """
    message = short_message
    sar: dict[int, bytes] = {}
    for tag, value in tlvs:
        if tag == _PAYLOAD and not message:
            message = value
        elif tag in _SAR_TAGS:
            sar[tag] = value
    if esm_class & _UDHI:
        return _read_udh(message)
    if sar:
        return _read_sar(sar, message)
    return None


_SAR_TAGS: Final = frozenset({_SAR_REF, _SAR_TOTAL, _SAR_SEQNUM})


def _read_udh(message: bytes) -> ConcatInfo | None:
    if not message:
        raise ConcatError("esm_class has UDHI but the message is empty", CommandStatus.ESME_RINVMSGLEN)
    end = 1 + message[0]
    if end > len(message):
        raise ConcatError(f"UDH length {message[0]} exceeds the message", CommandStatus.ESME_RINVMSGLEN)
    found: tuple[int, int, int] | None = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ConcatError("truncated information element in UDH", CommandStatus.ESME_RINVMSGLEN)
        iei, length, start = message[pos], message[pos + 1], pos + 2
        pos = start + length
        if pos > end:
            raise ConcatError(f"information element 0x{iei:02X} overruns the UDH", CommandStatus.ESME_RINVMSGLEN)
        if iei in (_IEI_CONCAT_8, _IEI_CONCAT_16):  # the last one wins (23.040 9.2.3.24)
            found = _concat_ie(iei, message[start:pos])
    if found is None:
        return None
    return _checked(*found, message[end:])


def _concat_ie(iei: int, value: bytes) -> tuple[int, int, int]:
    wide = iei == _IEI_CONCAT_16
    if len(value) != (4 if wide else 3):
        raise ConcatError(f"concatenation IE 0x{iei:02X} has length {len(value)}", CommandStatus.ESME_RINVMSGLEN)
    if wide:
        return (value[0] << 8) | value[1], value[2], value[3]
    return value[0], value[1], value[2]


def _read_sar(sar: dict[int, bytes], message: bytes) -> ConcatInfo:
    if len(sar) != len(_SAR_TAGS):
        raise ConcatError("incomplete set of sar_* parameters", CommandStatus.ESME_RMISSINGOPTPARAM)
    ref, total, seqnum = sar[_SAR_REF], sar[_SAR_TOTAL], sar[_SAR_SEQNUM]
    if len(ref) != 2 or len(total) != 1 or len(seqnum) != 1:
        raise ConcatError("sar_* parameter of wrong length", CommandStatus.ESME_RINVPARLEN)
    return _checked(int.from_bytes(ref, "big"), total[0], seqnum[0], message)


def _checked(reference: int, total: int, seqnum: int, payload: bytes) -> ConcatInfo:
    if total == 0 or not 1 <= seqnum <= total:
        status = CommandStatus.ESME_RINVOPTPARAMVAL
        raise ConcatError(f"segment {seqnum} of {total} is not a valid position", status)
    return ConcatInfo(reference, total, seqnum, payload)


# --- reassembly -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partial:
    """An incomplete message dropped by expiry or eviction: what had arrived, for logging or partial delivery."""

    key: Hashable
    reference: int
    total: int
    started: float
    parts: tuple[tuple[int, bytes], ...]  # (seqnum, payload), sorted


class Added(NamedTuple):
    """Result of :meth:`Reassembler.add`: the whole payload once complete, and a message evicted to make room."""

    payload: bytes | None
    evicted: Partial | None


class _Pending:
    __slots__ = ("parts", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.parts: dict[int, bytes] = {}


class Reassembler:
    """Bounded buffer joining received parts; sans-IO, time passed in.

    Messages are keyed by (caller's key, e.g. (source, destination); reference; total). Parts may arrive in any order;
    a duplicate part keeps the first copy. A message expires ``ttl`` seconds after its first part. At ``max_pending``
    the oldest message is evicted to make room and returned to the caller. ``now`` must not go backwards.
    """

    def __init__(self, *, max_pending: int, ttl: float) -> None:
        if max_pending < 1 or ttl <= 0:
            raise ValueError("max_pending must be >= 1 and ttl > 0")
        self._max_pending = max_pending
        self._ttl = ttl
        self._pending: dict[tuple[Hashable, int, int], _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Hashable, info: ConcatInfo, now: float) -> Added:
        """Take one part; ``payload`` is the joined message octets when this part completes it."""
        if info.total == 1:
            return Added(info.payload, None)
        full_key = (key, info.reference, info.total)
        pending = self._pending.get(full_key)
        evicted = None
        if pending is None:
            if len(self._pending) >= self._max_pending:
                evicted = self._pop(next(iter(self._pending)))
            pending = self._pending[full_key] = _Pending(now)
        pending.parts.setdefault(info.seqnum, info.payload)
        if len(pending.parts) < info.total:
            return Added(None, evicted)
        del self._pending[full_key]
        return Added(b"".join(pending.parts[seq] for seq in range(1, info.total + 1)), evicted)

    def expire(self, now: float) -> list[Partial]:
        """Drop and return the messages whose first part came ``ttl`` or more seconds before ``now``."""
        expired = []
        ttl = self._ttl
        for full_key, pending in self._pending.items():
            if pending.started + ttl > now:  # the same expression as next_deadline: no float disagreement
                break
            expired.append(full_key)
        return [self._pop(full_key) for full_key in expired]

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do, for the connection's single timer."""
        for pending in self._pending.values():
            return pending.started + self._ttl
        return None

    def _pop(self, full_key: tuple[Hashable, int, int]) -> Partial:
        pending = self._pending.pop(full_key)
        key, reference, total = full_key
        return Partial(key, reference, total, pending.started, tuple(sorted(pending.parts.items())))
