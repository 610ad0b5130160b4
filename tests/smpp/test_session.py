"""The session state machine: two in-memory peers, time injected, no sockets."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.codec import decode, encode
from smppgw.smpp.constants import CommandId, CommandStatus
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
)
from smppgw.smpp.session import (
    BindRejected,
    BindRequested,
    Bound,
    CloseRequested,
    Event,
    ProtocolViolation,
    RequestFateUnknown,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    SessionConfig,
    State,
    Unbound,
    UnexpectedResponse,
)
from smppgw.smpp.window import WindowFullError

from .strategies import any_pdu


def pump(src: Session, dst: Session, now: float) -> list[Event]:
    return dst.receive_data(src.data_to_send(), now)


def sent_pdus(session: Session) -> list[Pdu]:
    return [decode(frame) for frame in Framer().feed(session.data_to_send())]


def bound_pair(
    bind: type[BindTransmitter | BindReceiver | BindTransceiver] = BindTransceiver, **config: Any
) -> tuple[Session, Session]:
    esme = Session(SessionConfig(role=Role.ESME, **config), now=0.0)
    smsc = Session(SessionConfig(role=Role.SMSC, **config), now=0.0)
    esme.bind(bind(system_id="crm", password="secret"), now=0.0)
    (requested,) = pump(esme, smsc, 0.0)
    assert isinstance(requested, BindRequested)
    assert requested.pdu.password == "secret"
    smsc.accept_bind("smppgw")
    (bound,) = pump(smsc, esme, 0.0)
    assert bound == Bound(state=esme.state, system_id="smppgw")
    return esme, smsc


def test_bind_transceiver_then_submit_and_receipt() -> None:
    esme, smsc = bound_pair()
    assert esme.state is smsc.state is State.BOUND_TRX
    seq = esme.send_request(SubmitSm(destination_addr="79161234567", short_message=b"hi"), 1.0, context="m1")
    (received,) = pump(esme, smsc, 1.0)
    assert isinstance(received, RequestReceived)
    assert received.pdu.sequence == seq
    smsc.send_response(SubmitSmResp(sequence=seq, message_id="A1"))
    smsc.send_request(DeliverSm(esm_class=0x04, short_message=b"id:A1 stat:DELIVRD"), 1.5, context="dlr")
    events = pump(smsc, esme, 2.0)
    assert events[0] == ResponseReceived(SubmitSmResp(sequence=seq, message_id="A1"), "m1", 1.0)
    assert isinstance(events[1], RequestReceived)
    assert isinstance(events[1].pdu, DeliverSm)
    esme.send_response(DeliverSmResp(sequence=events[1].pdu.sequence))
    (ack,) = pump(esme, smsc, 2.5)
    assert isinstance(ack, ResponseReceived)
    assert ack.context == "dlr"
    assert len(smsc.window) == len(esme.window) == 0


def test_rejected_bind() -> None:
    esme = Session(SessionConfig(role=Role.ESME), 0.0)
    smsc = Session(SessionConfig(role=Role.SMSC), 0.0)
    esme.bind(BindTransmitter(system_id="crm", password="wrong"), 0.0)
    pump(esme, smsc, 0.0)
    smsc.reject_bind(CommandStatus.ESME_RINVPASWD)
    assert pump(smsc, esme, 0.0) == [BindRejected(status=CommandStatus.ESME_RINVPASWD)]
    assert esme.state is smsc.state is State.OPEN


def test_requests_refused_before_bind_and_on_wrong_bind_type() -> None:
    smsc = Session(SessionConfig(role=Role.SMSC), 0.0)
    events = smsc.receive_data(encode(SubmitSm(sequence=5)), 0.0)
    assert events == [ProtocolViolation("SUBMIT_SM not allowed in OPEN", CommandStatus.ESME_RINVBNDSTS)]
    assert sent_pdus(smsc) == [SubmitSmResp(sequence=5, status=CommandStatus.ESME_RINVBNDSTS)]

    esme, smsc = bound_pair(BindReceiver)
    with pytest.raises(LocalProtocolError):
        esme.send_request(SubmitSm(), 1.0)
    smsc.receive_data(encode(SubmitSm(sequence=9)), 1.0)
    assert sent_pdus(smsc) == [SubmitSmResp(sequence=9, status=CommandStatus.ESME_RINVBNDSTS)]

    esme, smsc = bound_pair(BindTransmitter)
    with pytest.raises(LocalProtocolError):
        smsc.send_request(DeliverSm(), 1.0)
    esme.receive_data(encode(DeliverSm(sequence=3)), 1.0)
    assert sent_pdus(esme) == [DeliverSmResp(sequence=3, status=CommandStatus.ESME_RINVBNDSTS)]


def test_second_bind_is_already_bound() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(encode(BindTransmitter(sequence=40, system_id="x")), 1.0)
    (resp,) = sent_pdus(smsc)
    assert resp.command_id is CommandId.BIND_TRANSMITTER_RESP
    assert resp.status == CommandStatus.ESME_RALYBND


def test_malformed_request_is_answered_with_its_response_type() -> None:
    _, smsc = bound_pair()
    raw = bytearray(encode(SubmitSm(sequence=77, short_message=b"abc")))
    raw[-4] = 250  # sm_length past the end
    (violation,) = smsc.receive_data(bytes(raw), 1.0)
    assert isinstance(violation, ProtocolViolation)
    assert sent_pdus(smsc) == [SubmitSmResp(sequence=77, status=CommandStatus.ESME_RINVMSGLEN)]


def test_unknown_command_gets_generic_nack_and_session_continues() -> None:
    _esme, smsc = bound_pair()
    smsc.receive_data(struct.pack(">IIII", 16, 0x0000_0666, 0, 12), 1.0)
    assert sent_pdus(smsc) == [GenericNack(sequence=12, status=CommandStatus.ESME_RINVCMDID)]
    assert smsc.state is State.BOUND_TRX


def test_enquire_link_is_answered_automatically() -> None:
    _, smsc = bound_pair()
    assert smsc.receive_data(encode(EnquireLink(sequence=8)), 1.0) == []
    assert sent_pdus(smsc) == [EnquireLinkResp(sequence=8)]


def test_keepalive_and_dead_link() -> None:
    esme, _smsc = bound_pair(enquire_link_interval=30.0, response_timeout=5.0)
    assert esme.get_timer() == 30.0
    assert esme.handle_timer(30.0) == []
    (probe,) = sent_pdus(esme)
    assert isinstance(probe, EnquireLink)
    assert esme.get_timer() == 35.0
    assert esme.handle_timer(35.0) == [CloseRequested(reason="no response to ENQUIRE_LINK")]
    assert esme.closed


def test_keepalive_answered_keeps_link() -> None:
    esme, smsc = bound_pair(enquire_link_interval=30.0, response_timeout=5.0)
    esme.handle_timer(30.0)
    assert pump(esme, smsc, 30.1) == []
    assert pump(smsc, esme, 30.2) == []
    assert esme.get_timer() == pytest.approx(60.2)


def test_response_timeout_is_unknown_fate_and_late_response_is_unexpected() -> None:
    esme, _smsc = bound_pair(response_timeout=10.0, enquire_link_interval=1000.0)
    seq = esme.send_request(SubmitSm(), 1.0, context="m")
    assert esme.get_timer() == 11.0
    assert esme.handle_timer(11.0) == [RequestFateUnknown(seq, CommandId.SUBMIT_SM, "m", "timeout")]
    late = esme.receive_data(encode(SubmitSmResp(sequence=seq, message_id="x")), 12.0)
    assert late == [UnexpectedResponse(SubmitSmResp(sequence=seq, message_id="x"))]


def test_connection_lost_reports_every_request_in_flight() -> None:
    esme, _ = bound_pair()
    seqs = [esme.send_request(SubmitSm(), 1.0, context=i) for i in range(3)]
    lost = esme.connection_lost()
    assert [(e.sequence, e.context, e.reason) for e in lost if isinstance(e, RequestFateUnknown)] == [
        (seqs[0], 0, "disconnect"),
        (seqs[1], 1, "disconnect"),
        (seqs[2], 2, "disconnect"),
    ]
    assert esme.closed


def test_window_full_raises_and_frees_on_response() -> None:
    esme, smsc = bound_pair(window_size=2)
    esme.send_request(SubmitSm(), 1.0)
    esme.send_request(SubmitSm(), 1.0)
    assert not esme.can_send_request
    with pytest.raises(WindowFullError):
        esme.send_request(SubmitSm(), 1.0)
    (first, _) = pump(esme, smsc, 1.0)
    assert isinstance(first, RequestReceived)
    smsc.send_response(SubmitSmResp(sequence=first.pdu.sequence, message_id="1"))
    pump(smsc, esme, 1.1)
    assert esme.can_send_request


def test_session_init_timeout() -> None:
    smsc = Session(SessionConfig(role=Role.SMSC, session_init_timeout=10.0), 0.0)
    assert smsc.get_timer() == 10.0
    assert smsc.handle_timer(10.0) == [CloseRequested(reason="not bound within session_init_timeout")]


def test_inactivity_timeout() -> None:
    _, smsc = bound_pair(inactivity_timeout=60.0, enquire_link_interval=1000.0)
    assert smsc.handle_timer(59.0) == []
    assert smsc.handle_timer(60.0) == [CloseRequested(reason="inactive for 60.0 s")]


def test_unbind_by_us_and_by_peer() -> None:
    esme, smsc = bound_pair()
    esme.unbind(1.0)
    assert esme.state is State.UNBINDING
    with pytest.raises(LocalProtocolError):
        esme.send_request(SubmitSm(), 1.0)
    assert pump(esme, smsc, 1.0) == [Unbound(by_peer=True)]
    assert pump(smsc, esme, 1.0) == [Unbound(by_peer=False)]
    assert esme.closed and smsc.closed


def test_framing_error_requests_close() -> None:
    _, smsc = bound_pair()
    (event,) = smsc.receive_data(struct.pack(">I", 3) + b"\0" * 12, 1.0)
    assert isinstance(event, CloseRequested)
    assert smsc.closed
    assert smsc.receive_data(encode(EnquireLink(sequence=1)), 2.0) == []


def test_bind_response_timeout() -> None:
    esme = Session(SessionConfig(role=Role.ESME, response_timeout=5.0, session_init_timeout=60.0), 0.0)
    esme.bind(BindTransceiver(system_id="a"), 0.0)
    events = esme.handle_timer(5.0)
    assert events == [BindRejected(CommandStatus.ESME_RUNKNOWNERR), CloseRequested("no response to BIND_TRANSCEIVER")]


def test_query_sm_allowed_from_transmitter() -> None:
    esme, smsc = bound_pair(BindTransmitter)
    esme.send_request(QuerySm(message_id="1"), 1.0)
    (event,) = pump(esme, smsc, 1.0)
    assert isinstance(event, RequestReceived)


@pytest.mark.parametrize("role", list(Role))
@settings(max_examples=500, deadline=None)
@given(
    pdus=st.lists(any_pdu, max_size=12), garbage=st.binary(max_size=40), times=st.lists(st.floats(0, 500), max_size=4)
)
def test_random_pdu_sequences_never_crash(role: Role, pdus: list[Pdu], garbage: bytes, times: list[float]) -> None:
    session = Session(SessionConfig(role=role, window_size=4), 0.0)
    stream = b"".join(encode(p) for p in pdus) + garbage
    now = 0.0
    for chunk_start in range(0, len(stream), 97):
        for event in session.receive_data(stream[chunk_start : chunk_start + 97], now):
            assert isinstance(event, Event)
            if isinstance(event, BindRequested):
                session.accept_bind("sim")
            elif isinstance(event, RequestReceived) and event.pdu.command_id in (
                CommandId.SUBMIT_SM,
                CommandId.DELIVER_SM,
            ):
                resp = SubmitSmResp if event.pdu.command_id is CommandId.SUBMIT_SM else DeliverSmResp
                if not session.closed:  # a later PDU of the same batch (unbind) may have ended the session
                    session.send_response(resp(sequence=event.pdu.sequence))
        for frame in Framer().feed(session.data_to_send()):
            decode(frame)  # everything the session sends is a valid PDU
    for t in sorted(times):
        now = max(now, t)
        session.handle_timer(now)
        timer = session.get_timer()
        assert timer is None or timer >= 0.0
    session.connection_lost()
    assert session.closed
    assert len(session.window) == 0
