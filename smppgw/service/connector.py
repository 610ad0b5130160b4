"""One operator connector: priority lanes → token bucket (segments) → windowed binds → responses.

A message is taken from the highest non-empty lane when the bucket holds tokens for all its segments and a bind
has a free slot; its SUBMITTING state is committed before its parts go out, so after a crash the gateway knows which
messages may have reached the operator (at most once). ESME_RTHROTTLED / ESME_RMSGQFUL make the whole connector back
off (with jitter) and put the part back at the head of its lane, so nothing is dropped or reordered. Other transient
statuses are retried up to ``max_retries``; permanent ones fail the message with that status.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import random
import time
from collections.abc import Callable
from typing import Protocol

from smppgw.config import ConnectorConfig
from smppgw.core.backoff import Backoff
from smppgw.core.correlation import Correlator
from smppgw.core.message import LANE_OF_CLASS, Message, State
from smppgw.core.throttle import TokenBucket, default_burst
from smppgw.net.client import ClientLink, LinkConfig
from smppgw.net.connection import ConnectionHandler, SmppConnection
from smppgw.net.errors import NetError, RequestFateUnknownError
from smppgw.smpp.concat import ConcatMode, Part, split_message
from smppgw.smpp.constants import TRANSIENT_STATUSES, CommandStatus, Ton
from smppgw.smpp.pdu import Pdu, SubmitSm, SubmitSmResp, _Bind
from smppgw.smpp.session import Role, SessionConfig
from smppgw.smpp.text import Encoding, data_coding_for

CONCAT_MODES = {
    "udh8": ConcatMode.UDH8,
    "udh16": ConcatMode.UDH16,
    "sar": ConcatMode.SAR,
    "payload": ConcatMode.PAYLOAD,
}
ALPHABETS = {"gsm7": Encoding.GSM7, "latin1": Encoding.LATIN1, "ascii": Encoding.ASCII}
LANES = 3
THROTTLE_STATUSES = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})

Segment = tuple[Message, int]


class ConnectorEvents(Protocol):
    """What the service learns from a connector (it owns the store and the message lifecycle)."""

    def commit_submitting(self, messages: list[Message], then: Callable[[bool], None]) -> None:
        """Persist SUBMITTING for ``messages``; call ``then`` once durable."""

    def part_accepted(self, connector: Connector, message: Message, part: int, smsc_id: str) -> None: ...

    def message_failed(self, message: Message, status: int, state: State) -> None: ...

    def hold_part(self, message: Message, part: int) -> None:
        """A part to send again found its message's window closed: the service sends it in the next window (the
        handset shows a concatenated message when its last part arrives)."""

    def may_send(self, message: Message) -> bool:
        """Asked for a message flagged ``recheck`` or whose window closed while it queued: True to send it now;
        False when the service took it back (held for its next window, or refused: its number was stop-listed)."""

    def receipt_pdu(self, connector: Connector, conn: SmppConnection, pdu: Pdu) -> None:
        """A deliver_sm / data_sm from the operator (receipt or MO); the service answers it."""


class ConnectorStats:
    __slots__ = ("backoffs", "failed", "fate_unknown", "parts_sent", "resp_ok", "retries", "throttled")

    def __init__(self) -> None:
        self.parts_sent = 0
        self.resp_ok = 0
        self.throttled = 0
        self.backoffs = 0
        self.retries = 0
        self.failed = 0
        self.fate_unknown = 0


class _PartSend:
    """Context of one submit_sm in flight: completes through ``__call__`` (the connection's callback API)."""

    __slots__ = ("connector", "message", "part")

    def __init__(self, connector: Connector, message: Message, part: int) -> None:
        self.connector = connector
        self.message = message
        self.part = part

    def __call__(self, response: Pdu | None, error: BaseException | None) -> None:
        self.connector._on_response(self.message, self.part, response, error)


class Connector(ConnectionHandler):
    """Queues, throttles and sends the messages routed to one operator SMSC."""

    def __init__(
        self,
        config: ConnectorConfig,
        events: ConnectorEvents,
        *,
        host: str | None = None,
        port: int | None = None,
        rng: random.Random | None = None,
        max_queue: int = 1_000_000,
    ) -> None:
        self.name = config.name
        self.config = config
        self.events = events
        self.stats = ConnectorStats()
        self.clock: Callable[[], float] = time.time  # wall clock, for sending windows (tests inject one)
        self.max_queue = max_queue
        self.concat_mode = CONCAT_MODES[config.concat]
        self.default_alphabet = ALPHABETS[config.default_alphabet]
        self.correlator: Correlator[Segment, object] = Correlator()
        self.lanes: list[collections.deque[Segment]] = [collections.deque() for _ in range(LANES)]
        # parts sent back by the operator (throttled, retried), in their original order: they go before the lanes
        self._retry: list[tuple[int, int, int, Message]] = []
        self._retries_pushed = 0  # tie-breaker: the heap never compares Message objects
        self._enqueued = 0
        self.queued = 0
        self._committing = 0  # parts taken from the queue whose SUBMITTING commit is pending (they own a slot)
        now = time.monotonic()
        self.bucket = TokenBucket(config.rate, default_burst(config.rate, config.burst), now)
        self._rng = rng or random.Random()
        self._backoff = Backoff(initial=0.05, maximum=5.0)
        self._backoff_attempt = 0
        self._paused_until = 0.0
        self._reference = self._rng.randrange(0, 256)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.link = ClientLink(
            LinkConfig(
                host=host or config.host,
                port=port or config.port,
                system_id=config.system_id,
                password=config.password,
                system_type=config.system_type,
                mode=config.mode,
                binds=config.binds,
            ),
            SessionConfig(
                role=Role.ESME,
                window_size=config.window,
                response_timeout=config.response_timeout,
                enquire_link_interval=config.enquire_link_interval,
            ),
            self,
            rng=self._rng,
            on_state_change=lambda _: self._wakeup.set(),
        )

    # ------------------------------------------------------------------ queue

    @property
    def is_full(self) -> bool:
        return self.queued >= self.max_queue

    def enqueue(self, message: Message, *, front: bool = False) -> None:
        """Queue every part of ``message`` in its traffic class's lane."""
        lane = self.lanes[min(LANE_OF_CLASS[message.traffic_class], LANES - 1)]
        self._enqueued += 1
        message.queue_order = -self._enqueued if front else self._enqueued
        if front:
            lane.appendleft((message, -1))
        else:
            lane.append((message, -1))
        self.queued += 1
        self._wakeup.set()

    def requeue_part(self, message: Message, part: int) -> None:
        """Send ``part`` of a message again (released from a hold by the service)."""
        self._requeue_part(message, part)

    def _requeue_part(self, message: Message, part: int) -> None:
        """Send ``part`` again before anything else, keeping the order in which parts were first queued."""
        self._retries_pushed += 1
        heapq.heappush(self._retry, (message.queue_order, part, self._retries_pushed, message))
        self.queued += 1
        self._wakeup.set()

    # ------------------------------------------------------------------ pump

    async def run(self) -> None:
        """Keep the binds up and send until ``stop``."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.link.run(), name=f"link-{self.name}")
            group.create_task(self._pump(), name=f"pump-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        await self.link.stop()

    async def _pump(self) -> None:
        while not self._stopping:
            delay = self._send_what_we_can()
            self._wakeup.clear()
            if delay is None:
                await self._wakeup.wait()
            else:
                try:
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass

    def _send_what_we_can(self) -> float | None:
        """Take as many queued messages as tokens and slots allow, commit SUBMITTING once for the group, then send.
        Returns how long to sleep when tokens are what is missing (None: wait for a wakeup)."""
        now = time.monotonic()
        if now < self._paused_until:
            return self._paused_until - now
        batch: list[tuple[Message, list[Part] | None, int]] = []
        # parts taken but waiting for their SUBMITTING commit hold a slot each: never take more than the windows
        free = sum(conn.session.window.free_slots for conn in self.link.connections if conn.has_free_slot)
        free -= self._committing
        wall = self.clock() if free > 0 and self.queued else 0.0
        while free > 0 and self.queued:
            item = self._peek()
            if item is None:
                break
            message, part = item
            if message.state.is_final:  # cancelled or expired while queued
                self._pop()
                continue
            parts = None
            if part < 0:
                if (message.recheck or message.window_end <= wall) and not self.events.may_send(message):
                    self._pop()  # the head is still this message (a re-queued copy goes to the tail)
                    continue
                try:
                    parts = self._build_parts(message)
                except ValueError:  # cannot be encoded for this connector (alphabet) or too long
                    self._pop()
                    self.events.message_failed(message, CommandStatus.ESME_RINVMSGLEN, State.FAILED)
                    self.stats.failed += 1
                    continue
                cost = len(parts)
            elif message.window_end <= wall:  # a part sent again (throttled, no bind) after its window closed
                self._pop()
                self.events.hold_part(message, part)
                continue
            else:
                cost = 1
            if cost > free:
                break
            wait = self.bucket.wait_time(cost, now)
            if wait > 0:
                self._flush(batch)
                return wait
            self.bucket.take(cost, now)
            self._pop()
            free -= cost
            batch.append((message, parts, part))
        self._flush(batch)
        return None

    def _peek(self) -> Segment | None:
        if self._retry:
            _, part, _, message = self._retry[0]
            return message, part
        for lane in self.lanes:
            if lane:
                return lane[0]
        return None

    def _pop(self) -> None:
        self.queued -= 1
        if self._retry:
            heapq.heappop(self._retry)
            return
        for lane in self.lanes:
            if lane:
                lane.popleft()
                return

    def _build_parts(self, message: Message) -> list[Part]:
        if message.text is None:
            payload = message.payload or b""
            return [Part(short_message=payload, esm_class_bits=message.esm_class, tlvs=message.tlvs, seqnum=1, total=1)]
        self._reference = (self._reference + 1) & (0xFFFF if self.concat_mode is not ConcatMode.UDH8 else 0xFF)
        split = split_message(
            message.text,
            reference=self._reference,
            mode=self.concat_mode,
            max_parts=max(message.segments, 1),
            default_alphabet=self.default_alphabet,
        )
        message.data_coding = data_coding_for(split.encoding, self.config.gsm7_data_coding)
        return list(split.parts)

    def _flush(self, batch: list[tuple[Message, list[Part] | None, int]]) -> None:
        if not batch:
            return
        fresh = [message for message, parts, _ in batch if parts is not None]
        cost = sum(1 if parts is None else len(parts) for _, parts, _ in batch)
        self._committing += cost

        def send_all(ok: bool) -> None:
            self._committing -= cost
            self._wakeup.set()  # slots they were holding may be free again
            if not ok:  # the store failed: these messages stay SUBMITTING-unknown; nothing is sent
                return
            wall = self.clock()
            for message, parts, part in batch:
                if message.window_end <= wall:  # the window closed during the commit: nothing of it goes now
                    if parts is None:
                        self.events.hold_part(message, part)
                    else:
                        self.events.may_send(message)  # held again (not sent: SUBMITTING is superseded by HELD)
                    continue
                if parts is not None:
                    message.wire_parts = tuple(parts)
                    for index in range(len(parts)):
                        self._send_part(message, index)
                else:
                    self._send_part(message, part)

        if fresh:
            for message in fresh:
                message.state = State.SUBMITTING
            self.events.commit_submitting(fresh, send_all)
        else:
            send_all(True)

    def _send_part(self, message: Message, index: int) -> None:
        part = message.wire_parts[index]
        conn = self.link.pick()
        if conn is None:  # the bind went away between the plan and the commit: try again shortly
            self._requeue_part(message, index)
            return
        pdu = SubmitSm(
            source_addr_ton=message.source_ton,
            source_addr_npi=message.source_npi,
            source_addr=message.source_addr,
            dest_addr_ton=Ton.INTERNATIONAL,
            dest_addr_npi=1,
            destination_addr=message.dest,
            esm_class=part.esm_class_bits,
            priority_flag=message.priority,
            registered_delivery=1,
            data_coding=message.data_coding,
            short_message=part.short_message,
            tlvs=part.tlvs,
        )
        try:
            conn.send_request(pdu, _PartSend(self, message, index))
        except NetError:
            self._requeue_part(message, index)
            return
        self.stats.parts_sent += 1

    # ------------------------------------------------------------------ responses

    def _on_response(self, message: Message, part: int, response: Pdu | None, error: BaseException | None) -> None:
        if error is not None:
            self._on_no_response(message, part, error)
        elif isinstance(response, SubmitSmResp) and response.status == CommandStatus.ESME_ROK:
            self.stats.resp_ok += 1
            self._backoff_attempt = 0
            self.events.part_accepted(self, message, part, response.message_id)
        elif response is not None:
            self._on_error_status(message, part, response.status)
        self._wakeup.set()

    def _on_no_response(self, message: Message, part: int, error: BaseException) -> None:
        self.stats.fate_unknown += 1
        if self.config.resend_unknown_fate and isinstance(error, RequestFateUnknownError):
            self._requeue_part(message, part)
        else:
            self.events.message_failed(message, CommandStatus.ESME_RUNKNOWNERR, State.UNKNOWN)

    def _on_error_status(self, message: Message, part: int, status: int) -> None:
        if status in THROTTLE_STATUSES:
            self.stats.throttled += 1
            self._pause()
            self._requeue_part(message, part)
            return
        if status in TRANSIENT_STATUSES and message.retries < self.config.max_retries:
            message.retries += 1
            self.stats.retries += 1
            self._pause()
            self._requeue_part(message, part)
            return
        self.stats.failed += 1
        self.events.message_failed(message, status, State.FAILED)

    def _pause(self) -> None:
        """Back off the whole connector. Responses to a burst sent before the pause arrive together: only the first
        escalates the delay; later ones inside the same pause just wait with it."""
        now = time.monotonic()
        self.bucket.drain(now)
        if now < self._paused_until:
            return
        self._backoff_attempt += 1
        self.stats.backoffs += 1
        self._paused_until = now + self._backoff.delay(self._backoff_attempt, self._rng)

    # ------------------------------------------------------------------ receipts and MO from the operator

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        return None  # an operator never binds to us over this link

    def on_bound(self, conn: SmppConnection) -> None:
        self._wakeup.set()

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        self.events.receipt_pdu(self, conn, pdu)

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self._wakeup.set()
