"""The SMSC simulator: an ``SmppServer`` handler that accepts messages, answers them (or fails them on purpose) and
sends delivery receipts.

Cost model (target: 40k submit_sm/s with receipts on one core):

* one object per accepted message (``_Message``) and one per receipt attempt chain (``_Delivery``, also the
  deliver_sm_resp callback, so no closures);
* no per-message task or timer: delayed responses, receipts and retries go into one ``TimerWheel`` drained by one
  periodic timer every ``tick_ms`` while it holds anything;
* responses with zero latency are written in the loop iteration that read the request (one write per iteration, by
  the connection);
* receipt texts are built from a cached tail: the part after the id depends only on (state, err, submit minute, done
  minute), formatted once by ``smppgw.smpp.receipt.format_receipt_text``;
* counters are plain ints (``SimStats``); nothing is logged per PDU.

Receipts go to a bound receiver (rx or trx) of the submitting system_id, round robin over those with a free window
slot; while none is bound (or all are full) they wait in a bounded per-system_id queue. A deliver_sm answered with an
error, unanswered within ``receipts.response_timeout_s`` or lost to a disconnect is retried after
``receipts.retry_delay_ms`` up to ``receipts.max_attempts`` attempts. Dates in receipts and query_sm_resp are UTC.

Ownership: ``start`` opens the listening socket; ``close`` stops the timer, unbinds every session (bounded) and
counts receipts still pending as abandoned. Nothing here raises into the event loop on a peer's behaviour.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from smppgw.net.connection import SmppConnection
from smppgw.net.errors import NetError
from smppgw.net.server import SmppServer
from smppgw.smpp.constants import CommandStatus, EsmClass, MessageState, Tag
from smppgw.smpp.errors import SmppError
from smppgw.smpp.pdu import (
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DistributionList,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    UnsuccessSme,
    _Bind,
    response_type_for,
)
from smppgw.smpp.receipt import STATE_STATS, format_receipt_text
from smppgw.smpp.session import Role, SessionConfig, State
from smppgw.smpp.timefmt import format_absolute_time

from .config import SimConfig
from .handset import HandsetMessage, HandsetRecorder
from .ids import IdGenerator
from .stats import SimStats
from .wheel import TimerWheel, TokenBucket

_OK: Final = int(CommandStatus.ESME_ROK)
_THROTTLED: Final = int(CommandStatus.ESME_RTHROTTLED)
_MSGQFUL: Final = int(CommandStatus.ESME_RMSGQFUL)
_RECEIPT_ESM: Final = int(EsmClass.TYPE_SMSC_DELIVERY_RECEIPT)
_UDHI: Final = int(EsmClass.UDHI)
_SAR_TAGS: Final = frozenset({int(Tag.SAR_MSG_REF_NUM), int(Tag.SAR_TOTAL_SEGMENTS), int(Tag.SAR_SEGMENT_SEQNUM)})
_TAG_RECEIPTED_ID: Final = int(Tag.RECEIPTED_MESSAGE_ID)
_TAG_STATE: Final = int(Tag.MESSAGE_STATE)
_TAG_NETWORK_ERROR: Final = int(Tag.NETWORK_ERROR_CODE)
_NETWORK_GSM: Final = 3
"""network_error_code network type 3 = GSM (spec 5.3.2.31)."""
_INTERMEDIATE_REQUESTED: Final = 0x10
"""registered_delivery bit 4: intermediate notification requested."""
_MAX_ADDR: Final = 20
"""deliver_sm addresses are at most 20 characters; data_sm allows 64, so receipts for data_sm truncate."""
_TAIL_CACHE_LIMIT: Final = 4096
_DROP: Final = -1

_MODE_BY_STATE: Final = {State.BOUND_TX: "tx", State.BOUND_RX: "rx", State.BOUND_TRX: "trx"}


class _Outcome:
    """A receipt state with its precomputed TLVs."""

    __slots__ = ("delivered", "err", "stat", "state", "tlv_error", "tlv_state")

    def __init__(self, state: MessageState, err: int) -> None:
        self.state = state
        self.stat = STATE_STATS[state]
        self.err = err
        self.delivered = state is MessageState.DELIVERED
        self.tlv_state = (_TAG_STATE, bytes((int(state),)))
        self.tlv_error = (_TAG_NETWORK_ERROR, bytes((_NETWORK_GSM,)) + err.to_bytes(2, "big")) if err else None


class _Message:
    """One accepted message (one destination of it, for submit_multi)."""

    __slots__ = (
        "cancelled_at",
        "dest_addr",
        "dest_npi",
        "dest_ton",
        "done_at",
        "message_id",
        "outcome",
        "receipt_id",
        "route",
        "source_addr",
        "source_npi",
        "source_ton",
        "submitted_wall",
        "system_id",
    )

    def __init__(
        self,
        message_id: str,
        receipt_id: str,
        system_id: str,
        *,
        route: _Route,
        source: tuple[int, int, str],
        dest: tuple[int, int, str],
        submitted_wall: float,
        done_at: float,
        outcome: _Outcome,
    ) -> None:
        self.message_id = message_id
        self.receipt_id = receipt_id
        self.system_id = system_id
        self.route = route
        self.source_ton, self.source_npi, self.source_addr = source
        self.dest_ton, self.dest_npi, self.dest_addr = dest
        self.submitted_wall = submitted_wall
        self.done_at = done_at  # loop time of the final state
        self.outcome = outcome
        self.cancelled_at: float | None = None


class _Delivery:
    """One receipt (final or intermediate) until acknowledged or given up; it is its deliver_sm_resp callback."""

    __slots__ = ("attempts", "final", "message", "owner", "pdu", "route")

    def __init__(self, owner: Simulator, message: _Message, pdu: DeliverSm, final: bool) -> None:
        self.owner = owner
        self.message = message
        self.route = message.route
        self.pdu = pdu
        self.final = final
        self.attempts = 0

    def __call__(self, response: Pdu | None, error: BaseException | None) -> None:
        if error is None and response is not None and response.status == _OK:
            owner = self.owner
            owner.stats.receipts_acked += 1
            if self.route.outbox:
                owner._pump(self.route)
        else:
            self.owner._on_delivery_failed(self)


class _Route:
    """The receiver binds of one system_id and the receipts waiting for one of them."""

    __slots__ = ("conns", "next", "outbox")

    def __init__(self) -> None:
        self.conns: list[SmppConnection] = []
        self.next = 0
        self.outbox: deque[_Delivery] = deque()


class _Link:
    """A bound connection."""

    __slots__ = ("bucket", "receives", "requests", "route", "system_id", "timer")

    def __init__(self, system_id: str, receives: bool, route: _Route, bucket: TokenBucket | None) -> None:
        self.system_id = system_id
        self.receives = receives
        self.route = route
        self.bucket = bucket
        self.requests = 0
        self.timer: asyncio.TimerHandle | None = None


_Action = tuple[Callable[[Any], None], Any]
_RequestHandler = Callable[[SmppConnection, _Link, Any, float], None]


class Simulator:
    """An in-process SMSC. ``await start(host, port)`` (port 0 picks one: read ``port``), ``await close()``.

    ``stats`` are live counters; ``snapshot()`` adds gauges; ``handset`` holds reassembled texts when
    ``config.handset_record`` is on. ``rng`` (or ``config.seed``) makes outcomes and faults reproducible.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        rng: random.Random | None = None,
        on_handset_message: Callable[[HandsetMessage], None] | None = None,
    ) -> None:
        self.config = config = config or SimConfig()
        self.stats = SimStats()
        self._rng = rng or random.Random(config.seed)
        self._ids = IdGenerator(config.id_format, config.receipts.id_format, self._rng)
        self.handset: HandsetRecorder | None = (
            HandsetRecorder(limit=config.handset_limit, on_message=on_handset_message)
            if config.handset_record
            else None
        )
        self._server: SmppServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._time: Callable[[], float] = time.monotonic
        self._wall_offset = 0.0
        self._closing = False
        self._wheel: TimerWheel[_Action] = TimerWheel(config.tick_ms / 1000.0)
        self._tick_handle: asyncio.TimerHandle | None = None
        self._links: dict[SmppConnection, _Link] = {}
        self._routes: dict[str, _Route] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._known: dict[str, _Message] = {}
        self._known_order: deque[str] = deque()
        self._tail_cache: dict[tuple[MessageState, int, int, int], str] = {}
        self._next_expire = 0.0
        self._accounts = {account.system_id: account.password for account in config.accounts}
        self._prepare(config)
        self._handlers: dict[type[Pdu], _RequestHandler] = {
            SubmitSm: self._on_submit_sm,
            SubmitMulti: self._on_submit_multi,
            DataSm: self._on_data_sm,
            QuerySm: self._on_query_sm,
            CancelSm: self._on_cancel_sm,
            ReplaceSm: self._on_replace_sm,
        }

    def _prepare(self, config: SimConfig) -> None:
        """Precompute everything the hot path would otherwise look up."""
        receipts, faults = config.receipts, config.faults
        self._outcomes = {state: _Outcome(state, receipts.error_code(state)) for state in MessageState}
        self._outcome_by_pick = [self._outcomes[state] for state in receipts.mix.states]
        self._mix = receipts.mix
        self._receipt_delay = receipts.delay_ms.sampler(self._rng)
        self._enroute_delay = receipts.enroute_delay_ms.sampler(self._rng)
        self._response_delay = config.response.delay_ms.sampler(self._rng)
        self._sync_response = config.response.delay_ms.is_zero
        self._status_faults = faults.any_status_fault
        self._drop_cut = faults.drop_fraction
        self._msgqful_cut = self._drop_cut + faults.msgqful_fraction
        self._error_cut = self._msgqful_cut + faults.error_fraction
        self._disconnect_every = faults.disconnect_every_pdus
        self._retry_delay = receipts.retry_delay_ms / 1000.0
        self._known_limit = config.known_messages
        self._single_outcome = self._outcome_by_pick[0] if len(self._outcome_by_pick) == 1 else None
        self._before = receipts.before_response
        self._force = receipts.force
        self._no_final = receipts.no_final_fraction
        self._enroute = receipts.enroute

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: any free port)."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._time = loop.time
        self._wall_offset = time.time() - loop.time()
        config = self.config
        session = SessionConfig(
            role=Role.SMSC,
            window_size=config.window,
            response_timeout=config.receipts.response_timeout_s,
            enquire_link_interval=config.enquire_link_s,
            session_init_timeout=config.bind_timeout_s,
        )
        server = SmppServer(self, session, max_connections=config.max_connections, count_pdus=False)
        await server.start(host, port)
        self._server = server

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.port

    @property
    def started(self) -> bool:
        return self._server is not None

    async def close(self, unbind_timeout: float = 5.0) -> None:
        """Stop scheduling, unbind every session (each bounded by ``unbind_timeout``) and close. Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        for link in self._links.values():
            if link.timer is not None:
                link.timer.cancel()
        pending = self._wheel.drain()
        self.stats.receipts_abandoned += sum(1 for fn, _ in pending if fn != self._respond_later)
        for route in self._routes.values():
            self.stats.receipts_abandoned += len(route.outbox)
            route.outbox.clear()
        if self._server is not None:
            await self._server.close(unbind_timeout)

    def snapshot(self) -> dict[str, Any]:
        """Counters plus live gauges, JSON-able."""
        data = self.stats.as_dict()
        conns = list(self._server.connections) if self._server is not None else []
        data["bytes_in"] += sum(conn.stats.bytes_in for conn in conns)
        data["bytes_out"] += sum(conn.stats.bytes_out for conn in conns)
        data["port"] = self._server.port if self._server is not None and not self._closing else None
        data["connected"] = len(conns)
        data["bound"] = len(self._links)
        data["receipts_queued"] = sum(len(route.outbox) for route in self._routes.values())
        data["receipts_in_flight"] = sum(conn.in_flight for conn in self._links)
        data["scheduled"] = len(self._wheel)
        data["receipts_pending"] = data["receipts_queued"] + data["receipts_in_flight"] + data["scheduled"]
        data["known_messages"] = len(self._known)
        if self.handset is not None:
            data["handset_messages"] = self.handset.total
        return data

    # ------------------------------------------------------------------ ConnectionHandler

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        if self._accounts:
            password = self._accounts.get(pdu.system_id)
            status = None
            if password is None:
                status = CommandStatus.ESME_RINVSYSID
            elif password != pdu.password:
                status = CommandStatus.ESME_RINVPASWD
            if status is not None:
                self.stats.bind_rejected += 1
                conn.reject_bind(status)
                return
        conn.accept_bind(self.config.system_id)

    def on_bound(self, conn: SmppConnection) -> None:
        session = conn.session
        mode = _MODE_BY_STATE[session.state]
        system_id = session.peer_system_id
        route = self._routes.get(system_id)
        if route is None:
            route = self._routes[system_id] = _Route()
        link = _Link(system_id, mode != "tx", route, self._bucket(system_id))
        self._links[conn] = link
        self.stats.binds[mode] += 1
        seconds = self.config.faults.disconnect_every_seconds
        if seconds and self._loop is not None:
            link.timer = self._loop.call_later(seconds, self._force_close, conn, f"fault: disconnect after {seconds} s")
        if link.receives:
            route.conns.append(conn)
            if route.outbox:
                self._pump(route)
                self._ensure_ticking()

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        link = self._links.get(conn)
        if link is None:  # the session only passes requests of bound sessions; be safe anyway
            status = CommandStatus.ESME_RINVBNDSTS
            self._respond(conn, response_type_for(pdu.command_id)(sequence=pdu.sequence, status=status))
            return
        self.stats.requests += 1
        now = self._time()
        bucket = link.bucket
        if bucket is not None and not bucket.take(now):
            self.stats.throttled += 1
            self._respond(conn, response_type_for(pdu.command_id)(sequence=pdu.sequence, status=_THROTTLED))
        else:
            self._handlers.get(type(pdu), self._on_unsupported)(conn, link, pdu, now)
        link.requests += 1
        if link.requests == self._disconnect_every:
            self._force_close(conn, f"fault: disconnect after {link.requests} requests")

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        stats = self.stats
        stats.disconnects += 1
        stats.bytes_in += conn.stats.bytes_in
        stats.bytes_out += conn.stats.bytes_out
        link = self._links.pop(conn, None)
        if link is None:
            return
        if link.timer is not None:
            link.timer.cancel()
        if link.receives:
            conns = link.route.conns
            conns.remove(conn)
            link.route.next = 0 if not conns else link.route.next % len(conns)

    # ------------------------------------------------------------------ requests

    def _fault(self) -> int:
        """The fault status for one submit (``_OK`` for none, ``_DROP`` to never answer)."""
        u = self._rng.random()
        if u < self._drop_cut:
            return _DROP
        if u < self._msgqful_cut:
            return _MSGQFUL
        if u < self._error_cut:
            return self.config.faults.error_status
        return _OK

    def _on_submit_sm(self, conn: SmppConnection, link: _Link, pdu: SubmitSm, now: float) -> None:
        stats = self.stats
        stats.submit_sm += 1
        if self._status_faults:
            status = self._fault()
            if status != _OK:
                self._refuse(conn, link, SubmitSmResp(sequence=pdu.sequence, status=status), status, now)
                return
        if pdu.esm_class & _UDHI or (pdu.tlvs and any(tag in _SAR_TAGS for tag, _ in pdu.tlvs)):
            stats.segments += 1
        message_id, receipt_id = self._ids.next()
        early = self._accept(
            link,
            message_id,
            receipt_id,
            source=(pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr),
            dest=(pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr),
            registered_delivery=pdu.registered_delivery,
            now=now,
            remember=True,
        )
        if self.handset is not None:
            self._to_handset(link, pdu, message_id, now)
        response = SubmitSmResp(sequence=pdu.sequence, message_id=message_id)
        if early is None and self._sync_response:
            conn.send_response(response)
            by_status = stats.by_status
            by_status[_OK] = by_status.get(_OK, 0) + 1
        else:
            self._answer(conn, link, response, (early,) if early is not None else (), now)

    def _to_handset(self, link: _Link, pdu: SubmitSm | DataSm, message_id: str, now: float) -> None:
        """Record what reached the handset (data_sm carries its text in message_payload only)."""
        assert self.handset is not None
        self.handset.add(
            link.system_id,
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class,
            data_coding=pdu.data_coding,
            short_message=pdu.short_message if isinstance(pdu, SubmitSm) else b"",
            tlvs=pdu.tlvs,
            message_id=message_id,
            now=now,
        )

    def _on_data_sm(self, conn: SmppConnection, link: _Link, pdu: DataSm, now: float) -> None:
        self.stats.data_sm += 1
        if self._status_faults:
            status = self._fault()
            if status != _OK:
                self._refuse(conn, link, DataSmResp(sequence=pdu.sequence, status=status), status, now)
                return
        message_id, receipt_id = self._ids.next()
        early = self._accept(
            link,
            message_id,
            receipt_id,
            source=(pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr[:_MAX_ADDR]),
            dest=(pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr[:_MAX_ADDR]),
            registered_delivery=pdu.registered_delivery,
            now=now,
            remember=True,
        )
        if self.handset is not None:
            self._to_handset(link, pdu, message_id, now)
        response = DataSmResp(sequence=pdu.sequence, message_id=message_id)
        self._answer(conn, link, response, (early,) if early is not None else (), now)

    def _on_submit_multi(self, conn: SmppConnection, link: _Link, pdu: SubmitMulti, now: float) -> None:
        self.stats.submit_multi += 1
        if self._status_faults:
            status = self._fault()
            if status != _OK:
                self._refuse(conn, link, SubmitMultiResp(sequence=pdu.sequence, status=status), status, now)
                return
        message_id, receipt_id = self._ids.next()
        unsuccess: list[UnsuccessSme] = []
        early: list[_Delivery] = []
        first = True
        for dest in pdu.dest_addresses:
            if isinstance(dest, DistributionList):  # the simulator knows no distribution lists
                unsuccess.append(UnsuccessSme(0, 0, dest.name[:_MAX_ADDR], CommandStatus.ESME_RINVDLNAME))
                continue
            delivery = self._accept(
                link,
                message_id,
                receipt_id,
                source=(pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr),
                dest=(dest.ton, dest.npi, dest.address),
                registered_delivery=pdu.registered_delivery,
                now=now,
                remember=first,
            )
            first = False
            if delivery is not None:
                early.append(delivery)
            if self.handset is not None:
                self.handset.add(
                    link.system_id,
                    source_addr=pdu.source_addr,
                    destination_addr=dest.address,
                    esm_class=pdu.esm_class,
                    data_coding=pdu.data_coding,
                    short_message=pdu.short_message,
                    tlvs=pdu.tlvs,
                    message_id=message_id,
                    now=now,
                )
        response = SubmitMultiResp(sequence=pdu.sequence, message_id=message_id, unsuccess_smes=tuple(unsuccess))
        self._answer(conn, link, response, tuple(early), now)

    def _on_query_sm(self, conn: SmppConnection, link: _Link, pdu: QuerySm, now: float) -> None:
        self.stats.query_sm += 1
        message = self._known.get(pdu.message_id)
        if message is None:
            response = QuerySmResp(
                sequence=pdu.sequence, message_id=pdu.message_id, status=CommandStatus.ESME_RINVMSGID
            )
        else:
            state, final_at, err = self._state_of(message, now)
            final_date = "" if final_at is None else self._smpp_time(final_at)
            response = QuerySmResp(
                sequence=pdu.sequence,
                message_id=pdu.message_id,
                final_date=final_date,
                message_state=state,
                error_code=err & 0xFF,
            )
        self._answer(conn, link, response, (), now)

    def _on_cancel_sm(self, conn: SmppConnection, link: _Link, pdu: CancelSm, now: float) -> None:
        self.stats.cancel_sm += 1
        message = self._known.get(pdu.message_id)
        status = CommandStatus.ESME_RCANCELFAIL
        if message is not None and message.cancelled_at is None and now < message.done_at:
            message.cancelled_at = now
            status = CommandStatus.ESME_ROK
        self._answer(conn, link, CancelSmResp(sequence=pdu.sequence, status=status), (), now)

    def _on_replace_sm(self, conn: SmppConnection, link: _Link, pdu: ReplaceSm, now: float) -> None:
        self.stats.replace_sm += 1
        message = self._known.get(pdu.message_id)
        ok = message is not None and message.cancelled_at is None and now < message.done_at
        status = CommandStatus.ESME_ROK if ok else CommandStatus.ESME_RREPLACEFAIL
        self._answer(conn, link, ReplaceSmResp(sequence=pdu.sequence, status=status), (), now)

    def _on_unsupported(self, conn: SmppConnection, link: _Link, pdu: Pdu, now: float) -> None:
        status = CommandStatus.ESME_RINVCMDID
        self._respond(conn, response_type_for(pdu.command_id)(sequence=pdu.sequence, status=status))

    # ------------------------------------------------------------------ accepting and answering

    def _accept(
        self,
        link: _Link,
        message_id: str,
        receipt_id: str,
        *,
        source: tuple[int, int, str],
        dest: tuple[int, int, str],
        registered_delivery: int,
        now: float,
        remember: bool,
    ) -> _Delivery | None:
        """Record one accepted message and schedule its receipts; returns the receipt to send ahead of the response
        (``receipts.before_response``), else None."""
        outcome = self._single_outcome or self._outcome_by_pick[self._mix.index(self._rng.random())]
        before = self._before
        done_at = now if before else now + self._receipt_delay()
        message = _Message(
            message_id,
            receipt_id,
            link.system_id,
            route=link.route,
            source=source,
            dest=dest,
            submitted_wall=now + self._wall_offset,
            done_at=done_at,
            outcome=outcome,
        )
        if remember and self._known_limit:
            self._remember(message)
        mode = registered_delivery & 0x03
        if not (mode == 1 or self._force or mode == 3 or (mode == 2 and not outcome.delivered)):
            return None
        if self._no_final and self._rng.random() < self._no_final:
            self.stats.receipts_withheld += 1
            final = False
        else:
            final = True
        if before:
            return _Delivery(self, message, self._receipt_pdu(message, outcome, now), True) if final else None
        enroute = self._enroute
        if enroute == "always" or (enroute == "requested" and registered_delivery & _INTERMEDIATE_REQUESTED):
            self._schedule(min(now + self._enroute_delay(), done_at), self._enroute_due, message)
        if final:
            self._schedule(done_at, self._final_due, message)
        return None

    def _answer(
        self, conn: SmppConnection, link: _Link, response: Pdu, early: tuple[_Delivery, ...], now: float
    ) -> None:
        self.stats.count_status(response.status)
        if self._sync_response:
            self._send_early(conn, link, early)
            conn.send_response(response)
        else:
            self._schedule(now + self._response_delay(), self._respond_later, (conn, link, response, early))

    def _respond_later(self, item: tuple[SmppConnection, _Link, Pdu, tuple[_Delivery, ...]]) -> None:
        conn, link, response, early = item
        self._send_early(conn, link, early)
        if conn.is_closed:
            self.stats.responses_lost += 1
        else:
            conn.send_response(response)

    def _send_early(self, conn: SmppConnection, link: _Link, early: tuple[_Delivery, ...]) -> None:
        for delivery in early:
            self._deliver(delivery, conn if link.receives else None)

    def _refuse(self, conn: SmppConnection, link: _Link, response: Pdu, status: int, now: float) -> None:
        """A fault: answer ``response`` (honouring the response latency), or never answer when ``status`` is _DROP."""
        if status == _DROP:
            self.stats.responses_dropped += 1
        else:
            self._answer(conn, link, response, (), now)

    def _respond(self, conn: SmppConnection, response: Pdu) -> None:
        self.stats.count_status(response.status)
        conn.send_response(response)

    def _remember(self, message: _Message) -> None:
        known, order = self._known, self._known_order
        known[message.message_id] = message
        order.append(message.message_id)
        if len(order) > self._known_limit:
            known.pop(order.popleft(), None)

    def _state_of(self, message: _Message, now: float) -> tuple[MessageState, float | None, int]:
        """(message_state, wall time it became final or None, error code) as query_sm reports it."""
        if message.cancelled_at is not None:
            return MessageState.DELETED, message.cancelled_at + self._wall_offset, 0
        if now >= message.done_at:
            return message.outcome.state, message.done_at + self._wall_offset, message.outcome.err
        return MessageState.ENROUTE, None, 0

    @staticmethod
    def _smpp_time(wall: float) -> str:
        return format_absolute_time(datetime.fromtimestamp(wall, UTC))

    # ------------------------------------------------------------------ receipts

    def _final_due(self, message: _Message) -> None:
        if message.cancelled_at is not None:
            outcome, done_at = self._outcomes[MessageState.DELETED], message.cancelled_at
        else:
            outcome, done_at = message.outcome, message.done_at
        self._deliver(_Delivery(self, message, self._receipt_pdu(message, outcome, done_at), True), None)

    def _enroute_due(self, message: _Message) -> None:
        outcome = self._outcomes[MessageState.ENROUTE]
        self._deliver(_Delivery(self, message, self._receipt_pdu(message, outcome, self._time()), False), None)

    def _receipt_pdu(self, message: _Message, outcome: _Outcome, done_at: float) -> DeliverSm:
        receipts = self.config.receipts
        receipt_id = message.receipt_id
        text = b""
        if receipts.text:
            key = (
                outcome.state,
                outcome.err,
                int(message.submitted_wall // 60),
                int((done_at + self._wall_offset) // 60),
            )
            tail = self._tail_cache.get(key)
            if tail is None:
                tail = self._text_tail(*key)
            text = f"id:{receipt_id}{tail}".encode("latin-1")
        tlvs: tuple[tuple[int, bytes], ...] = ()
        if receipts.tlvs:
            id_tlv = (_TAG_RECEIPTED_ID, receipt_id.encode("latin-1") + b"\0")
            error = outcome.tlv_error
            tlvs = (id_tlv, outcome.tlv_state) if error is None else (id_tlv, outcome.tlv_state, error)
        return DeliverSm(
            source_addr_ton=message.dest_ton,
            source_addr_npi=message.dest_npi,
            source_addr=message.dest_addr,
            dest_addr_ton=message.source_ton,
            dest_addr_npi=message.source_npi,
            destination_addr=message.source_addr,
            esm_class=_RECEIPT_ESM,
            short_message=text,
            tlvs=tlvs,
        )

    def _text_tail(self, state: MessageState, err: int, submit_minute: int, done_minute: int) -> str:
        """Everything after the id in the appendix-B text, formatted by the shared formatter and cached."""
        full = format_receipt_text(
            "X",
            state,
            submit_date=datetime.fromtimestamp(submit_minute * 60, UTC),
            done_date=datetime.fromtimestamp(max(done_minute, submit_minute) * 60, UTC),
            err=err,
        )
        tail = full[len("id:X") :]
        if len(self._tail_cache) >= _TAIL_CACHE_LIMIT:
            self._tail_cache.clear()
        self._tail_cache[(state, err, submit_minute, done_minute)] = tail
        return tail

    def _deliver(self, delivery: _Delivery, prefer: SmppConnection | None) -> None:
        """Send now if a receiver has a free slot (``prefer`` first), else queue (bounded)."""
        route = delivery.route
        if prefer is not None and not route.outbox and prefer.has_free_slot and self._write(prefer, delivery):
            return
        if route.outbox or not self._send(route, delivery):
            if len(route.outbox) >= self.config.receipts.queue_limit:
                self.stats.receipts_dropped += 1
                return
            route.outbox.append(delivery)
            self._ensure_ticking()

    def _send(self, route: _Route, delivery: _Delivery) -> bool:
        conns = route.conns
        count = len(conns)
        index = route.next
        for _ in range(count):
            conn = conns[index % count]
            index += 1
            if conn.has_free_slot and self._write(conn, delivery):
                route.next = index % count
                return True
        return False

    def _write(self, conn: SmppConnection, delivery: _Delivery) -> bool:
        try:
            conn.send_request(delivery.pdu, delivery)
        except (NetError, SmppError):
            return False
        stats = self.stats
        stats.receipt_attempts += 1
        if delivery.attempts == 0:
            if delivery.final:
                stats.receipts_sent += 1
                by_stat = stats.receipts_by_stat
                stat = self._stat_of(delivery)
                by_stat[stat] = by_stat.get(stat, 0) + 1
            else:
                stats.enroute_sent += 1
        delivery.attempts += 1
        return True

    def _stat_of(self, delivery: _Delivery) -> str:
        message = delivery.message
        return "DELETED" if message.cancelled_at is not None else message.outcome.stat

    def _pump(self, route: _Route) -> None:
        outbox = route.outbox
        while outbox and self._send(route, outbox[0]):
            outbox.popleft()

    def _on_delivery_failed(self, delivery: _Delivery) -> None:
        """A deliver_sm got an error status, timed out or was lost to a disconnect: retry later (bounded)."""
        stats = self.stats
        stats.receipt_errors += 1
        if self._closing:
            stats.receipts_abandoned += 1
        elif delivery.attempts >= self.config.receipts.max_attempts:
            stats.receipts_failed += 1
        else:
            stats.receipts_retried += 1
            self._schedule(self._time() + self._retry_delay, self._retry, delivery)
        if delivery.route.outbox:
            self._pump(delivery.route)

    def _retry(self, delivery: _Delivery) -> None:
        self._deliver(delivery, None)

    # ------------------------------------------------------------------ timing

    def _bucket(self, system_id: str) -> TokenBucket | None:
        faults = self.config.faults
        if not faults.throttle_tps:
            return None
        bucket = self._buckets.get(system_id)
        if bucket is None:
            bucket = self._buckets[system_id] = TokenBucket(faults.throttle_tps, faults.burst, self._time())
        return bucket

    def _schedule(self, deadline: float, action: Callable[[Any], None], argument: Any) -> None:
        self._wheel.push(deadline, (action, argument))
        if self._tick_handle is None:
            self._ensure_ticking()

    def _ensure_ticking(self) -> None:
        if self._tick_handle is None and self._loop is not None and not self._closing:
            self._tick_handle = self._loop.call_later(self._wheel.tick, self._on_tick)

    def _on_tick(self) -> None:
        self._tick_handle = None
        now = self._time()
        for action, argument in self._wheel.pop_due(now):
            action(argument)
        backlog = False
        for route in self._routes.values():
            if route.outbox and route.conns:
                self._pump(route)
                backlog = backlog or bool(route.outbox)
        if self.handset is not None and now >= self._next_expire:
            self._next_expire = now + 1.0
            self.handset.expire(now)
        if len(self._wheel) or backlog:
            self._ensure_ticking()

    def _force_close(self, conn: SmppConnection, reason: str) -> None:
        if not conn.is_closed:
            self.stats.forced_disconnects += 1
            conn.close(reason)
