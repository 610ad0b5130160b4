"""SmppConnection as an adapter: a fake transport on one side, a sans-IO ``Session`` as the peer on the other.

No sockets: every byte the connection writes is read back from ``FakeTransport`` and fed to the peer session, and
the peer's output goes into ``data_received``. Time is the running loop's clock (timers are small).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smppgw.net.connection import SmppConnection
from smppgw.net.errors import (
    BindError,
    ConnectionClosedError,
    NetError,
    NotBoundError,
    RequestFateUnknownError,
    WindowTimeoutError,
)
from smppgw.smpp.constants import CommandId, CommandStatus
from smppgw.smpp.pdu import (
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    EnquireLink,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    _Bind,
)
from smppgw.smpp.session import (
    BindRequested,
    Bound,
    Event,
    RequestReceived,
    Role,
    Session,
    SessionConfig,
    Unbound,
)

from .helpers import ESME, SMSC, EsmeHandler, FakeTransport, pdus, submit


class Wired:
    """One SmppConnection on a FakeTransport, facing a sans-IO peer session of the other role."""

    def __init__(self, config: SessionConfig, handler: Any, **kwargs: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.conn = SmppConnection(config, handler, **kwargs)
        self.transport = FakeTransport(self.conn)
        self.conn.connection_made(self.transport)
        peer_role = Role.SMSC if config.role is Role.ESME else Role.ESME
        self.peer = Session(
            SessionConfig(role=peer_role, window_size=100, enquire_link_interval=None, session_init_timeout=None),
            self.loop.time(),
        )

    def to_peer(self) -> list[Event]:
        """Feed what the connection wrote to the peer; return the peer's events."""
        return self.peer.receive_data(self.transport.take(), self.loop.time())

    def to_conn(self) -> None:
        """Feed what the peer queued to the connection (one ``data_received``)."""
        data = self.peer.data_to_send()
        if data:
            self.conn.data_received(data)

    def answer_all(self) -> int:
        """Peer: answer every request received so far (submit_sm_resp / its response type); return how many."""
        answered = 0
        for event in self.to_peer():
            if isinstance(event, RequestReceived):
                self.peer.send_response(SubmitSmResp(sequence=event.pdu.sequence, message_id="x"))
                answered += 1
        self.to_conn()
        return answered


async def bound_esme(config: SessionConfig = ESME, handler: Any = None, **kwargs: Any) -> Wired:
    wired = Wired(config, handler or EsmeHandler(), **kwargs)
    task = asyncio.create_task(wired.conn.bind(BindTransceiver(system_id="esme", password="pw"), timeout=1.0))
    await asyncio.sleep(0)
    (event,) = wired.to_peer()
    assert isinstance(event, BindRequested)
    wired.peer.accept_bind("smsc")
    wired.to_conn()
    await task
    assert wired.conn.is_bound
    return wired


class AnsweringSmsc(EsmeHandler):
    """SMSC-role handler: accepts binds and answers submit_sm synchronously, inside ``data_received``."""

    def __init__(self, *, decide: bool = True, reject: int | None = None, also_deliver: bool = False) -> None:
        super().__init__()
        self.decide = decide
        self.reject = reject
        self.also_deliver = also_deliver
        self.bind_pdus: list[_Bind] = []

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        super().on_bind_request(conn, pdu)
        self.bind_pdus.append(pdu)
        if not self.decide:
            return
        if self.reject is not None:
            conn.reject_bind(self.reject)
        else:
            conn.accept_bind("smsc")

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        super().on_request(conn, pdu)
        conn.send_response(SubmitSmResp(sequence=pdu.sequence, message_id="1"))
        if self.also_deliver:
            conn.send_request(DeliverSm(short_message=b"receipt"), lambda _r, _e: None)


async def bound_smsc(handler: AnsweringSmsc | None = None) -> tuple[Wired, AnsweringSmsc]:
    handler = handler or AnsweringSmsc()
    wired = Wired(SMSC, handler)
    wired.peer.bind(BindTransceiver(system_id="esme", password="pw"), wired.loop.time())
    wired.to_conn()
    events = wired.to_peer()
    assert any(isinstance(e, Bound) for e in events), events
    return wired, handler


# ---------------------------------------------------------------------------------------------------- writes


async def test_requests_queued_in_one_iteration_go_out_in_one_write() -> None:
    wired = await bound_esme()
    writes_before = len(wired.transport.writes)
    results: list[tuple[Pdu | None, BaseException | None]] = []
    for n in range(5):
        wired.conn.send_request(submit(n), lambda r, e: results.append((r, e)))
    assert len(wired.transport.writes) == writes_before, "send_request must not write synchronously"
    await asyncio.sleep(0)
    assert len(wired.transport.writes) == writes_before + 1
    tasks = [asyncio.create_task(wired.conn.request(submit(f"f{n}"))) for n in range(5)]
    await asyncio.sleep(0)  # the five tasks run and queue their requests
    await asyncio.sleep(0)  # the flush scheduled by the first runs after all of them
    assert len(wired.transport.writes) == writes_before + 2
    sent = pdus(b"".join(wired.transport.writes[-2:]))
    assert [len(pdus(w)) for w in wired.transport.writes[-2:]] == [5, 5]
    assert [p.command_id for p in sent] == [CommandId.SUBMIT_SM] * 10
    assert len({p.sequence for p in sent}) == 10
    assert wired.answer_all() == 10
    assert len(await asyncio.gather(*tasks)) == 5
    assert len(results) == 5 and all(isinstance(r, SubmitSmResp) and e is None for r, e in results)


async def test_responses_made_inside_data_received_are_written_once_at_its_end() -> None:
    wired, _ = await bound_smsc(AnsweringSmsc(also_deliver=True))
    writes_before = len(wired.transport.writes)
    now = wired.loop.time()
    for n in range(5):
        wired.peer.send_request(submit(n), now)
    wired.peer.send_request(EnquireLink(), now)
    wired.to_conn()  # one data_received: 5 submit_sm + enquire_link
    assert len(wired.transport.writes) == writes_before + 1, "one write at the end of data_received"
    sent = pdus(wired.transport.writes[-1])
    kinds = [p.command_id for p in sent]
    assert kinds.count(CommandId.SUBMIT_SM_RESP) == 5
    assert kinds.count(CommandId.DELIVER_SM) == 5
    assert kinds.count(CommandId.ENQUIRE_LINK_RESP) == 1
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(wired.transport.writes) == writes_before + 1, "no empty or extra write afterwards"
    assert wired.conn.stats.writes == len(wired.transport.writes)


async def test_responses_sent_later_are_coalesced_too() -> None:
    wired, _ = await bound_smsc(AnsweringSmsc())
    writes_before = len(wired.transport.writes)
    for n in range(3):
        wired.conn.send_response(SubmitSmResp(sequence=100 + n, message_id=str(n)))
    await asyncio.sleep(0)
    assert len(wired.transport.writes) == writes_before + 1
    assert [p.sequence for p in pdus(wired.transport.writes[-1])] == [100, 101, 102]


# ---------------------------------------------------------------------------------------------------- backpressure


async def test_pause_writing_pauses_reading_and_requests_wait_for_resume() -> None:
    wired = await bound_esme()
    assert wired.transport.limits is not None and wired.transport.limits[0] > wired.transport.limits[1]
    wired.conn.pause_writing()
    assert not wired.transport.reading
    assert not wired.conn.has_free_slot
    task = asyncio.create_task(wired.conn.request(submit(1)))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    assert pdus(wired.transport.take()) == []
    wired.conn.resume_writing()
    assert wired.transport.reading
    for _ in range(3):
        await asyncio.sleep(0)
    assert wired.answer_all() == 1
    assert isinstance(await asyncio.wait_for(task, 1.0), SubmitSmResp)


async def test_resume_writing_lets_every_waiting_request_proceed() -> None:
    wired = await bound_esme()
    wired.conn.pause_writing()
    tasks = [asyncio.create_task(wired.conn.request(submit(n))) for n in range(3)]
    await asyncio.sleep(0)
    wired.conn.resume_writing()
    for _ in range(5):
        await asyncio.sleep(0)
    sent = pdus(wired.transport.take())
    try:
        assert len(sent) == 3, f"{len(sent)} of 3 waiting requests were sent after resume_writing"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------------- timers


async def test_timer_is_armed_at_the_session_deadline_and_keepalive_is_sent() -> None:
    config = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=0.5, enquire_link_interval=0.05, session_init_timeout=5.0
    )
    wired = await bound_esme(config)
    loop = wired.loop
    assert wired.conn._timer is not None
    assert wired.conn._timer.when() == pytest.approx(wired.conn.session.get_timer())
    start = loop.time()
    enquiries = 0
    async with asyncio.timeout(2.0):
        while enquiries < 3:  # the peer answers: the link stays up across several intervals
            await asyncio.sleep(0.005)
            data = wired.transport.take()
            sent = pdus(data)
            assert all(isinstance(p, EnquireLink) for p in sent), sent
            enquiries += len(sent)
            assert wired.peer.receive_data(data, loop.time()) == []  # the peer session answers enquire_link itself
            wired.to_conn()
    assert loop.time() - start >= 3 * 0.05 * 0.9
    assert wired.conn.is_bound and not wired.conn.is_closed


async def test_unanswered_keepalive_closes_within_interval_plus_timeout() -> None:
    config = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=0.1, enquire_link_interval=0.05, session_init_timeout=5.0
    )
    handler = EsmeHandler()
    wired = await bound_esme(config, handler)
    start = wired.loop.time()
    async with asyncio.timeout(1.0):
        await wired.conn.wait_closed()
    elapsed = wired.loop.time() - start
    assert 0.15 * 0.9 <= elapsed <= 0.15 + 0.1, elapsed
    assert [p.command_id for p in pdus(wired.transport.take())] == [CommandId.ENQUIRE_LINK]
    assert "ENQUIRE_LINK" in (wired.conn.closed_reason or "")
    assert [reason for _, reason in handler.closed] == [wired.conn.closed_reason]


async def test_request_timeout_reports_unknown_fate() -> None:
    config = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=5.0, enquire_link_interval=0.05, session_init_timeout=5.0
    )
    wired = await bound_esme(config)
    start = wired.loop.time()
    with pytest.raises(RequestFateUnknownError) as info:
        async with asyncio.timeout(1.0):
            await wired.conn.request(submit(1), timeout=0.2)
    assert info.value.reason == "timeout"
    assert info.value.command_id == CommandId.SUBMIT_SM
    assert 0.2 * 0.9 <= wired.loop.time() - start <= 0.35
    assert wired.conn.in_flight == 0


async def test_request_timeout_fires_without_keepalive() -> None:
    wired = await bound_esme()  # ESME: enquire_link_interval None
    with pytest.raises(RequestFateUnknownError):
        async with asyncio.timeout(0.3):
            await wired.conn.request(submit(1), timeout=0.05)


async def test_request_timeout_shorter_than_the_armed_timer_fires_on_time() -> None:
    config = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=5.0, enquire_link_interval=0.3, session_init_timeout=5.0
    )
    wired = await bound_esme(config)
    start = wired.loop.time()
    with pytest.raises(RequestFateUnknownError):
        async with asyncio.timeout(2.0):
            await wired.conn.request(submit(1), timeout=0.05)
    elapsed = wired.loop.time() - start
    assert elapsed < 0.2, f"a 0.05 s request timeout fired after {elapsed:.2f} s"


async def test_wait_for_slot_timeout_raises_window_timeout() -> None:
    config = SessionConfig(role=Role.ESME, window_size=1, enquire_link_interval=None, session_init_timeout=5.0)
    wired = await bound_esme(config)
    wired.conn.send_request(submit(1), lambda r, e: None)
    assert not wired.conn.has_free_slot
    with pytest.raises(WindowTimeoutError):
        await wired.conn.wait_for_slot(0.02)
    with pytest.raises(WindowTimeoutError):
        await wired.conn.request(submit(2), slot_timeout=0.02)
    await asyncio.sleep(0)
    assert len(pdus(wired.transport.take())) == 1, "the timed-out request must not have been sent"


async def test_a_cancelled_slot_waiter_passes_the_free_slot_on() -> None:
    config = SessionConfig(role=Role.ESME, window_size=1, enquire_link_interval=None, session_init_timeout=5.0)
    wired = await bound_esme(config)
    wired.conn.send_request(submit(1), lambda r, e: None)
    first = asyncio.create_task(wired.conn.wait_for_slot())
    second = asyncio.create_task(wired.conn.wait_for_slot())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert wired.answer_all() == 1  # frees the slot, wakes ``first``
    first.cancel()  # ... which is cancelled before it runs (e.g. its caller's timeout)
    try:
        async with asyncio.timeout(0.2):
            await second
    finally:
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)


# ---------------------------------------------------------------------------------------------------- errors


async def test_connection_lost_completes_everything_in_flight() -> None:
    config = SessionConfig(role=Role.ESME, window_size=2, enquire_link_interval=None, session_init_timeout=5.0)
    handler = EsmeHandler()
    wired = await bound_esme(config, handler)
    order: list[str] = []
    callback_results: list[tuple[Pdu | None, BaseException | None]] = []

    def callback(response: Pdu | None, error: BaseException | None) -> None:
        order.append("callback")
        callback_results.append((response, error))

    wired.conn.send_request(submit(1), callback)
    in_flight = asyncio.create_task(wired.conn.request(submit(2)))
    waiter = asyncio.create_task(wired.conn.request(submit(3)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert wired.conn.in_flight == 2 and not waiter.done()
    original_on_closed = handler.on_closed
    handler.on_closed = lambda conn, reason: (order.append("on_closed"), original_on_closed(conn, reason))  # type: ignore[method-assign]

    wired.conn.connection_lost(ConnectionResetError("reset by peer"))

    assert len(callback_results) == 1
    response, error = callback_results[0]
    assert response is None and isinstance(error, RequestFateUnknownError) and error.reason == "disconnect"
    with pytest.raises(RequestFateUnknownError) as info:
        await in_flight
    assert info.value.reason == "disconnect"
    with pytest.raises(ConnectionClosedError):
        await waiter
    assert order == ["callback", "on_closed"], "on_closed comes after every request was completed"
    assert len(handler.closed) == 1 and "reset by peer" in handler.closed[0][1]
    assert wired.conn.is_closed and wired.conn.in_flight == 0
    with pytest.raises(ConnectionClosedError):
        wired.conn.send_request(submit(4), callback)
    with pytest.raises(ConnectionClosedError):
        await wired.conn.wait_for_slot(0.1)


async def test_close_completes_requests_in_flight_and_calls_on_closed_once() -> None:
    handler = EsmeHandler()
    wired = await bound_esme(handler=handler)
    task = asyncio.create_task(wired.conn.request(submit(1)))
    await asyncio.sleep(0)
    wired.conn.close("test")
    wired.conn.close("again")
    wired.conn.abort("and abort")
    with pytest.raises(RequestFateUnknownError):
        await asyncio.wait_for(task, 1.0)
    await wired.conn.wait_closed()
    await asyncio.sleep(0)
    assert handler.closed == [(wired.conn, "test")]
    assert handler.calls.count("closed") == 1


async def test_request_on_unbound_session_raises_not_bound() -> None:
    wired = Wired(ESME, EsmeHandler())
    with pytest.raises(NotBoundError):
        await wired.conn.request(submit(1), slot_timeout=0.1)
    with pytest.raises(NotBoundError):
        await wired.conn.wait_for_slot(0.1)
    wired.conn.close()


async def test_send_request_on_unbound_session_raises_not_bound() -> None:
    wired = Wired(ESME, EsmeHandler())
    try:
        with pytest.raises(NotBoundError):
            wired.conn.send_request(submit(1), lambda r, e: None)
    finally:
        wired.conn.close()


async def test_no_free_slot_once_closing() -> None:
    wired = await bound_esme()
    wired.conn.abort("test")
    try:
        assert not wired.conn.has_free_slot
    finally:
        await wired.conn.wait_closed()


async def test_bind_after_connection_lost_raises_net_error() -> None:
    wired = Wired(ESME, EsmeHandler())
    wired.conn.connection_lost(None)  # the server closed right after accept (e.g. over max_connections)
    with pytest.raises(NetError):
        await wired.conn.bind(BindTransmitter(system_id="esme", password="pw"), timeout=0.5)


async def test_bind_timeout_raises_bind_error() -> None:
    wired = Wired(ESME, EsmeHandler())
    try:
        with pytest.raises(BindError):
            await wired.conn.bind(BindTransmitter(system_id="esme", password="pw"), timeout=0.05)
    finally:
        wired.conn.close()


async def test_bind_rejected_raises_bind_error_with_status() -> None:
    wired = Wired(ESME, EsmeHandler())
    task = asyncio.create_task(wired.conn.bind(BindTransmitter(system_id="esme", password="bad"), timeout=1.0))
    await asyncio.sleep(0)
    wired.to_peer()
    wired.peer.reject_bind(CommandStatus.ESME_RINVPASWD)
    wired.to_conn()
    with pytest.raises(BindError) as info:
        await task
    assert info.value.status == CommandStatus.ESME_RINVPASWD
    assert not wired.conn.is_bound
    wired.conn.close()


async def test_bind_interrupted_by_disconnect_raises_bind_error() -> None:
    wired = Wired(ESME, EsmeHandler())
    task = asyncio.create_task(wired.conn.bind(BindTransmitter(system_id="esme", password="pw"), timeout=1.0))
    await asyncio.sleep(0)
    wired.conn.connection_lost(None)
    with pytest.raises(BindError):
        await task


async def test_a_raising_callback_does_not_lose_other_responses(loop_errors: list[dict[str, Any]]) -> None:
    wired = await bound_esme()
    done: list[Pdu | None] = []

    def bad(response: Pdu | None, error: BaseException | None) -> None:
        raise RuntimeError("application bug")

    wired.conn.send_request(submit(1), bad)
    wired.conn.send_request(submit(2), lambda r, e: done.append(r))
    await asyncio.sleep(0)
    wired.answer_all()  # both responses in one data_received
    assert len(done) == 1, "the second callback must still run"
    assert len(loop_errors) == 1, "the first callback's error is reported to the loop's exception handler"
    loop_errors.clear()


# ---------------------------------------------------------------------------------------------------- handler (SMSC)


async def test_handler_callbacks_in_smsc_role() -> None:
    wired, handler = await bound_smsc()
    assert handler.calls == ["bind_request", "bound"]
    assert handler.bind_pdus[0].system_id == "esme"
    assert handler.bound == [wired.conn] and wired.conn.bound.is_set()
    wired.peer.send_request(submit(1), wired.loop.time())
    wired.to_conn()
    assert handler.calls[-1] == "request" and isinstance(handler.requests[-1], SubmitSm)
    events = wired.to_peer()
    assert [type(e.response) for e in events if hasattr(e, "response")] == [SubmitSmResp]
    wired.peer.unbind(wired.loop.time())
    wired.to_conn()
    assert any(isinstance(e, Unbound) for e in wired.to_peer()), "unbind_resp flushed before closing"
    await wired.conn.wait_closed()
    await asyncio.sleep(0)
    wired.conn.close("late")
    assert handler.closed == [(wired.conn, "unbound by peer")]
    assert handler.calls.count("closed") == 1


async def test_smsc_decides_bind_later() -> None:
    handler = AnsweringSmsc(decide=False)
    wired = Wired(SMSC, handler)
    wired.peer.bind(BindTransmitter(system_id="esme", password="pw"), wired.loop.time())
    wired.to_conn()
    assert handler.calls == ["bind_request"] and not wired.conn.is_bound
    await asyncio.sleep(0.01)
    wired.conn.accept_bind("smsc")
    assert wired.conn.is_bound and handler.calls == ["bind_request", "bound"]
    assert any(isinstance(e, Bound) for e in wired.to_peer())
    wired.conn.close()


async def test_smsc_rejects_bind_then_closes() -> None:
    handler = AnsweringSmsc(reject=CommandStatus.ESME_RINVPASWD)
    wired = Wired(SMSC, handler)
    wired.peer.bind(BindTransmitter(system_id="esme", password="bad"), wired.loop.time())
    wired.to_conn()
    (resp,) = pdus(wired.transport.take())
    assert resp.command_id == CommandId.BIND_TRANSMITTER_RESP and resp.status == CommandStatus.ESME_RINVPASWD
    assert wired.transport.closing
    await wired.conn.wait_closed()
    await asyncio.sleep(0)
    assert handler.calls == ["bind_request", "closed"]
    assert handler.closed[0][1] == "bind rejected: 0x0E"


async def test_unbind_is_orderly_and_bounded() -> None:
    wired = await bound_esme()
    task = asyncio.create_task(wired.conn.unbind(timeout=1.0))
    await asyncio.sleep(0)
    (event,) = wired.to_peer()
    assert isinstance(event, RequestReceived) is False  # unbind is handled by the peer session itself
    assert isinstance(event, Unbound) and event.by_peer
    wired.to_conn()
    await asyncio.wait_for(task, 1.0)
    assert wired.conn.closed_reason == "unbound"
    # a peer that never answers: unbind returns after its timeout
    mute = await bound_esme()
    start = mute.loop.time()
    await asyncio.wait_for(mute.conn.unbind(timeout=0.05), 1.0)
    assert mute.loop.time() - start < 0.5 and mute.transport.closing
    assert isinstance(pdus(mute.transport.take())[-1], Unbind)
