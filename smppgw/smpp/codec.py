"""Encode PDUs to bytes and decode frames to PDUs (SMPP 3.4 chapter 4).

Strict on what we send, tolerant of what we receive:
- encoding checks every C-Octet String against its specified maximum and raises ``LocalProtocolError``;
- decoding accepts over-long strings, a response whose body is empty whatever its status (spec 3.3: a non-zero
  status response "should" have no body) and a non-zero-status response that still carries one; it raises only
  ``PduDecodeError`` (with the header kept) for a malformed body or an unknown command_id.

Hot paths (submit_sm, deliver_sm and their responses, enquire_link) are written out by hand against precompiled
``struct.Struct`` objects; per-field allocations are kept to the strings the caller asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .constants import HEADER_SIZE, CommandId, CommandStatus, DestFlag, Limits
from .errors import LocalProtocolError, PduDecodeError
from .pdu import (
    PDU_TYPE_BY_COMMAND_ID,
    AlertNotification,
    CancelSm,
    DataSm,
    DistributionList,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    Tlvs,
    UnsuccessSme,
    _Bind,
    _BindResp,
    _MessageIdResp,
    _ShortMessage,
)

HEADER = struct.Struct(">IIII")
_TLV_HEAD = struct.Struct(">HH")
_U32 = struct.Struct(">I")

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from


class _TlvStreamError(Exception):
    """Internal: the optional-parameter part is malformed (answered with ESME_RINVOPTPARSTREAM)."""


class _ShortMessageOverrunError(Exception):
    """Internal: sm_length points past the end of the PDU (answered with ESME_RINVMSGLEN)."""


class _DestFlagError(Exception):
    """Internal: a submit_multi dest_flag other than 1 or 2 (answered with ESME_RINVDESTFLAG)."""


# ---------------------------------------------------------------------------------------------------- encoding


def _cstr(value: str, limit: int, field: str) -> bytes:
    """A C-Octet String of at most ``limit`` octets including the NUL."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{field}: not representable in one octet per character") from exc
    if len(raw) >= limit or b"\0" in raw:
        raise LocalProtocolError(f"{field}: {len(raw)} octets (max {limit - 1}, no NUL) in {value!r}")
    return raw + b"\0"


def _tlv_bytes(tlvs: Tlvs) -> bytes:
    if not tlvs:
        return b""
    out = bytearray()
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise LocalProtocolError(f"TLV 0x{tag:04X}: tag or length out of range")
        out += _TLV_HEAD.pack(tag, len(value))
        out += value
    return bytes(out)


def _sm_bytes(short_message: bytes) -> bytes:
    length = len(short_message)
    if length > Limits.SHORT_MESSAGE:
        raise LocalProtocolError(f"short_message: {length} octets (max {Limits.SHORT_MESSAGE}; use message_payload)")
    return bytes((length,)) + short_message


def _encode_bind(p: Pdu) -> bytes:
    assert isinstance(p, _Bind)
    return b"".join(
        (
            _cstr(p.system_id, Limits.SYSTEM_ID, "system_id"),
            _cstr(p.password, Limits.PASSWORD, "password"),
            _cstr(p.system_type, Limits.SYSTEM_TYPE, "system_type"),
            bytes((p.interface_version, p.addr_ton, p.addr_npi)),
            _cstr(p.address_range, Limits.ADDRESS_RANGE, "address_range"),
        )
    )


def _encode_bind_resp(p: Pdu) -> bytes:
    """Spec 4.1.2: the body is not returned when command_status is non-zero (unless the caller filled it)."""
    assert isinstance(p, _BindResp)
    if p.status and not p.system_id and not p.tlvs:
        return b""
    return _cstr(p.system_id, Limits.SYSTEM_ID, "system_id")


def _encode_outbind(p: Pdu) -> bytes:
    assert isinstance(p, Outbind)
    return _cstr(p.system_id, Limits.SYSTEM_ID, "system_id") + _cstr(p.password, Limits.PASSWORD, "password")


def _encode_empty(p: Pdu) -> bytes:
    return b""


_SHORT_MESSAGE_BODY = b"%b\0%c%c%b\0%c%c%b\0%c%c%c%b\0%b\0%c%c%c%c%c%b"


def _encode_short_message(p: Pdu) -> bytes:
    """Hot path: limits checked on the str lengths (Latin-1 is one octet per character), one bytes-format call; a
    slow path names the offending field when a limit is broken."""
    assert isinstance(p, _ShortMessage)
    service_type = p.service_type
    source_addr = p.source_addr
    destination_addr = p.destination_addr
    schedule = p.schedule_delivery_time
    validity = p.validity_period
    short_message = p.short_message
    if (
        len(service_type) >= Limits.SERVICE_TYPE
        or len(source_addr) >= Limits.ADDR_21
        or len(destination_addr) >= Limits.ADDR_21
        or len(schedule) >= Limits.TIME
        or len(validity) >= Limits.TIME
        or len(short_message) > Limits.SHORT_MESSAGE
        or "\0" in service_type + source_addr + destination_addr + schedule + validity
    ):
        _explain_short_message_fields(p)
    return _SHORT_MESSAGE_BODY % (
        service_type.encode("latin-1"),
        p.source_addr_ton,
        p.source_addr_npi,
        source_addr.encode("latin-1"),
        p.dest_addr_ton,
        p.dest_addr_npi,
        destination_addr.encode("latin-1"),
        p.esm_class,
        p.protocol_id,
        p.priority_flag,
        schedule.encode("latin-1"),
        validity.encode("latin-1"),
        p.registered_delivery,
        p.replace_if_present_flag,
        p.data_coding,
        p.sm_default_msg_id,
        len(short_message),
        short_message,
    )


def _explain_short_message_fields(p: _ShortMessage) -> None:
    """Slow path: raise LocalProtocolError naming the first C-Octet String that breaks its limit."""
    _cstr(p.service_type, Limits.SERVICE_TYPE, "service_type")
    _cstr(p.source_addr, Limits.ADDR_21, "source_addr")
    _cstr(p.destination_addr, Limits.ADDR_21, "destination_addr")
    _cstr(p.schedule_delivery_time, Limits.TIME, "schedule_delivery_time")
    _cstr(p.validity_period, Limits.TIME, "validity_period")
    _sm_bytes(p.short_message)


def _encode_message_id_resp(p: Pdu) -> bytes:
    """Spec 4.4.2: a submit_sm_resp with a non-zero command_status has no body (unless the caller gave an id)."""
    assert isinstance(p, _MessageIdResp)
    message_id = p.message_id
    if not message_id:
        return b"" if p.status and not p.tlvs and p.command_id is CommandId.SUBMIT_SM_RESP else b"\0"
    if len(message_id) >= Limits.MESSAGE_ID or "\0" in message_id:
        _cstr(message_id, Limits.MESSAGE_ID, "message_id")
    return message_id.encode("latin-1") + b"\0"


def _encode_dest_address(dest: SmeAddress | DistributionList) -> bytes:
    if isinstance(dest, SmeAddress):
        return bytes((DestFlag.SME_ADDRESS, dest.ton, dest.npi)) + _cstr(dest.address, Limits.ADDR_21, "dest_address")
    return bytes((DestFlag.DISTRIBUTION_LIST,)) + _cstr(dest.name, Limits.DL_NAME, "dl_name")


def _encode_submit_multi(p: Pdu) -> bytes:
    assert isinstance(p, SubmitMulti)
    if not 1 <= len(p.dest_addresses) <= Limits.MAX_DESTS:
        raise LocalProtocolError(f"submit_multi: {len(p.dest_addresses)} destinations (1..{Limits.MAX_DESTS})")
    return b"".join(
        (
            _cstr(p.service_type, Limits.SERVICE_TYPE, "service_type"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_21, "source_addr"),
            bytes((len(p.dest_addresses),)),
            *(_encode_dest_address(dest) for dest in p.dest_addresses),
            bytes((p.esm_class, p.protocol_id, p.priority_flag)),
            _cstr(p.schedule_delivery_time, Limits.TIME, "schedule_delivery_time"),
            _cstr(p.validity_period, Limits.TIME, "validity_period"),
            bytes((p.registered_delivery, p.replace_if_present_flag, p.data_coding, p.sm_default_msg_id)),
            _sm_bytes(p.short_message),
        )
    )


def _encode_submit_multi_resp(p: Pdu) -> bytes:
    assert isinstance(p, SubmitMultiResp)
    if len(p.unsuccess_smes) > Limits.MAX_DESTS:
        raise LocalProtocolError("submit_multi_resp: too many unsuccess_sme entries")
    parts = [_cstr(p.message_id, Limits.MESSAGE_ID, "message_id"), bytes((len(p.unsuccess_smes),))]
    for sme in p.unsuccess_smes:
        parts.append(bytes((sme.ton, sme.npi)))
        parts.append(_cstr(sme.address, Limits.ADDR_21, "destination_addr"))
        parts.append(_U32.pack(sme.error_status))
    return b"".join(parts)


def _encode_data_sm(p: Pdu) -> bytes:
    assert isinstance(p, DataSm)
    return b"".join(
        (
            _cstr(p.service_type, Limits.SERVICE_TYPE, "service_type"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_65, "source_addr"),
            bytes((p.dest_addr_ton, p.dest_addr_npi)),
            _cstr(p.destination_addr, Limits.ADDR_65, "destination_addr"),
            bytes((p.esm_class, p.registered_delivery, p.data_coding)),
        )
    )


def _encode_query_sm(p: Pdu) -> bytes:
    assert isinstance(p, QuerySm)
    return b"".join(
        (
            _cstr(p.message_id, Limits.MESSAGE_ID, "message_id"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_21, "source_addr"),
        )
    )


def _encode_query_sm_resp(p: Pdu) -> bytes:
    assert isinstance(p, QuerySmResp)
    return b"".join(
        (
            _cstr(p.message_id, Limits.MESSAGE_ID, "message_id"),
            _cstr(p.final_date, Limits.TIME, "final_date"),
            bytes((p.message_state, p.error_code)),
        )
    )


def _encode_cancel_sm(p: Pdu) -> bytes:
    assert isinstance(p, CancelSm)
    return b"".join(
        (
            _cstr(p.service_type, Limits.SERVICE_TYPE, "service_type"),
            _cstr(p.message_id, Limits.MESSAGE_ID, "message_id"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_21, "source_addr"),
            bytes((p.dest_addr_ton, p.dest_addr_npi)),
            _cstr(p.destination_addr, Limits.ADDR_21, "destination_addr"),
        )
    )


def _encode_replace_sm(p: Pdu) -> bytes:
    assert isinstance(p, ReplaceSm)
    return b"".join(
        (
            _cstr(p.message_id, Limits.MESSAGE_ID, "message_id"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_21, "source_addr"),
            _cstr(p.schedule_delivery_time, Limits.TIME, "schedule_delivery_time"),
            _cstr(p.validity_period, Limits.TIME, "validity_period"),
            bytes((p.registered_delivery, p.sm_default_msg_id)),
            _sm_bytes(p.short_message),
        )
    )


def _encode_alert_notification(p: Pdu) -> bytes:
    assert isinstance(p, AlertNotification)
    return b"".join(
        (
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, Limits.ADDR_65, "source_addr"),
            bytes((p.esme_addr_ton, p.esme_addr_npi)),
            _cstr(p.esme_addr, Limits.ADDR_65, "esme_addr"),
        )
    )


# ---------------------------------------------------------------------------------------------------- decoding
# Decoders get (frame, status, sequence) and read the body from offset 16. A truncated body surfaces as IndexError
# or ValueError (bytes.index without a NUL), which ``decode`` translates once into PduDecodeError.

_Decoder = Callable[[bytes, int, int], Pdu]


def _read_tlvs(frame: bytes, pos: int) -> Tlvs:
    end = len(frame)
    if pos == end:
        return ()
    items = []
    while pos < end:
        if pos + 4 > end:
            raise _TlvStreamError("truncated TLV header")
        tag, length = _TLV_HEAD.unpack_from(frame, pos)
        pos += 4
        if pos + length > end:
            raise _TlvStreamError(f"TLV 0x{tag:04X} length {length} runs past the PDU")
        items.append((tag, frame[pos : pos + length]))
        pos += length
    return tuple(items)


def _decoder_empty(cls: type[Pdu]) -> _Decoder:
    def decode_empty(frame: bytes, status: int, sequence: int) -> Pdu:
        return cls(sequence, status, _read_tlvs(frame, HEADER_SIZE) if len(frame) > HEADER_SIZE else ())

    return decode_empty


def _decoder_bind(cls: type[_Bind]) -> _Decoder:
    def decode_bind(frame: bytes, status: int, sequence: int) -> Pdu:
        index = frame.index
        end = index(0, 16)
        system_id = frame[16:end].decode("latin-1")
        pos = end + 1
        end = index(0, pos)
        password = frame[pos:end].decode("latin-1")
        pos = end + 1
        end = index(0, pos)
        system_type = frame[pos:end].decode("latin-1")
        pos = end + 1
        interface_version, addr_ton, addr_npi = frame[pos], frame[pos + 1], frame[pos + 2]
        pos += 3
        end = index(0, pos)
        return cls(
            sequence=sequence,
            status=status,
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=interface_version,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=frame[pos:end].decode("latin-1"),
            tlvs=_read_tlvs(frame, end + 1),
        )

    return decode_bind


def _decoder_message_id_resp(cls: type[_MessageIdResp]) -> _Decoder:
    """submit_sm_resp and kin: one C-Octet String (+ TLVs); an empty body is accepted whatever the status."""

    def decode_message_id_resp(frame: bytes, status: int, sequence: int) -> Pdu:
        if len(frame) == HEADER_SIZE:
            return cls(sequence, status)
        end = frame.index(0, 16)
        tlvs = _read_tlvs(frame, end + 1) if end + 1 < len(frame) else ()
        return cls(sequence, status, tlvs, frame[16:end].decode("latin-1"))  # positional: see pdu.py

    return decode_message_id_resp


def _decoder_bind_resp(cls: type[_BindResp]) -> _Decoder:
    """bind_*_resp: system_id and optionally sc_interface_version; empty body accepted (failed binds)."""

    def decode_bind_resp(frame: bytes, status: int, sequence: int) -> Pdu:
        if len(frame) == HEADER_SIZE:
            return cls(sequence=sequence, status=status)
        end = frame.index(0, 16)
        return cls(
            sequence=sequence, status=status, system_id=frame[16:end].decode("latin-1"), tlvs=_read_tlvs(frame, end + 1)
        )

    return decode_bind_resp


def _decode_outbind(frame: bytes, status: int, sequence: int) -> Pdu:
    end = frame.index(0, 16)
    system_id = frame[16:end].decode("latin-1")
    pos = end + 1
    end = frame.index(0, pos)
    return Outbind(
        sequence=sequence,
        status=status,
        system_id=system_id,
        password=frame[pos:end].decode("latin-1"),
        tlvs=_read_tlvs(frame, end + 1),
    )


def _decoder_short_message(cls: type[_ShortMessage]) -> _Decoder:
    def decode_short_message(frame: bytes, status: int, sequence: int) -> Pdu:
        index = frame.index
        end = index(0, 16)
        service_type = frame[16:end].decode("latin-1")
        source_addr_ton = frame[end + 1]
        source_addr_npi = frame[end + 2]
        pos = end + 3
        end = index(0, pos)
        source_addr = frame[pos:end].decode("latin-1")
        dest_addr_ton = frame[end + 1]
        dest_addr_npi = frame[end + 2]
        pos = end + 3
        end = index(0, pos)
        destination_addr = frame[pos:end].decode("latin-1")
        esm_class, protocol_id, priority_flag = frame[end + 1], frame[end + 2], frame[end + 3]
        pos = end + 4
        end = index(0, pos)
        schedule_delivery_time = frame[pos:end].decode("latin-1") if end > pos else ""
        pos = end + 1
        end = index(0, pos)
        validity_period = frame[pos:end].decode("latin-1") if end > pos else ""
        registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length = frame[
            end + 1 : end + 6
        ]
        pos = end + 6
        sm_end = pos + sm_length
        if sm_end > len(frame):
            raise _ShortMessageOverrunError(sm_length)
        tlvs = _read_tlvs(frame, sm_end) if sm_end < len(frame) else ()
        # Positional, in field order (pdu.py): header fields, then the body in wire order.
        return cls(
            sequence,
            status,
            tlvs,
            service_type,
            source_addr_ton,
            source_addr_npi,
            source_addr,
            dest_addr_ton,
            dest_addr_npi,
            destination_addr,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_delivery_time,
            validity_period,
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            frame[pos:sm_end],
        )

    return decode_short_message


class _Reader:
    """Sequential reader for the less frequent PDUs, where clarity beats the last 100 ns."""

    __slots__ = ("frame", "pos")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.pos = HEADER_SIZE

    def cstr(self) -> str:
        end = self.frame.index(0, self.pos)
        value = self.frame[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        value = self.frame[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        (value,) = _U32.unpack_from(self.frame, self.pos)
        self.pos += 4
        return int(value)

    def octets(self, length: int) -> bytes:
        end = self.pos + length
        if end > len(self.frame):
            raise _ShortMessageOverrunError(length)
        value = self.frame[self.pos : end]
        self.pos = end
        return value

    def tlvs(self) -> Tlvs:
        return _read_tlvs(self.frame, self.pos)


def _decode_submit_multi(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    service_type, source_addr_ton, source_addr_npi, source_addr = r.cstr(), r.u8(), r.u8(), r.cstr()
    dests: list[SmeAddress | DistributionList] = []
    for _ in range(r.u8()):
        flag = r.u8()
        if flag == DestFlag.SME_ADDRESS:
            dests.append(SmeAddress(r.u8(), r.u8(), r.cstr()))
        elif flag == DestFlag.DISTRIBUTION_LIST:
            dests.append(DistributionList(r.cstr()))
        else:
            raise _DestFlagError(flag)
    return SubmitMulti(
        sequence=sequence,
        status=status,
        service_type=service_type,
        source_addr_ton=source_addr_ton,
        source_addr_npi=source_addr_npi,
        source_addr=source_addr,
        dest_addresses=tuple(dests),
        esm_class=r.u8(),
        protocol_id=r.u8(),
        priority_flag=r.u8(),
        schedule_delivery_time=r.cstr(),
        validity_period=r.cstr(),
        registered_delivery=r.u8(),
        replace_if_present_flag=r.u8(),
        data_coding=r.u8(),
        sm_default_msg_id=r.u8(),
        short_message=r.octets(r.u8()),
        tlvs=r.tlvs(),
    )


def _decode_submit_multi_resp(frame: bytes, status: int, sequence: int) -> Pdu:
    if len(frame) == HEADER_SIZE:
        return SubmitMultiResp(sequence=sequence, status=status)
    r = _Reader(frame)
    message_id = r.cstr()
    smes = tuple(UnsuccessSme(r.u8(), r.u8(), r.cstr(), r.u32()) for _ in range(r.u8()))
    return SubmitMultiResp(sequence=sequence, status=status, message_id=message_id, unsuccess_smes=smes, tlvs=r.tlvs())


def _decode_data_sm(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    return DataSm(
        sequence=sequence,
        status=status,
        service_type=r.cstr(),
        source_addr_ton=r.u8(),
        source_addr_npi=r.u8(),
        source_addr=r.cstr(),
        dest_addr_ton=r.u8(),
        dest_addr_npi=r.u8(),
        destination_addr=r.cstr(),
        esm_class=r.u8(),
        registered_delivery=r.u8(),
        data_coding=r.u8(),
        tlvs=r.tlvs(),
    )


def _decode_query_sm(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    return QuerySm(
        sequence=sequence,
        status=status,
        message_id=r.cstr(),
        source_addr_ton=r.u8(),
        source_addr_npi=r.u8(),
        source_addr=r.cstr(),
        tlvs=r.tlvs(),
    )


def _decode_query_sm_resp(frame: bytes, status: int, sequence: int) -> Pdu:
    if len(frame) == HEADER_SIZE:
        return QuerySmResp(sequence=sequence, status=status)
    r = _Reader(frame)
    return QuerySmResp(
        sequence=sequence,
        status=status,
        message_id=r.cstr(),
        final_date=r.cstr(),
        message_state=r.u8(),
        error_code=r.u8(),
        tlvs=r.tlvs(),
    )


def _decode_cancel_sm(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    return CancelSm(
        sequence=sequence,
        status=status,
        service_type=r.cstr(),
        message_id=r.cstr(),
        source_addr_ton=r.u8(),
        source_addr_npi=r.u8(),
        source_addr=r.cstr(),
        dest_addr_ton=r.u8(),
        dest_addr_npi=r.u8(),
        destination_addr=r.cstr(),
        tlvs=r.tlvs(),
    )


def _decode_replace_sm(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    return ReplaceSm(
        sequence=sequence,
        status=status,
        message_id=r.cstr(),
        source_addr_ton=r.u8(),
        source_addr_npi=r.u8(),
        source_addr=r.cstr(),
        schedule_delivery_time=r.cstr(),
        validity_period=r.cstr(),
        registered_delivery=r.u8(),
        sm_default_msg_id=r.u8(),
        short_message=r.octets(r.u8()),
        tlvs=r.tlvs(),
    )


def _decode_alert_notification(frame: bytes, status: int, sequence: int) -> Pdu:
    r = _Reader(frame)
    return AlertNotification(
        sequence=sequence,
        status=status,
        source_addr_ton=r.u8(),
        source_addr_npi=r.u8(),
        source_addr=r.cstr(),
        esme_addr_ton=r.u8(),
        esme_addr_npi=r.u8(),
        esme_addr=r.cstr(),
        tlvs=r.tlvs(),
    )


# ---------------------------------------------------------------------------------------------------- registry

_BodyEncoder = Callable[[Pdu], bytes]

_BODY_CODECS: dict[CommandId, tuple[_BodyEncoder, _Decoder]] = {}


def _register(command_id: CommandId, encoder: _BodyEncoder, decoder: _Decoder) -> None:
    _BODY_CODECS[command_id] = (encoder, decoder)


def _register_all() -> None:
    by_id = PDU_TYPE_BY_COMMAND_ID
    for cid in (CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER):
        bind_cls = by_id[cid]
        assert issubclass(bind_cls, _Bind)
        _register(cid, _encode_bind, _decoder_bind(bind_cls))
    for cid in (CommandId.BIND_TRANSMITTER_RESP, CommandId.BIND_RECEIVER_RESP, CommandId.BIND_TRANSCEIVER_RESP):
        resp_cls = by_id[cid]
        assert issubclass(resp_cls, _BindResp)
        _register(cid, _encode_bind_resp, _decoder_bind_resp(resp_cls))
    for cid in (CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM_RESP, CommandId.DATA_SM_RESP):
        id_cls = by_id[cid]
        assert issubclass(id_cls, _MessageIdResp)
        _register(cid, _encode_message_id_resp, _decoder_message_id_resp(id_cls))
    for cid in (CommandId.SUBMIT_SM, CommandId.DELIVER_SM):
        sm_cls = by_id[cid]
        assert issubclass(sm_cls, _ShortMessage)
        _register(cid, _encode_short_message, _decoder_short_message(sm_cls))
    for cid in (
        CommandId.UNBIND,
        CommandId.UNBIND_RESP,
        CommandId.ENQUIRE_LINK,
        CommandId.ENQUIRE_LINK_RESP,
        CommandId.GENERIC_NACK,
        CommandId.CANCEL_SM_RESP,
        CommandId.REPLACE_SM_RESP,
    ):
        _register(cid, _encode_empty, _decoder_empty(by_id[cid]))
    _register(CommandId.OUTBIND, _encode_outbind, _decode_outbind)
    _register(CommandId.SUBMIT_MULTI, _encode_submit_multi, _decode_submit_multi)
    _register(CommandId.SUBMIT_MULTI_RESP, _encode_submit_multi_resp, _decode_submit_multi_resp)
    _register(CommandId.DATA_SM, _encode_data_sm, _decode_data_sm)
    _register(CommandId.QUERY_SM, _encode_query_sm, _decode_query_sm)
    _register(CommandId.QUERY_SM_RESP, _encode_query_sm_resp, _decode_query_sm_resp)
    _register(CommandId.CANCEL_SM, _encode_cancel_sm, _decode_cancel_sm)
    _register(CommandId.REPLACE_SM, _encode_replace_sm, _decode_replace_sm)
    _register(CommandId.ALERT_NOTIFICATION, _encode_alert_notification, _decode_alert_notification)
    missing = set(CommandId) - set(_BODY_CODECS)
    assert not missing, f"no codec for {missing}"


_register_all()
_ENCODERS: dict[int, _BodyEncoder] = {cid: pair[0] for cid, pair in _BODY_CODECS.items()}
_DECODERS: dict[int, _Decoder] = {cid: pair[1] for cid, pair in _BODY_CODECS.items()}


# ---------------------------------------------------------------------------------------------------- public API


def encode(pdu: Pdu, sequence: int | None = None) -> bytes:
    """The wire bytes of ``pdu`` (header included), with ``sequence`` instead of ``pdu.sequence`` when given (the
    session numbers requests without copying them). Raises ``LocalProtocolError`` if a field breaks the spec."""
    command_id = pdu.command_id
    try:
        body = _ENCODERS[command_id](pdu)
        if pdu.tlvs:
            body += _tlv_bytes(pdu.tlvs)
        return (
            _pack_header(
                HEADER_SIZE + len(body), command_id, pdu.status, pdu.sequence if sequence is None else sequence
            )
            + body
        )
    except (ValueError, OverflowError, TypeError, struct.error) as exc:  # out-of-range integer, non-Latin-1 text
        raise LocalProtocolError(f"{command_id.name}: a field cannot be encoded: {exc}") from exc


def decode(frame: bytes) -> Pdu:
    """The PDU in one complete ``frame`` (as produced by ``framing.Framer``).

    Raises ``PduDecodeError`` (keeping command_id and sequence) if the command_id is unknown or the body is
    malformed; ``status`` on the error is what to answer with.
    """
    if len(frame) < HEADER_SIZE:
        raise PduDecodeError(
            f"frame of {len(frame)} octets is shorter than a header",
            command_id=0,
            sequence=0,
            status=CommandStatus.ESME_RINVCMDLEN,
        )
    length, command_id, status, sequence = _unpack_header(frame)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise PduDecodeError(
            f"unknown command_id 0x{command_id:08X}",
            command_id=command_id,
            sequence=sequence,
            status=CommandStatus.ESME_RINVCMDID,
        )
    if length != len(frame):
        raise PduDecodeError(
            f"command_length {length} != frame size {len(frame)}",
            command_id=command_id,
            sequence=sequence,
            status=CommandStatus.ESME_RINVCMDLEN,
        )
    try:
        return decoder(frame, status, sequence)
    except _TlvStreamError as exc:
        problem, reply = f"malformed optional parameters: {exc}", CommandStatus.ESME_RINVOPTPARSTREAM
    except _ShortMessageOverrunError as exc:
        problem, reply = f"sm_length {exc} runs past the PDU", CommandStatus.ESME_RINVMSGLEN
    except _DestFlagError as exc:
        problem, reply = f"invalid dest_flag {exc}", CommandStatus.ESME_RINVDESTFLAG
    except (IndexError, ValueError, struct.error):
        problem, reply = "body truncated (missing field or NUL terminator)", CommandStatus.ESME_RINVCMDLEN
    raise PduDecodeError(
        f"{CommandId(command_id).name}: {problem}", command_id=command_id, sequence=sequence, status=reply
    )


def decode_header(frame: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) without decoding the body."""
    length, command_id, status, sequence = _unpack_header(frame)
    return length, command_id, status, sequence
