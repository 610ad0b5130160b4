"""Codec properties and edge cases. Byte-exact expectations live in test_golden.py (vectors with provenance)."""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.codec import decode, decode_header, encode
from smppgw.smpp.constants import CommandId, CommandStatus, Tag
from smppgw.smpp.errors import FramingError, LocalProtocolError, PduDecodeError
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import (
    ALL_PDU_TYPES,
    BindTransceiverResp,
    DeliverSmResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    get_tlv,
    read_tlv_cstr,
    read_tlv_int,
    response_type_for,
    tlv_cstr,
    tlv_int,
)

from .strategies import any_pdu, pdus_of


@pytest.mark.parametrize("cls", ALL_PDU_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_round_trip_every_pdu_type(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdus_of(cls))
    raw = encode(pdu)
    assert struct.unpack_from(">I", raw)[0] == len(raw)
    assert decode(raw) == pdu


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_errors(raw: bytes) -> None:
    try:
        decode(raw)
    except PduDecodeError as exc:
        assert exc.status != CommandStatus.ESME_ROK


@settings(max_examples=1000, deadline=None)
@given(any_pdu, st.data())
def test_corrupted_body_raises_only_decode_errors_and_keeps_header(pdu: Pdu, data: st.DataObject) -> None:
    raw = bytearray(encode(pdu))
    if len(raw) > 16:
        index = data.draw(st.integers(16, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(16, len(raw)))
    frame = bytes(raw[:cut])
    frame = struct.pack(">I", len(frame)) + frame[4:]
    try:
        decode(frame)
    except PduDecodeError as exc:
        assert exc.command_id == pdu.command_id
        assert exc.sequence == pdu.sequence


@settings(max_examples=500, deadline=None)
@given(st.lists(any_pdu, min_size=1, max_size=6), st.data())
def test_framing_is_independent_of_chunking(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(encode(p) for p in pdus)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = Framer()
    frames: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        frames += framer.feed(stream[start:cut])
        start = cut
    assert [decode(f) for f in frames] == pdus
    assert framer.buffered == 0


def test_framing_one_byte_at_a_time() -> None:
    pdus = [SubmitSm(sequence=i, short_message=bytes(range(i))) for i in range(1, 30)]
    stream = b"".join(encode(p) for p in pdus)
    framer = Framer()
    frames = [frame for i in range(len(stream)) for frame in framer.feed(stream[i : i + 1])]
    assert [decode(f) for f in frames] == pdus


@pytest.mark.parametrize("length", [0, 15, 64 * 1024 + 1, 0xFFFF_FFFF])
def test_bad_command_length_is_a_framing_error_and_sticks(length: int) -> None:
    framer = Framer()
    with pytest.raises(FramingError):
        framer.feed(struct.pack(">IIII", length, 4, 0, 1))
    with pytest.raises(FramingError):
        framer.feed(encode(GenericNack(sequence=1)))


def test_unknown_command_id_keeps_header() -> None:
    with pytest.raises(PduDecodeError) as info:
        decode(struct.pack(">IIII", 16, 0x0000_0077, 0, 4242))
    assert (info.value.command_id, info.value.sequence) == (0x77, 4242)
    assert info.value.status == CommandStatus.ESME_RINVCMDID
    assert response_type_for(0x77) is GenericNack


def test_sm_length_past_end_is_invalid_message_length() -> None:
    raw = bytearray(encode(SubmitSm(sequence=9, short_message=b"abc")))
    raw[-4] = 200  # sm_length
    with pytest.raises(PduDecodeError) as info:
        decode(bytes(raw))
    assert info.value.status == CommandStatus.ESME_RINVMSGLEN
    assert info.value.sequence == 9


def test_bad_tlv_stream() -> None:
    raw = encode(SubmitSm(sequence=5)) + struct.pack(">HH", Tag.MESSAGE_PAYLOAD, 10) + b"short"
    raw = struct.pack(">I", len(raw)) + raw[4:]
    with pytest.raises(PduDecodeError) as info:
        decode(raw)
    assert info.value.status == CommandStatus.ESME_RINVOPTPARSTREAM


def test_error_response_without_body_and_with_body_both_decode() -> None:
    bare = struct.pack(">IIII", 16, CommandId.SUBMIT_SM_RESP, CommandStatus.ESME_RTHROTTLED, 3)
    assert decode(bare) == SubmitSmResp(sequence=3, status=CommandStatus.ESME_RTHROTTLED)
    with_id = struct.pack(">IIII", 21, CommandId.SUBMIT_SM_RESP, CommandStatus.ESME_RSUBMITFAIL, 3) + b"abcd\0"
    assert decode(with_id) == SubmitSmResp(sequence=3, status=CommandStatus.ESME_RSUBMITFAIL, message_id="abcd")


def test_error_responses_omit_body_as_the_spec_says() -> None:
    assert len(encode(SubmitSmResp(sequence=1, status=CommandStatus.ESME_RTHROTTLED))) == 16
    assert len(encode(BindTransceiverResp(sequence=1, status=CommandStatus.ESME_RINVPASWD))) == 16
    assert encode(DeliverSmResp(sequence=2)).endswith(b"\0")  # message_id unused, set to NULL (4.6.2)


@pytest.mark.parametrize(
    "change",
    [
        {"source_addr": "1" * 21},
        {"destination_addr": "x\0y"},
        {"service_type": "CMTXXX"},
        {"short_message": b"x" * 255},
        {"esm_class": 256},
        {"data_coding": -1},
        {"destination_addr": "Ж"},
        {"tlvs": ((0x1_0000, b""),)},
    ],
)
def test_encoding_refuses_fields_beyond_the_spec(change: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        encode(msgspec.structs.replace(SubmitSm(sequence=1), **change))


def test_unknown_tlvs_are_preserved_in_order() -> None:
    tlvs = (
        (0x1401, b"\x01\x02"),
        tlv_int(Tag.SAR_MSG_REF_NUM, 7, 2),
        (0x1401, b""),
        tlv_cstr(Tag.RECEIPTED_MESSAGE_ID, "a1"),
    )
    pdu = decode(encode(SubmitSm(sequence=1, tlvs=tlvs)))
    assert pdu.tlvs == tlvs
    assert get_tlv(pdu.tlvs, 0x1401) == b"\x01\x02"
    assert read_tlv_int(get_tlv(pdu.tlvs, Tag.SAR_MSG_REF_NUM) or b"") == 7
    assert read_tlv_cstr(get_tlv(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID) or b"") == "a1"
    assert read_tlv_cstr(b"no-terminator") == "no-terminator"


def test_decode_header_only() -> None:
    assert decode_header(encode(SubmitSm(sequence=77))) == (33, CommandId.SUBMIT_SM, 0, 77)
