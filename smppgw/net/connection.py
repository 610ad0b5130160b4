"""The asyncio adapter: ``asyncio.Protocol`` ⇄ sans-IO ``Session``.

One connection owns one session, one timer (armed at the session's earliest deadline, moved only earlier; a timer
that fires early just re-arms) and one outbound buffer: everything the session queues during one loop iteration
goes out in one ``transport.write``. Requests complete through a future (``request``) or a callback
(``send_request``); a response that never comes, or a disconnect, completes them with ``RequestFateUnknownError``.

Backpressure: when the transport's write buffer passes its high-water mark we stop reading (a fast peer cannot make
us buffer unbounded responses) and new requests wait until it drains.

Errors: everything this layer raises is an ``smppgw.net.errors.NetError``; OS and asyncio errors are translated here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any, Protocol, cast

from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.pdu import Pdu, _Bind
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
    Session,
    SessionConfig,
    State,
    Unbound,
    UnexpectedResponse,
)
from smppgw.smpp.window import WindowFullError

from .errors import (
    BindError,
    ConnectionClosedError,
    NotBoundError,
    RequestFateUnknownError,
    SlotUnavailableError,
    WindowTimeoutError,
)

ResponseCallback = Callable[[Pdu | None, BaseException | None], None]
"""Called exactly once with (response, None) or (None, error)."""

PDU_COUNTS: dict[tuple[str, str, int, int], int] = {}
"""PDUs sent and received by every session of this process: (role, "in"/"out", command_id, command_status) → count.
Incremented by the sessions (one dict update per PDU), read by metrics at scrape time."""

DEFAULT_WRITE_HIGH_WATER = 256 * 1024
DEFAULT_WRITE_LOW_WATER = 64 * 1024


class ConnectionHandler(Protocol):
    """What the application provides to a connection. Every method is called from the event loop, never blocks."""

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        """SMSC role: decide now or later with ``conn.accept_bind`` / ``conn.reject_bind``."""

    def on_bound(self, conn: SmppConnection) -> None:
        """The session is bound (either role)."""

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        """A request of the peer; answer now or later with ``conn.send_response``."""

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        """The connection is gone (after every request in flight has been completed with an error)."""


# Handler methods and response callbacks must not raise; if one does, the error goes to the loop's exception handler
# and the connection carries on with the rest of the batch.


class ConnectionStats:
    """Counters of one connection, read by metrics at scrape time (no per-PDU metric calls)."""

    __slots__ = ("bytes_in", "bytes_out", "protocol_violations", "unexpected_responses", "writes")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.writes = 0
        self.protocol_violations = 0
        self.unexpected_responses = 0


class SmppConnection(asyncio.Protocol):
    """One SMPP connection in either role. Create it through ``SmppServer`` or ``connect``."""

    def __init__(
        self,
        config: SessionConfig,
        handler: ConnectionHandler,
        *,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        write_low_water: int = DEFAULT_WRITE_LOW_WATER,
        counts: dict[tuple[str, str, int, int], int] | None = PDU_COUNTS,
    ) -> None:
        self.config = config
        self.handler = handler
        self.stats = ConnectionStats()
        self._counts = counts
        self.peer: str = "?"
        self.bound = asyncio.Event()
        self.closed_reason: str | None = None
        self._loop = asyncio.get_running_loop()
        self._time = self._loop.time
        self._session: Session | None = None
        self._transport: asyncio.Transport | None = None
        self._write_limits = (write_high_water, write_low_water)
        self._write_paused = False
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.slot_listener: Callable[[SmppConnection], None] | None = None
        """Called whenever a window slot may have become free (a link waiting on several connections sets it)."""
        self._bind_waiter: asyncio.Future[None] | None = None
        self._closed_waiter: asyncio.Future[None] = self._loop.create_future()
        self._on_event: dict[type[Event], Callable[[Any], None]] = {
            ResponseReceived: self._on_response,
            RequestFateUnknown: self._on_fate_unknown,
            RequestReceived: self._on_request,
            BindRequested: self._on_bind_requested,
            Bound: self._on_bound,
            BindRejected: self._on_bind_rejected,
            ProtocolViolation: self._on_violation,
            UnexpectedResponse: self._on_unexpected,
            Unbound: self._on_session_end,
            CloseRequested: self._on_session_end,
        }

    # ------------------------------------------------------------------ state

    @property
    def session(self) -> Session:
        if self._session is None:
            raise ConnectionClosedError("not connected")
        return self._session

    @property
    def is_bound(self) -> bool:
        return self._session is not None and self._session.state.is_bound

    @property
    def is_closed(self) -> bool:
        return self.closed_reason is not None

    @property
    def in_flight(self) -> int:
        return 0 if self._session is None else len(self._session.window)

    @property
    def has_free_slot(self) -> bool:
        return (
            self._session is not None
            and self._session.can_send_request
            and not self._write_paused
            and self.closed_reason is None
        )

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's TCP transports do not subclass asyncio.Transport
        self._transport = transport
        transport.set_write_buffer_limits(*self._write_limits)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._session = Session(self.config, self._time(), counts=self._counts)
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        session = self._session
        if session is None:
            return
        self.stats.bytes_in += len(data)
        events = session.receive_data(data, self._time())
        if events:
            self._dispatch(events)
        self._flush()
        if not session.closed:
            self._arm_timer()

    def _dispatch(self, events: list[Event]) -> None:
        dispatch = self._on_event
        for event in events:
            try:
                dispatch[type(event)](event)
            except Exception as exc:  # an application callback failed: report it, keep serving the batch
                self._loop.call_exception_handler(
                    {"message": f"SMPP event handler failed on {type(event).__name__}", "exception": exc}
                )

    def eof_received(self) -> bool:
        return False  # half-closed by the peer: close our side too

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        self._wake_slot_waiters(every=True)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.closed_reason or (f"connection lost: {exc}" if exc else "connection closed by peer")
        self.closed_reason = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._session is not None:
            self._dispatch(self._session.connection_lost())
        error = ConnectionClosedError(reason)
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self._bind_waiter is not None and not self._bind_waiter.done():
            self._bind_waiter.set_exception(BindError(CommandStatus.ESME_RBINDFAIL, reason))
        if not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        self._notify_slot_listener()  # a link waiting for slots re-evaluates its connections
        try:
            self.handler.on_closed(self, reason)
        except Exception as error:
            self._loop.call_exception_handler({"message": "SMPP on_closed handler failed", "exception": error})

    # ------------------------------------------------------------------ sending

    def send_request(
        self, pdu: Pdu, on_done: ResponseCallback | asyncio.Future[Pdu], timeout: float | None = None
    ) -> int:
        """Queue a request now (a slot must be free: ``has_free_slot``); ``on_done`` gets the response or error."""
        if self.closed_reason is not None:
            raise ConnectionClosedError(self.closed_reason)
        now = self._time()
        try:
            sequence = self.session.send_request(pdu, now, on_done, timeout)
        except WindowFullError as exc:
            raise SlotUnavailableError(str(exc)) from exc
        except LocalProtocolError as exc:  # not allowed in this state (not bound, unbinding)
            raise NotBoundError(str(exc)) from exc
        self._schedule_flush()
        deadline = now + (timeout or self.config.response_timeout)
        if self._timer_at is None or deadline < self._timer_at:
            self._arm_timer()  # the new request's expiry may be the earliest deadline
        return sequence

    async def request(self, pdu: Pdu, *, slot_timeout: float | None = None, timeout: float | None = None) -> Pdu:
        """Send a request and return its response (any command_status). Waits up to ``slot_timeout`` for a window
        slot; raises ``RequestFateUnknownError`` if no response arrives within ``timeout`` or the link drops."""
        if not self.has_free_slot:
            await self.wait_for_slot(slot_timeout)
        future: asyncio.Future[Pdu] = self._loop.create_future()
        self.send_request(pdu, future, timeout)
        return await future

    async def wait_for_slot(self, timeout: float | None = None) -> None:
        """Wait until a request can be sent (bound, window slot free, transport writable)."""
        while not self.has_free_slot:
            if self.closed_reason is not None:
                raise ConnectionClosedError(self.closed_reason)
            if self._session is None or not self._session.state.is_bound:
                raise NotBoundError(f"session is {self._session.state.name if self._session else 'not connected'}")
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._slot_waiters.append(waiter)
            woken = False
            try:
                async with asyncio.timeout(timeout):
                    await waiter
                woken = True
            except TimeoutError:
                raise WindowTimeoutError(f"no window slot within {timeout} s") from None
            finally:
                if not woken:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_slot_waiters()  # woken, but leaving (cancelled): pass the wake-up on
                    else:
                        waiter.cancel()
                        _discard(self._slot_waiters, waiter)

    def send_response(self, pdu: Pdu) -> None:
        """Queue a response to one of the peer's requests; dropped silently if the connection is already gone."""
        session = self._session
        if session is None or self.closed_reason is not None or session.closed:
            return
        session.send_response(pdu)
        self._schedule_flush()

    async def bind(self, pdu: _Bind, timeout: float | None = None) -> None:
        """ESME role: bind and wait for the result (``BindError`` on rejection, timeout or disconnect)."""
        if self.closed_reason is not None:
            raise ConnectionClosedError(self.closed_reason)
        self._bind_waiter = self._loop.create_future()
        try:
            self.session.bind(pdu, self._time())
        except LocalProtocolError as exc:
            raise BindError(CommandStatus.ESME_RBINDFAIL, str(exc)) from exc
        self._flush()
        self._arm_timer()
        try:
            async with asyncio.timeout(timeout):
                await self._bind_waiter
        except TimeoutError:
            raise BindError(CommandStatus.ESME_RUNKNOWNERR, f"no bind response within {timeout} s") from None

    def accept_bind(self, system_id: str) -> None:
        """SMSC role: accept the pending bind."""
        if self._session is None or self.closed_reason is not None:
            return
        self._on_bound(self._session.accept_bind(system_id))
        self._flush()
        self._arm_timer()

    def reject_bind(self, status: int) -> None:
        """SMSC role: refuse the pending bind, then close (a refused ESME must not linger)."""
        if self._session is None or self.closed_reason is not None:
            return
        self._session.reject_bind(status)
        self._flush()
        self.close(f"bind rejected: 0x{status:02X}")

    async def unbind(self, timeout: float = 5.0) -> None:
        """Orderly end: unbind, wait for unbind_resp (bounded), close."""
        session = self._session
        if session is not None and session.state.is_bound and self.closed_reason is None:
            session.unbind(self._time())
            self._flush()
            self._arm_timer()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._closed_waiter)
            except TimeoutError:
                pass
        self.close("unbound")

    def close(self, reason: str = "closed") -> None:
        """Flush what is queued and close the transport; requests in flight get ``RequestFateUnknownError``."""
        if self.closed_reason is None:
            self.closed_reason = reason
        if self._transport is not None and not self._transport.is_closing():
            self._flush()
            self._transport.close()

    def abort(self, reason: str = "aborted") -> None:
        """Drop the connection at once, without flushing."""
        if self.closed_reason is None:
            self.closed_reason = reason
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_waiter)

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the connection is gone (immediately scheduled if it already is)."""
        self._closed_waiter.add_done_callback(lambda _: callback())

    # ------------------------------------------------------------------ internals

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        session = self._session
        transport = self._transport
        if session is None or transport is None:
            return
        data = session.data_to_send()
        if data and not transport.is_closing():
            transport.write(data)
            self.stats.bytes_out += len(data)
            self.stats.writes += 1

    def _arm_timer(self) -> None:
        session = self._session
        if session is None:
            return
        deadline = session.get_timer()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        session = self._session
        if session is None or self.closed_reason is not None:
            return
        self._dispatch(session.handle_timer(self._time()))
        self._flush()
        if not session.closed:
            self._arm_timer()

    def _wake_slot_waiters(self, *, every: bool = False) -> None:
        """Wake one waiter (or, after resume_writing, all: they re-check in their loop)."""
        waiters = self._slot_waiters
        while waiters and self.has_free_slot:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not every:
                    break
        self._notify_slot_listener()

    def _notify_slot_listener(self) -> None:
        listener = self.slot_listener
        if listener is not None:
            listener(self)

    # ------------------------------------------------------------------ session events

    def _on_response(self, event: ResponseReceived) -> None:
        try:
            _complete(event.context, event.response, None)
        finally:
            if self._slot_waiters:
                self._wake_slot_waiters()
            elif self.slot_listener is not None:
                self.slot_listener(self)

    def _on_fate_unknown(self, event: RequestFateUnknown) -> None:
        try:
            _complete(event.context, None, RequestFateUnknownError(event.reason, event.sequence, event.command_id))
        finally:
            if self._slot_waiters:
                self._wake_slot_waiters()
            elif self.slot_listener is not None:
                self.slot_listener(self)

    def _on_request(self, event: RequestReceived) -> None:
        self.handler.on_request(self, event.pdu)

    def _on_bind_requested(self, event: BindRequested) -> None:
        self.handler.on_bind_request(self, event.pdu)

    def _on_bound(self, event: Bound) -> None:
        self.bound.set()
        if self._bind_waiter is not None and not self._bind_waiter.done():
            self._bind_waiter.set_result(None)
        self.handler.on_bound(self)
        self._wake_slot_waiters()

    def _on_bind_rejected(self, event: BindRejected) -> None:
        if self._bind_waiter is not None and not self._bind_waiter.done():
            self._bind_waiter.set_exception(BindError(event.status))

    def _on_violation(self, event: ProtocolViolation) -> None:
        self.stats.protocol_violations += 1

    def _on_unexpected(self, event: UnexpectedResponse) -> None:
        self.stats.unexpected_responses += 1

    def _on_session_end(self, event: Unbound | CloseRequested) -> None:
        reason = (
            event.reason if isinstance(event, CloseRequested) else ("unbound by peer" if event.by_peer else "unbound")
        )
        self.close(reason)

    def __repr__(self) -> str:
        state = self._session.state.name if self._session else State.OPEN.name
        return f"<SmppConnection {self.config.role.name} {self.peer} {state} in_flight={self.in_flight}>"


def _discard(waiters: collections.deque[asyncio.Future[None]], waiter: asyncio.Future[None]) -> None:
    with contextlib.suppress(ValueError):  # already taken by a waker
        waiters.remove(waiter)


def _complete(context: Any, response: Pdu | None, error: BaseException | None) -> None:
    if isinstance(context, asyncio.Future):
        if not context.done():
            if error is None:
                context.set_result(response)
            else:
                context.set_exception(error)
    elif context is not None:
        context(response, error)
