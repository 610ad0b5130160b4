"""The SMPP session: one sans-IO state machine for both roles (ESME and SMSC).

Bytes go in through ``receive_data(data, now)`` and come back as events; PDUs to send are queued and drained with
``data_to_send()`` (one write per loop iteration in the adapter). Time is an argument: the adapter keeps one timer per
connection armed at ``get_timer()`` and calls ``handle_timer(now)`` when it fires.

What the session does by itself (the application never sees these as requests):
- answers enquire_link, and unbind (then the session is over);
- answers a request that is not allowed in the current state with its response and ESME_RINVBNDSTS (a bind while
  bound: ESME_RALYBND), a malformed request with its response and the decoder's status, an unknown command with
  generic_nack ESME_RINVCMDID;
- sends enquire_link when nothing was received for ``enquire_link_interval`` and asks to close if it goes
  unanswered (dead link), or when not bound within ``session_init_timeout``, or after ``inactivity_timeout``;
- expires requests whose response did not arrive within ``response_timeout``: their fate is unknown.

Which PDUs may flow in which state is one table per sender role (SMPP 3.4 section 2.3, table 2-1); anything not in
the table is refused (fail closed).
"""

from __future__ import annotations

import enum
from typing import Any, Final

import msgspec

from .codec import decode, encode
from .constants import DEFAULT_MAX_PDU_SIZE, CommandId, CommandStatus
from .errors import FramingError, LocalProtocolError, PduDecodeError
from .framing import Framer
from .pdu import (
    BIND_TYPES,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    EnquireLink,
    EnquireLinkResp,
    Pdu,
    Unbind,
    UnbindResp,
    _Bind,
    _BindResp,
    is_response,
    response_type_for,
)
from .sequence import SequenceAllocator
from .window import Window, WindowEntry


class Role(enum.Enum):
    ESME = "esme"  # we bind to an SMSC (operator connectors, the load tool)
    SMSC = "smsc"  # ESMEs bind to us (upstream server, the simulator)


class State(enum.Enum):
    OPEN = "open"  # connected, not bound
    BINDING = "binding"  # ESME: bind sent, no response yet; SMSC: bind received, the application decides
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"  # we sent unbind; only responses are processed
    CLOSED = "closed"  # nothing more may be sent or received; the adapter closes the transport

    @property
    def is_bound(self) -> bool:
        return self in _BOUND_STATES


_BOUND_STATES: Final = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_UNBINDABLE_STATES: Final = _BOUND_STATES | {State.UNBINDING}

_C = CommandId
_ESME_SUBMITS: Final = frozenset(
    {_C.SUBMIT_SM, _C.SUBMIT_MULTI, _C.DATA_SM, _C.QUERY_SM, _C.CANCEL_SM, _C.REPLACE_SM, _C.ENQUIRE_LINK, _C.UNBIND}
)
_SMSC_DELIVERS: Final = frozenset({_C.DELIVER_SM, _C.DATA_SM, _C.ALERT_NOTIFICATION, _C.ENQUIRE_LINK, _C.UNBIND})
_LINK_ONLY: Final = frozenset({_C.ENQUIRE_LINK, _C.UNBIND})

MAY_SEND: Final[dict[Role, dict[State, frozenset[CommandId]]]] = {
    Role.ESME: {
        State.OPEN: frozenset({_C.BIND_TRANSMITTER, _C.BIND_RECEIVER, _C.BIND_TRANSCEIVER, _C.ENQUIRE_LINK}),
        State.BOUND_TX: _ESME_SUBMITS,
        State.BOUND_RX: _LINK_ONLY,
        State.BOUND_TRX: _ESME_SUBMITS,
    },
    Role.SMSC: {
        State.OPEN: frozenset({_C.OUTBIND, _C.ENQUIRE_LINK}),
        State.BOUND_TX: _LINK_ONLY,
        State.BOUND_RX: _SMSC_DELIVERS,
        State.BOUND_TRX: _SMSC_DELIVERS,
    },
}
"""Requests each role may send in each state; a state or command missing here is refused. The peer's allowed
incoming requests are the other role's row."""

_BIND_STATE: Final[dict[type[Pdu], State]] = {
    BindTransmitter: State.BOUND_TX,
    BindReceiver: State.BOUND_RX,
    BindTransceiver: State.BOUND_TRX,
}
_BIND_RESPONSE: Final[dict[type[Pdu], type[_BindResp]]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
}
_BIND_RESP_STATE: Final[dict[int, State]] = {
    _C.BIND_TRANSMITTER_RESP: State.BOUND_TX,
    _C.BIND_RECEIVER_RESP: State.BOUND_RX,
    _C.BIND_TRANSCEIVER_RESP: State.BOUND_TRX,
}
_OTHER_ROLE: Final = {Role.ESME: Role.SMSC, Role.SMSC: Role.ESME}


class SessionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Timers in seconds; ``None`` disables one. Defaults suit an operator link."""

    role: Role
    window_size: int = 100
    response_timeout: float = 30.0
    enquire_link_interval: float | None = 30.0
    session_init_timeout: float | None = 30.0
    inactivity_timeout: float | None = None
    max_pdu_size: int = DEFAULT_MAX_PDU_SIZE


# ---------------------------------------------------------------------------------------------------- events


class Event(msgspec.Struct, frozen=True):
    """Base of everything ``receive_data`` / ``handle_timer`` / ``connection_lost`` report."""


class RequestReceived(Event, frozen=True):
    """A request of the peer for the application (submit_sm, deliver_sm, query_sm, outbind, ...).

    Answer it with ``send_response`` (outbind and alert_notification take no answer)."""

    pdu: Pdu


class BindRequested(Event, frozen=True):
    """SMSC role: the peer asks to bind; call ``accept_bind`` or ``reject_bind``."""

    pdu: _Bind


class Bound(Event, frozen=True):
    """The session is bound (``state`` is BOUND_TX/RX/TRX); ``system_id`` is the peer's."""

    state: State
    system_id: str


class BindRejected(Event, frozen=True):
    """ESME role: the SMSC refused our bind (or did not answer in time: status ESME_RUNKNOWNERR)."""

    status: int


class ResponseReceived(Event, frozen=True):
    """The response (or generic_nack) to one of our requests, with the context given at ``send_request``."""

    response: Pdu
    context: Any
    response_time: float


class RequestFateUnknown(Event, frozen=True):
    """One of our requests got no usable response (``reason``: timeout, disconnect, undecodable response).

    The peer may or may not have acted on it: never resend blindly."""

    sequence: int
    command_id: int
    context: Any
    reason: str


class UnexpectedResponse(Event, frozen=True):
    """A response whose sequence matches nothing in flight (late after expiry, or bogus)."""

    pdu: Pdu


class ProtocolViolation(Event, frozen=True):
    """The peer broke the protocol and the session answered it (error status or generic_nack); still open."""

    description: str
    status: int


class Unbound(Event, frozen=True):
    """The session ended by unbind (``by_peer`` tells who asked). Send the remaining data, then close."""

    by_peer: bool


class CloseRequested(Event, frozen=True):
    """The session cannot go on (framing error, dead link, timeouts): send the remaining data, then close."""

    reason: str


# ---------------------------------------------------------------------------------------------------- session


class _Control(msgspec.Struct, frozen=True, gc=False):
    """What the session itself is waiting for a response to (bind, unbind, keepalive)."""

    command_id: int


class Session:
    """One SMPP session over one connection. Not thread-safe: owned by one connection adapter."""

    def __init__(
        self, config: SessionConfig, now: float, *, counts: dict[tuple[str, str, int, int], int] | None = None
    ):
        """``counts``, if given, is incremented for every PDU sent and received, keyed by (role, "in"/"out",
        command_id, command_status): process-wide counters that metrics read at scrape time."""
        self.config = config
        self._counts = counts
        self._role_name = config.role.value
        self.role = config.role
        self.state = State.OPEN
        self.peer_system_id = ""
        self._may_send = MAY_SEND[config.role]
        self._peer_may_send = MAY_SEND[_OTHER_ROLE[config.role]]
        self._framer = Framer(config.max_pdu_size)
        self._outbound: list[bytes] = []
        self._window: Window[tuple[int, Any]] = Window(config.window_size)
        self._control: Window[_Control] = Window(4)
        self._sequences = SequenceAllocator()
        self._in_flight = self._is_in_flight
        self._opened_at = now
        self._last_received = now
        self._pending_bind: _Bind | None = None

    # ------------------------------------------------------------------ queries

    @property
    def window(self) -> Window[tuple[int, Any]]:
        """The application's requests in flight (read-only use: sizes and counts)."""
        return self._window

    @property
    def closed(self) -> bool:
        """True once the session is over (unbound or failed); the adapter closes the transport."""
        return self.state is State.CLOSED

    @property
    def can_send_request(self) -> bool:
        """True when bound and the window has a free slot."""
        return self.state in _BOUND_STATES and not self._window.is_full

    def may_send(self, command_id: int) -> bool:
        """Whether a request with ``command_id`` is allowed in the current state."""
        allowed = self._may_send.get(self.state)
        return allowed is not None and command_id in allowed

    def _is_in_flight(self, sequence: int) -> bool:
        return sequence in self._window or sequence in self._control

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call, as one buffer (empty if nothing)."""
        if not self._outbound:
            return b""
        data = b"".join(self._outbound) if len(self._outbound) > 1 else self._outbound[0]
        self._outbound.clear()
        return data

    def send_request(self, pdu: Pdu, now: float, context: Any = None, timeout: float | None = None) -> int:
        """Queue a request, give it the next sequence_number and track its response; returns the sequence_number.

        Raises ``LocalProtocolError`` if the state does not allow it (status ESME_RINVBNDSTS) and ``WindowFullError``
        when the window is full (wait for a slot first: ``can_send_request``)."""
        command_id = pdu.command_id
        if not self.may_send(command_id) or command_id in _SESSION_OWNED:
            raise LocalProtocolError(
                f"{command_id.name} may not be sent in state {self.state.name} as {self.role.name}",
                CommandStatus.ESME_RINVBNDSTS,
            )
        sequence = self._sequences.next(self._in_flight)
        data = encode(pdu, sequence)
        if command_id not in _NO_RESPONSE:
            self._window.offer(sequence, (command_id, context), now, timeout or self.config.response_timeout)
        self._outbound.append(data)
        if self._counts is not None:
            self._count("out", command_id, pdu.status)
        return sequence

    def send_response(self, pdu: Pdu) -> None:
        """Queue a response to one of the peer's requests (its sequence must be the request's)."""
        if not is_response(pdu):
            raise LocalProtocolError(f"{pdu.command_id.name} is not a response")
        if self.state is State.CLOSED:
            raise LocalProtocolError("session is closed", CommandStatus.ESME_RINVBNDSTS)
        self._send(pdu)

    def bind(self, pdu: _Bind, now: float) -> None:
        """ESME role: send a bind request (state OPEN → BINDING)."""
        if self.role is not Role.ESME or self.state is not State.OPEN:
            raise LocalProtocolError(f"cannot bind as {self.role.name} in {self.state.name}")
        self._send_control(pdu, now)
        self.state = State.BINDING

    def accept_bind(self, system_id: str) -> Bound:
        """SMSC role: answer the pending bind with success; ``system_id`` is ours (the SMSC's)."""
        request = self._take_pending_bind()
        state = _BIND_STATE[type(request)]
        self._send(_BIND_RESPONSE[type(request)](sequence=request.sequence, system_id=system_id))
        self.state = state
        self.peer_system_id = request.system_id
        return Bound(state=state, system_id=request.system_id)

    def reject_bind(self, status: int) -> None:
        """SMSC role: answer the pending bind with an error status; the session returns to OPEN."""
        request = self._take_pending_bind()
        self._send(_BIND_RESPONSE[type(request)](sequence=request.sequence, status=status))
        self.state = State.OPEN

    def unbind(self, now: float) -> None:
        """Start an orderly end: send unbind and process only responses until unbind_resp (state UNBINDING)."""
        if self.state not in _BOUND_STATES:
            raise LocalProtocolError(f"cannot unbind in {self.state.name}", CommandStatus.ESME_RINVBNDSTS)
        self._send_control(Unbind(), now)
        self.state = State.UNBINDING

    def _send(self, pdu: Pdu, sequence: int | None = None) -> None:
        self._outbound.append(encode(pdu, sequence))
        if self._counts is not None:
            self._count("out", pdu.command_id, pdu.status)

    def _count(self, direction: str, command_id: int, status: int) -> None:
        assert self._counts is not None
        key = (self._role_name, direction, command_id, status)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _send_control(self, pdu: Pdu, now: float) -> None:
        sequence = self._sequences.next(self._in_flight)
        self._control.offer(sequence, _Control(pdu.command_id), now, self.config.response_timeout)
        self._send(pdu, sequence)

    def _take_pending_bind(self) -> _Bind:
        request = self._pending_bind
        if self.role is not Role.SMSC or self.state is not State.BINDING or request is None:
            raise LocalProtocolError("no bind request is pending")
        self._pending_bind = None
        return request

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; returns the events they caused, in order."""
        if self.state is State.CLOSED:
            return []
        try:
            frames = self._framer.feed(data)
        except FramingError as exc:
            self.state = State.CLOSED
            return [CloseRequested(reason=f"framing error: {exc}")]
        if not frames:
            return []
        self._last_received = now
        events: list[Event] = []
        for frame in frames:
            try:
                pdu = decode(frame)
            except PduDecodeError as exc:
                self._on_undecodable(exc, events)
                continue
            if self._counts is not None:
                self._count("in", pdu.command_id, pdu.status)
            if is_response(pdu):
                self._on_response(pdu, now, events)
            else:
                self._on_request(pdu, events)
            if self.closed:  # unbind or a fatal error: the rest of the batch is not processed
                break
        return events

    def _on_request(self, pdu: Pdu, events: list[Event]) -> None:
        command_id = pdu.command_id
        if command_id is _C.ENQUIRE_LINK:
            self._send(EnquireLinkResp(sequence=pdu.sequence))
            return
        if command_id is _C.UNBIND and self.state in _UNBINDABLE_STATES:
            self._send(UnbindResp(sequence=pdu.sequence))
            self.state = State.CLOSED
            events.append(Unbound(by_peer=True))
            return
        if isinstance(pdu, BIND_TYPES):
            if self.role is Role.SMSC and self.state is State.OPEN:
                self._pending_bind = pdu
                self.state = State.BINDING
                events.append(BindRequested(pdu=pdu))
            else:
                self._refuse(pdu, events)
            return
        allowed = self._peer_may_send.get(self.state)
        if allowed is not None and command_id in allowed:
            events.append(RequestReceived(pdu=pdu))
        else:
            self._refuse(pdu, events)

    def _refuse(self, pdu: Pdu, events: list[Event]) -> None:
        already_bound = isinstance(pdu, BIND_TYPES) and self.state in _BOUND_STATES
        status = CommandStatus.ESME_RALYBND if already_bound else CommandStatus.ESME_RINVBNDSTS
        description = f"{pdu.command_id.name} not allowed in {self.state.name}"
        if pdu.command_id not in _NO_RESPONSE:
            self._send(response_type_for(pdu.command_id)(sequence=pdu.sequence, status=status))
        events.append(ProtocolViolation(description=description, status=status))

    def _on_undecodable(self, exc: PduDecodeError, events: list[Event]) -> None:
        command_id = exc.command_id
        if command_id & 0x8000_0000:
            entry = self._window.complete(exc.sequence, self._last_received)
            if entry is not None:
                events.append(RequestFateUnknown(exc.sequence, entry.request[0], entry.request[1], "undecodable"))
            events.append(ProtocolViolation(description=str(exc), status=exc.status))
            return
        if command_id not in _NO_RESPONSE:
            reply = response_type_for(command_id)
            self._send(reply(sequence=exc.sequence, status=exc.status))
        events.append(ProtocolViolation(description=str(exc), status=exc.status))

    def _on_response(self, pdu: Pdu, now: float, events: list[Event]) -> None:
        entry = self._window.complete(pdu.sequence, now)
        if entry is not None:
            command_id, context = entry.request
            if pdu.command_id is _C.GENERIC_NACK or pdu.command_id == command_id | 0x8000_0000:
                events.append(ResponseReceived(pdu, context, entry.response_time or 0.0))
            else:
                events.append(RequestFateUnknown(pdu.sequence, command_id, context, "mismatched response"))
                events.append(ProtocolViolation(f"{pdu.command_id.name} answers {command_id:#x}", pdu.status))
            return
        control = self._control.complete(pdu.sequence, now)
        if control is None:
            events.append(UnexpectedResponse(pdu))
        else:
            self._on_control_response(control, pdu, events)

    def _on_control_response(self, entry: WindowEntry[_Control], pdu: Pdu, events: list[Event]) -> None:
        command_id = entry.request.command_id
        if command_id in _BIND_COMMANDS:
            self._on_bind_response(pdu, events)
        elif command_id is _C.UNBIND:
            self.state = State.CLOSED
            events.append(Unbound(by_peer=False))
        # enquire_link_resp: receiving it already refreshed the liveness clock

    def _on_bind_response(self, pdu: Pdu, events: list[Event]) -> None:
        state = _BIND_RESP_STATE.get(pdu.command_id)
        if pdu.status == CommandStatus.ESME_ROK and state is not None and isinstance(pdu, _BindResp):
            self.state = state
            self.peer_system_id = pdu.system_id
            events.append(Bound(state=state, system_id=pdu.system_id))
        else:
            self.state = State.OPEN
            events.append(BindRejected(status=pdu.status or CommandStatus.ESME_RBINDFAIL))

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        """The earliest instant at which ``handle_timer`` has work, or None."""
        if self.state is State.CLOSED:
            return None
        config = self.config
        candidates = [self._window.next_deadline(), self._control.next_deadline()]
        if self.state in _BOUND_STATES:
            if config.enquire_link_interval is not None and not self._control:
                candidates.append(self._last_received + config.enquire_link_interval)
        elif config.session_init_timeout is not None and self.state in (State.OPEN, State.BINDING):
            candidates.append(self._opened_at + config.session_init_timeout)
        if config.inactivity_timeout is not None:
            candidates.append(self._last_received + config.inactivity_timeout)
        return min((c for c in candidates if c is not None), default=None)

    def handle_timer(self, now: float) -> list[Event]:
        """Run whatever is due at ``now``: expiries, keepalive, session timers."""
        if self.state is State.CLOSED:
            return []
        events: list[Event] = [
            RequestFateUnknown(entry.sequence, entry.request[0], entry.request[1], "timeout")
            for entry in self._window.expire(now)
        ]
        for entry in self._control.expire(now):
            self._on_control_timeout(entry.request.command_id, events)
        if not self.closed:
            self._check_session_timers(now, events)
        return events

    def _on_control_timeout(self, command_id: int, events: list[Event]) -> None:
        if command_id in _BIND_COMMANDS:
            events.append(BindRejected(status=CommandStatus.ESME_RUNKNOWNERR))
        self._close(f"no response to {CommandId(command_id).name}", events)

    def _check_session_timers(self, now: float, events: list[Event]) -> None:
        config = self.config
        idle = now - self._last_received
        if config.inactivity_timeout is not None and idle >= config.inactivity_timeout:
            self._close(f"inactive for {idle:.1f} s", events)
        elif self.state in _BOUND_STATES:
            interval = config.enquire_link_interval
            if interval is not None and idle >= interval and not self._control:
                self._send_control(EnquireLink(), now)
        elif (
            self.state in (State.OPEN, State.BINDING)
            and config.session_init_timeout is not None
            and now - self._opened_at >= config.session_init_timeout
        ):
            self._close("not bound within session_init_timeout", events)

    def _close(self, reason: str, events: list[Event]) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            events.append(CloseRequested(reason=reason))

    def connection_lost(self) -> list[Event]:
        """The transport is gone: every request in flight has an unknown fate."""
        self.state = State.CLOSED
        self._control.drain()
        return [
            RequestFateUnknown(entry.sequence, entry.request[0], entry.request[1], "disconnect")
            for entry in self._window.drain()
        ]


_BIND_COMMANDS: Final = frozenset({_C.BIND_TRANSMITTER, _C.BIND_RECEIVER, _C.BIND_TRANSCEIVER})
_SESSION_OWNED: Final = _BIND_COMMANDS | {_C.UNBIND}
"""Requests only the session sends (through ``bind`` / ``unbind``), so their responses drive its state."""
_NO_RESPONSE: Final = frozenset({_C.OUTBIND, _C.ALERT_NOTIFICATION, _C.GENERIC_NACK})
