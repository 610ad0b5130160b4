"""The gateway pipeline: accept → persist → route → throttle → submit → record → correlate → notify.

Every acknowledgement waits for the store's group commit: submit_sm_resp after the message is durable, the
operator's deliver_sm_resp after its receipt is durable, so a crash at any moment loses nothing acknowledged.
The service owns the message lifecycle; connectors send, upstream sessions receive, the store remembers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from smppgw.config import AccountConfig, GatewayConfig
from smppgw.core.message import SMPP_STATE_OF, Message, MessageIdGenerator, State, TrafficClass
from smppgw.core.numbering import InvalidNumberError, NumberInfo, normalise_msisdn
from smppgw.core.policy.calendar import WorkCalendar
from smppgw.core.policy.windows import SendWindows
from smppgw.core.routing import NoRouteError, RoutingTable
from smppgw.core.throttle import TokenBucket, default_burst
from smppgw.core.workers import SOLE_WORKER, WorkerSlot
from smppgw.net.connection import SmppConnection
from smppgw.obs.logging import get_logger
from smppgw.smpp.concat import segment_count
from smppgw.smpp.constants import (
    CommandStatus,
    EsmClass,
    MessageState,
    Tag,
    is_delivery_receipt,
)
from smppgw.smpp.pdu import (
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    get_tlv,
    response_type_for,
)
from smppgw.smpp.receipt import ReceiptError, read_receipt
from smppgw.smpp.text import Encoding, decode_short_message
from smppgw.smpp.timefmt import SmppTimeError, format_absolute_time, parse_smpp_time
from smppgw.store.base import (
    MOVE,
    UNRECOGNISED,
    CapGuard,
    CommitGuard,
    ReceiptRecord,
    Recovery,
    SegmentRow,
    StopEvent,
    Store,
)

from .callbacks import CallbackOutbox
from .connector import Connector, Segment
from .errors import SubmitRefusedError
from .policy import Policies, Slot, next_local_day
from .retired import RetiredMessages
from .upstream import UpstreamReceipts

# Enum members read on the hot path, bound once (a class attribute lookup of an Enum member costs ~0.1 µs).
Stored = bool | SubmitRefusedError
"""How a ``persist`` ended: stored (True), store failure (False), or refused at commit."""

_COLLECTION = TrafficClass.COLLECTION
_QUEUED = State.QUEUED
_HELD = State.HELD
_SCHEDULED = State.SCHEDULED
_SUBMITTING = State.SUBMITTING
_SUBMITTED = State.SUBMITTED
_ACCEPTED = State.ACCEPTED

log = get_logger("smppgw.gateway")

DEFAULT_VALIDITY = 48 * 3600.0
"""Seconds a message may wait or travel when the client gives no validity_period (operators' usual maximum)."""

_STATE_OF_RECEIPT: dict[MessageState, State] = {
    MessageState.DELIVERED: State.DELIVERED,
    MessageState.EXPIRED: State.EXPIRED,
    MessageState.DELETED: State.DELETED,
    MessageState.UNDELIVERABLE: State.UNDELIVERABLE,
    MessageState.REJECTED: State.REJECTED,
    MessageState.UNKNOWN: State.UNKNOWN,
}
_SEVERITY = (State.REJECTED, State.UNDELIVERABLE, State.EXPIRED, State.DELETED, State.UNKNOWN, State.DELIVERED)
"""When parts end differently the message takes the most severe part state."""


class GatewayStats:
    __slots__ = (
        "accepted",
        "acked_receipts_in",
        "cancelled",
        "final",
        "held",
        "mo_received",
        "mo_stops",
        "receipts_by_state",
        "receipts_in",
        "receipts_unmatched",
        "rejected",
        "segments_accepted",
        "store_failures",
    )

    def __init__(self) -> None:
        self.accepted = 0
        self.segments_accepted = 0
        self.rejected: dict[str, int] = {}
        self.receipts_in = 0
        self.receipts_by_state: dict[str, int] = {}
        self.receipts_unmatched = 0
        self.acked_receipts_in = 0
        self.final: dict[str, int] = {}
        self.mo_received = 0
        self.mo_stops = 0
        self.held = 0  # times a message was held for its window (quiet hours) or a full cap day
        self.cancelled = 0
        self.store_failures = 0


class TextSubmit(msgspec.Struct, frozen=True, kw_only=True):
    """A text message as the HTTP API receives it (after JSON validation)."""

    to: str
    sender: str
    text: str
    traffic_class: str | None = None
    priority: int = 0
    validity: float | None = None  # seconds
    send_at: float | None = None  # epoch seconds
    client_ref: str | None = None
    callback_url: str | None = None
    overdue_days: int | None = None  # collection: days overdue (the account's default when absent)


class Account:
    """An account at run time: its config, its rate limit and its bound sessions."""

    __slots__ = ("bucket", "config", "default_class", "sessions")

    def __init__(self, config: AccountConfig, now: float, share: float = 1.0) -> None:
        self.config = config
        self.default_class = TrafficClass(config.default_class)
        rate = config.rate * share  # with N workers each limits its part of the account's rate
        self.bucket = TokenBucket(rate, default_burst(rate), now)
        self.sessions: list[SmppConnection] = []


class Gateway:
    """Owns the message lifecycle between upstream sessions, the store and the connectors."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        router: RoutingTable,
        *,
        max_pending_rows: int = 200_000,
        clock: Callable[[], float] = time.time,
        calendar: WorkCalendar | None = None,
        worker: WorkerSlot = SOLE_WORKER,
    ):
        self.config = config
        self.worker = worker
        self.clock = clock  # wall clock (epoch seconds); tests inject one to run days of policy without sleeping
        self.store = store
        self.router = router
        self.stats = GatewayStats()
        self.max_pending_rows = max_pending_rows
        now = time.monotonic()
        self.accounts = {a.system_id: Account(a, now, 1.0 / worker.count) for a in config.accounts}
        if calendar is None:
            calendar = WorkCalendar.load(config.policy.calendar_dir or None)
        windows = SendWindows(calendar)
        self.policies = Policies(config.policy, windows, {a.system_id: a for a in config.accounts})
        self.connectors: dict[str, Connector] = {}
        self.live: dict[str, Message] = {}
        self.upstream = UpstreamReceipts(self)
        self.callbacks = CallbackOutbox(store)
        self.client_refs: OrderedDict[tuple[str, str], Message] = OrderedDict()
        self.max_client_refs = 50_000  # recent idempotency keys kept in memory (whole messages); older: in the store
        self.retired = RetiredMessages(self, config.store.hot_awaiting)
        self.refused_at_commit: OrderedDict[str, SubmitRefusedError] = OrderedDict()  # recent ones (for twins)
        self._ids = MessageIdGenerator(index=worker.index, count=worker.count)
        self._receipt_ids = worker.align(0)  # receipt ids are strided like message ids
        self._scheduled: list[tuple[float, int, Message]] = []  # heap by send_at
        # Heap by the next time the sweeper must look at a message, by id: a finished or retired message is not kept
        # in memory by its entry (entries of messages no longer live are skipped, and dropped by a rebuild).
        self._deadlines: list[tuple[float, int, str]] = []
        self._tiebreak = itertools.count()
        self._next_prune = 0.0
        self._held_parts: list[tuple[float, int, Message, int]] = []  # parts waiting for the next window
        # Several workers: cap moves the store has not confirmed yet (id → whether the whole message waits for it),
        # and what other workers' reservations refused moves showed (recipient → (forget after, days)).
        self._unconfirmed_moves: dict[str, bool] = {}
        self._days_elsewhere: dict[tuple[str, str], tuple[float, list[int]]] = {}

    @property
    def waiting(self) -> int:
        """Messages held or scheduled (the release heap; cancelled ones linger until their time)."""
        return len(self._scheduled)

    def add_connector(self, connector: Connector) -> None:
        self.connectors[connector.name] = connector

    # ------------------------------------------------------------------ accept

    def accept_submit(self, account: Account, pdu: SubmitSm | DataSm, origin: str = "smpp") -> Message:
        """Validate and build the message for ``pdu``; raises ``SubmitRefusedError`` with the status to answer."""
        if not pdu.source_addr:
            raise SubmitRefusedError(CommandStatus.ESME_RINVSRCADR, "invalid_sender", "empty source_addr")
        traffic_class = _smpp_class(account, pdu)
        dest, connector, info = self._route(account, pdu.destination_addr, traffic_class)
        message = self._build_message(
            account, pdu=pdu, dest=dest, traffic_class=traffic_class, connector=connector, origin=origin
        )
        message.operator = _operator(info)
        if traffic_class is _COLLECTION:
            message.overdue_days = _smpp_overdue_days(account.config, pdu)
        self.policies.check_stop_list(account.config, message)
        self._check_capacity(account, connector, message.segments)
        self._reserve_cap(account, message, info)
        return message

    def accept_text(self, account: Account, request: TextSubmit) -> Message:
        """Validate and build a message submitted as text (HTTP API); raises ``SubmitRefusedError``."""
        now = self.clock()
        traffic_class = _CLASSES.get(request.traffic_class) if request.traffic_class else account.default_class
        if traffic_class is None:
            raise SubmitRefusedError(CommandStatus.ESME_RINVOPTPARAMVAL, "invalid_class", "unknown traffic class")
        sender = request.sender.strip()
        if not sender or len(sender) > 20 or (not sender.lstrip("+").isdigit() and len(sender) > 11):
            raise SubmitRefusedError(
                CommandStatus.ESME_RINVSRCADR, "invalid_sender", "sender: 1-11 characters, or a number of up to 20"
            )
        if not request.text:
            raise SubmitRefusedError(CommandStatus.ESME_RINVMSGLEN, "empty_text", "text is empty")
        dest, connector, info = self._route(account, request.to, traffic_class)
        validity = request.validity if request.validity is not None else DEFAULT_VALIDITY
        if validity <= 0:
            raise SubmitRefusedError(CommandStatus.ESME_RINVEXPIRY, "invalid_validity", "validity must be positive")
        message = Message(
            id=self._ids.next(int(now * 1000)),
            account=account.config.system_id,
            origin="http",
            source_addr=sender,
            source_ton=0,
            source_npi=0,
            dest=dest,
            traffic_class=traffic_class,
            priority=request.priority,
            registered_delivery=request.callback_url is not None,
            text=request.text,
            connector=connector.name,
            operator=_operator(info),
            created_at=now,
            send_at=request.send_at if request.send_at is not None and request.send_at > now + 1.0 else None,
            expires_at=max(request.send_at or now, now) + validity,
            client_ref=request.client_ref,
            callback_url=request.callback_url,
        )
        if traffic_class is _COLLECTION:
            overdue = request.overdue_days
            message.overdue_days = account.config.default_overdue_days if overdue is None else overdue
        _apply_source_rules(message, connector)
        self._count_segments(message, account, connector)
        message.smsc_ids = [None] * message.segments
        message.part_states = [None] * message.segments
        self.policies.check_stop_list(account.config, message)
        self._check_capacity(account, connector, message.segments)
        self._reserve_cap(account, message, info)
        return message

    def _reserve_cap(self, account: Account, message: Message, info: NumberInfo | None) -> None:
        """A collection message takes a slot on the local day it is planned to go out (its window's opening)."""
        if message.traffic_class is not _COLLECTION:
            return
        at = max(message.created_at, message.send_at or 0.0)
        slot = self.policies.slot(message, info, at)
        if slot is None or slot.opens >= message.expires_at:
            return  # it can never go out: it will end EXPIRED without using a slot
        self.policies.reserve_cap(account.config, message, info, slot.opens)
        self.store.cap_reserve(message.id, message.account, message.dest, self.policies.ledger.day_of(message.id) or 0)

    def _route(
        self, account: Account, raw_dest: str, traffic_class: TrafficClass
    ) -> tuple[str, Connector, NumberInfo | None]:
        """(normalised number, connector, what the plan knows of the number) or ``SubmitRefusedError``."""
        try:
            dest = normalise_msisdn(raw_dest)
            route = self.router.route(dest, traffic_class, account.config.system_id, normalised=True)
        except InvalidNumberError as exc:
            raise SubmitRefusedError(CommandStatus.ESME_RINVDSTADR, "invalid_number", str(exc)) from None
        except NoRouteError as exc:
            raise SubmitRefusedError(CommandStatus.ESME_RINVDSTADR, "no_route", str(exc)) from None
        connector = self._choose_connector(route.connector, route.fallbacks)
        if connector is None:
            raise SubmitRefusedError(
                CommandStatus.ESME_RINVDSTADR, "no_route", f"connector {route.connector} is not running"
            )
        return dest, connector, route.info

    def _count_segments(self, message: Message, account: Account, connector: Connector) -> None:
        assert message.text is not None
        try:
            message.segments = segment_count(
                message.text, mode=connector.concat_mode, default_alphabet=connector.default_alphabet
            )
        except ValueError as exc:
            raise SubmitRefusedError(CommandStatus.ESME_RINVMSGLEN, "text_too_long", str(exc)) from None
        if message.segments > account.config.max_parts:
            detail = f"{message.segments} parts exceed the account's maximum of {account.config.max_parts}"
            raise SubmitRefusedError(CommandStatus.ESME_RINVMSGLEN, "text_too_long", detail)

    def _choose_connector(self, primary: str, fallbacks: tuple[str, ...]) -> Connector | None:
        """The primary connector, or the first fallback with a bind up when the primary has none (all segments of
        a message then go through that one connector). With nothing up anywhere the primary queues it."""
        first = self.connectors.get(primary)
        if first is not None and (not fallbacks or first.link.has_bound):
            return first
        for name in fallbacks:
            candidate = self.connectors.get(name)
            if candidate is not None and candidate.link.has_bound:
                return candidate
        return first

    def _build_message(
        self,
        account: Account,
        *,
        pdu: SubmitSm | DataSm,
        dest: str,
        traffic_class: TrafficClass,
        connector: Connector,
        origin: str,
    ) -> Message:
        now = self.clock()
        raw = pdu.short_message if isinstance(pdu, SubmitSm) else b""
        payload_tlv = get_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD)
        if payload_tlv is not None and not raw:
            raw = payload_tlv
        sar = get_tlv(pdu.tlvs, Tag.SAR_MSG_REF_NUM) is not None
        binary = pdu.data_coding in (0x02, 0x04) or pdu.data_coding & 0xF4 == 0xF4
        passthrough = bool(pdu.esm_class & EsmClass.UDHI) or sar or binary
        message = Message(
            id=self._ids.next(int(now * 1000)),
            account=account.config.system_id,
            origin=origin,
            source_addr=pdu.source_addr,
            source_ton=pdu.source_addr_ton,
            source_npi=pdu.source_addr_npi,
            dest=dest,
            traffic_class=traffic_class,
            priority=pdu.priority_flag if isinstance(pdu, SubmitSm) else 0,
            registered_delivery=bool(pdu.registered_delivery & 0x03),
            connector=connector.name,
            created_at=now,
        )
        self._apply_times(message, pdu, now)
        _apply_source_rules(message, connector)
        if passthrough:
            message.payload = raw
            message.data_coding = pdu.data_coding
            message.esm_class = pdu.esm_class & EsmClass.UDHI
            message.tlvs = tuple(t for t in pdu.tlvs if t[0] in _SAR_TAGS)
            message.segments = 1
        else:
            message.text = decode_short_message(raw, pdu.data_coding, Encoding.GSM7)
            self._count_segments(message, account, connector)
        message.smsc_ids = [None] * message.segments
        message.part_states = [None] * message.segments
        return message

    def _apply_times(self, message: Message, pdu: SubmitSm | DataSm, now: float) -> None:
        validity = DEFAULT_VALIDITY
        if isinstance(pdu, SubmitSm) and (pdu.validity_period or pdu.schedule_delivery_time):
            aware_now = datetime.fromtimestamp(now, UTC)
            try:
                until = parse_smpp_time(pdu.validity_period, aware_now)
            except (SmppTimeError, ValueError) as exc:
                raise SubmitRefusedError(CommandStatus.ESME_RINVEXPIRY, "invalid_validity", str(exc)) from None
            if until is not None:
                validity = until.timestamp() - now
            try:
                at = parse_smpp_time(pdu.schedule_delivery_time, aware_now)
            except (SmppTimeError, ValueError) as exc:
                raise SubmitRefusedError(CommandStatus.ESME_RINVSCHED, "invalid_schedule", str(exc)) from None
            if at is not None and at.timestamp() > now + 1.0:
                message.send_at = at.timestamp()
        if validity <= 0:
            raise SubmitRefusedError(CommandStatus.ESME_RINVEXPIRY, "invalid_validity", "validity period already over")
        message.expires_at = now + validity

    def _check_capacity(self, account: Account, connector: Connector, segments: int) -> None:
        if self.store.pending > self.max_pending_rows or connector.is_full or not self.store.healthy:
            raise SubmitRefusedError(
                CommandStatus.ESME_RMSGQFUL, "overloaded", "queues are full, retry later", retry_after=1.0
            )
        now = time.monotonic()
        wait = account.bucket.wait_time(segments, now)  # longer than the burst: passes when the bucket is full
        if wait > 0:
            raise SubmitRefusedError(
                CommandStatus.ESME_RTHROTTLED, "rate_limited", "account rate exceeded", retry_after=wait
            )
        account.bucket.take(segments, now)

    def persist(self, message: Message, then: Callable[[Stored], None]) -> None:
        """Store the new message; once durable, acknowledge (``then(True)``) and queue it. ``then(False)``: the
        store failed; ``then(SubmitRefusedError)``: refused at commit (another worker took the idempotency key or
        the last cap slot first)."""
        guard = self._commit_guard(message) if self.worker.shared else None
        self.store.add_message(message, guard)
        self.stats.accepted += 1
        self.stats.segments_accepted += message.segments

        def committed(ok: bool) -> None:
            refusal = self.store.refusals.pop(message.id, None) if ok and guard is not None else None
            if refusal is not None:
                then(self._refused_at_commit(message, refusal.code, refusal.detail))
                return
            if ok:
                self.live[message.id] = message
                self._track(message, message.expires_at)
                self._dispatch(message)
            else:
                self.stats.store_failures += 1
                self.policies.ledger.release(message.id)
            then(ok)

        self.store.after_commit(committed)

    def _commit_guard(self, message: Message) -> CommitGuard | None:
        """What only the store can check when workers share it: the idempotency key and the cap slot."""
        day = self.policies.ledger.day_of(message.id) if message.traffic_class is _COLLECTION else None
        cap = None
        if day is not None:
            limits = self.policies.limits(message)
            cap = CapGuard(account=message.account, msisdn=message.dest, day=day, limits=limits)
        if cap is None and message.client_ref is None:
            return None
        return CommitGuard(client_ref=message.client_ref, cap=cap)

    def _refused_at_commit(self, message: Message, code: str, detail: str) -> SubmitRefusedError:
        self.stats.accepted -= 1
        self.stats.segments_accepted -= message.segments
        self.policies.ledger.release(message.id)
        if message.client_ref is not None and self.client_refs.get((message.account, message.client_ref)) is message:
            del self.client_refs[(message.account, message.client_ref)]
        self.reject(code)
        if code == "duplicate":
            refusal = SubmitRefusedError(CommandStatus.ESME_RSYSERR, code, detail)
        else:
            refusal = SubmitRefusedError(self.accounts[message.account].config.cap_exceeded_status, code, detail)
        self.refused_at_commit[message.id] = refusal
        if len(self.refused_at_commit) > 10_000:
            self.refused_at_commit.popitem(last=False)
        return refusal

    def known_client_ref(self, account: str, client_ref: str) -> Message | None:
        """A message of ``account`` accepted in this process with this idempotency key (committed or not)."""
        return self.client_refs.get((account, client_ref))

    def remember_client_ref(self, message: Message) -> None:
        if message.client_ref is None:
            return
        self.client_refs[(message.account, message.client_ref)] = message
        if len(self.client_refs) > self.max_client_refs:
            self.client_refs.popitem(last=False)

    def reject(self, code: str) -> None:
        self.stats.rejected[code] = self.stats.rejected.get(code, 0) + 1

    def _dispatch(self, message: Message) -> None:
        """Queue the message on its connector, or wait: for its send time (SCHEDULED) or for the recipient's
        sending window and a free cap day (HELD). One that cannot go out before its validity ends is EXPIRED."""
        now = self.clock()
        at = now if message.send_at is None or message.send_at < now else message.send_at
        klass = message.traffic_class
        if klass in self.policies.stop_classes:
            message.recheck = True
            if self._stopped_meanwhile(message):
                return
        if klass in self.policies.hours or klass is _COLLECTION:
            slot = self._policy_slot(message, at)
            if slot is None:
                self._finish(message, State.EXPIRED, 0)
                return
            at, message.window_end = slot
            if message.id in self._unconfirmed_moves:  # waits for the store to confirm its new cap day
                self._hold(message, now)
                return
        if at > now:
            held = message.send_at is None or at > message.send_at
            if held:
                self._hold(message, now)
            else:
                message.state = _SCHEDULED
            heapq.heappush(self._scheduled, (at, next(self._tiebreak), message))
            return
        message.state = _QUEUED
        self.connectors[message.connector].enqueue(message)

    def _policy_slot(self, message: Message, at: float, *, whole: bool = True) -> Slot | None:
        """The first window from ``at`` on a day with a cap slot for the message; None if none before it expires.
        ``whole``: the whole message waits for it (not one part being sent again)."""
        info = self.router.resolver.resolve(message.dest)
        reserved = self.policies.ledger.day_of(message.id)
        elsewhere = self._reserved_elsewhere(message) if self.worker.shared else ()
        for _ in range(40):  # at most one move per day of a month
            slot = self.policies.slot(message, info, at)
            if slot is None or slot.opens >= message.expires_at:
                return None
            if self.policies.move_cap(message, info, slot.opens, elsewhere):
                day = self.policies.ledger.day_of(message.id)
                if day is not None and day != reserved:  # moved: record the new day
                    if self.worker.shared and reserved is not None:
                        self._confirm_move(message, reserved, day, whole)
                    else:
                        self.store.cap_reserve(message.id, message.account, message.dest, day)
                return slot
            at = next_local_day(info, slot.opens)  # that day is full: try the next one
        return None

    def _confirm_move(self, message: Message, previous: int, day: int, whole: bool) -> None:
        """Several workers: another may have filled the new day meanwhile; the store decides inside the commit, and
        the message (or its held part) waits for its answer."""
        self._unconfirmed_moves[message.id] = whole
        guard = CapGuard(account=message.account, msisdn=message.dest, day=day, limits=self.policies.limits(message))
        self.store.cap_move(message.id, guard)
        self.store.after_commit(lambda ok: self._move_settled(message, previous, ok, whole))

    def _move_settled(self, message: Message, previous: int, ok: bool, whole: bool) -> None:
        self._unconfirmed_moves.pop(message.id, None)
        refusal = self.store.refusals.pop(MOVE + message.id, None)
        if message.state.is_final or message.id not in self.live:
            return  # finished meanwhile: its slot went with it
        if not ok or refusal is not None:  # the reservation stays where it was; remember what fills the day
            ledger = self.policies.ledger
            ledger.reserve((message.account, message.dest), previous, message.id)
            if refusal is not None:
                days = [day for other, day in refusal.taken if ledger.day_of(other) is None]
                self._days_elsewhere[(message.account, message.dest)] = (self.clock() + ELSEWHERE_TTL, days)
        if whole and message.state is _HELD:  # a held part is checked again when it is due (``_part_may_go``)
            self._dispatch(message)

    def _reserved_elsewhere(self, message: Message) -> list[int]:
        """The recipient's days other workers reserved, as a recent refusal showed (a hint to pick the next day;
        the store still decides)."""
        key = (message.account, message.dest)
        entry = self._days_elsewhere.get(key)
        if entry is None:
            return []
        if entry[0] <= self.clock():
            del self._days_elsewhere[key]
            return []
        return entry[1]

    def _hold(self, message: Message, now: float) -> None:
        if message.state is not _HELD:
            self.stats.held += 1
            self.store.set_state(message.id, _HELD, now)
        message.state = _HELD

    def hold_part(self, message: Message, part: int) -> None:
        """Keep a part to be sent again until the message's next window; then the connector sends it."""
        if message.state.is_final:
            return
        slot = self._policy_slot(message, self.clock(), whole=False)  # also moves its cap slot to that day
        if slot is None:  # no window before it expires: the rest never goes
            self._finish(message, State.EXPIRED, 0)
            return
        message.window_end = slot.closes
        self.stats.held += 1
        heapq.heappush(self._held_parts, (slot.opens, next(self._tiebreak), message, part))

    def may_send(self, message: Message) -> bool:
        """Just before a flagged message is sent: refuse it if its number was stop-listed meanwhile, hold it again
        if its window closed while it queued (a backlog); otherwise let it go."""
        if self._stopped_meanwhile(message):
            return False
        if message.window_end <= self.clock():
            self._dispatch(message)
            return False
        return True

    def _stopped_meanwhile(self, message: Message) -> bool:
        """An opt-out that arrived while the message waited wins: it ends REJECTED with the stop-list status."""
        if not message.recheck or self.policies.stopped_by(message) is None:
            return False
        account = self.accounts.get(message.account)
        self._finish(message, State.REJECTED, account.config.stop_listed_status if account else 0x0402)
        return True

    # ------------------------------------------------------------------ connector events

    def commit_submitting(self, messages: list[Message], then: Callable[[bool], None]) -> None:
        now = self.clock()
        for message in messages:
            self.store.set_state(message.id, _SUBMITTING, now)
        self.store.after_commit(then)

    def part_accepted(self, connector: Connector, message: Message, part: int, smsc_id: str) -> None:
        now = self.clock()
        message.smsc_ids[part] = smsc_id
        if message.submitted_at is None:
            message.submitted_at = now
        self.store.add_segment(
            SegmentRow(message_id=message.id, part=part, connector=connector.name, smsc_id=smsc_id, submitted_at=now)
        )
        whole = None not in message.smsc_ids and message.state is _SUBMITTING
        if whole:
            message.state = _SUBMITTED
            message.wire_parts = ()  # every part is with the operator: the encoded parts are not needed again
        for parked in connector.correlator.register(smsc_id, (message, part)):
            assert isinstance(parked, _ParkedReceipt)
            self._apply_receipt(connector, (message, part), parked.record, parked.state)
        if message.state.is_final:  # a parked receipt finished it, or it failed meanwhile
            connector.correlator.forget(smsc_id, (message, part))
        elif whole:
            self.retired.sent_whole(message)  # registered: it may leave memory once enough newer ones were sent

    def park_unmatched(self, connector: Connector, record: ReceiptRecord, state: MessageState | None) -> None:
        """A receipt no message matches (yet): parked for a late submit_sm_resp, and announced to the other workers
        (its message may be theirs). It is stored already, unlinked: evidence either way."""
        self.stats.receipts_unmatched += 1
        connector.correlator.park(record.smsc_id, _ParkedReceipt(record, state), time.monotonic())
        if self.worker.shared:
            self.store.handoff_receipt(record.id, self.worker.index, record.received_at)

    def read_part_states(self, message: Message) -> None:
        """Parts' states as the store gives them back (the name of each part's first final receipt) as this gateway
        keeps them: the final state's text, or None while the part still waits (any other name)."""
        for part, name in enumerate(message.part_states):
            if name is not None:
                receipt = MessageState.__members__.get(name)
                message.part_states[part] = _PART_STATE_TEXT.get(receipt) if receipt is not None else None

    def apply_restored(
        self, connector: Connector, message: Message, part: int, record: ReceiptRecord, state: MessageState | None
    ) -> None:
        """A receipt of a message read back from the store (it had left memory, ``retired``)."""
        self._apply_receipt(connector, (message, part), record, state)

    def end_unanswered(self, message: Message) -> None:
        """No final receipt within validity + the connector's receipt grace: the parts' receipts so far decide, or
        UNKNOWN."""
        received = [s for s in message.part_states if s is not None]
        self._finish(message, _aggregate(received) if received else State.UNKNOWN, 0)

    def message_failed(self, message: Message, status: int, state: State) -> None:
        if not message.state.is_final:
            self._finish(message, state, status)

    # ------------------------------------------------------------------ receipts from operators

    def receipt_pdu(self, connector: Connector, conn: SmppConnection, pdu: Pdu) -> None:
        """A deliver_sm/data_sm from an operator: receipts are recorded durably, then acknowledged."""
        if not isinstance(pdu, DeliverSm | DataSm):
            conn.send_response(
                response_type_for(pdu.command_id)(sequence=pdu.sequence, status=CommandStatus.ESME_RINVCMDID)
            )
            return
        reply_type = DeliverSmResp if isinstance(pdu, DeliverSm) else DataSmResp
        if not is_delivery_receipt(pdu.esm_class):
            self._mobile_originated(connector, conn, pdu, reply_type)
            return
        self.stats.receipts_in += 1
        short_message = pdu.short_message if isinstance(pdu, DeliverSm) else b""
        try:
            receipt = read_receipt(short_message, pdu.tlvs, data_coding=pdu.data_coding)
            smsc_id, receipt_state = receipt.message_id, receipt.state
            err, raw = receipt.err, receipt.raw_text
            done = receipt.done_date.isoformat() if receipt.done_date else None
            recognised = receipt.state_recognised
        except ReceiptError:  # keep it as evidence even though it cannot be matched
            smsc_id, receipt_state, err, done, recognised = "", MessageState.UNKNOWN, None, None, False
            raw = short_message.decode("latin-1")
        by_state = self.stats.receipts_by_state
        by_state[receipt_state.name] = by_state.get(receipt_state.name, 0) + 1
        self._receipt_ids += self.worker.count
        segment = connector.correlator.match(smsc_id) if smsc_id else None
        record = ReceiptRecord(
            id=self._receipt_ids,
            connector=connector.name,
            smsc_id=smsc_id,
            state=receipt_state.name if recognised else UNRECOGNISED,
            err=err,
            done_date=done,
            received_at=self.clock(),
            raw=raw,
            message_id=None if segment is None else segment[0].id,
            part=None if segment is None else segment[1],
        )
        self.store.add_receipt(record)  # linked to its message at insert when it matched on arrival
        if segment is not None:
            self._apply_receipt(connector, segment, record, receipt_state if recognised else None)
        elif smsc_id:
            state = receipt_state if recognised else None
            if not self.retired.receipt(connector, record, state):  # not a message that left memory either
                self.park_unmatched(connector, record, state)

        def acknowledge(ok: bool) -> None:
            if ok:
                self.stats.acked_receipts_in += 1
                conn.send_response(reply_type(sequence=pdu.sequence))
            else:  # not durable: make the operator resend it later
                conn.send_response(reply_type(sequence=pdu.sequence, status=CommandStatus.ESME_RX_T_APPN))

        self.store.after_commit(acknowledge)

    def _mobile_originated(
        self,
        connector: Connector,
        conn: SmppConnection,
        pdu: DeliverSm | DataSm,
        reply: type[DeliverSmResp | DataSmResp],
    ) -> None:
        """An MO message. A stop keyword ("STOP", "СТОП") puts its sender on the stop list, acknowledged once that
        is durable; anything else is acknowledged and counted (no MO routing)."""
        self.stats.mo_received += 1
        raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
        raw = raw or get_tlv(pdu.tlvs, Tag.MESSAGE_PAYLOAD) or b""
        scope = None
        if not pdu.esm_class & EsmClass.UDHI and len(raw) <= 64:
            try:
                text = decode_short_message(raw, pdu.data_coding, connector.default_alphabet)
            except ValueError:
                text = ""
            scope = self.policies.mo_stop_scope(text, pdu.destination_addr)
        try:
            sender = normalise_msisdn(pdu.source_addr) if scope is not None else ""
        except InvalidNumberError:
            scope = None
        if scope is None:
            log.debug("mo_received", connector=connector.name, source_addr=pdu.source_addr)
            conn.send_response(reply(sequence=pdu.sequence))
            return
        self.stats.mo_stops += 1
        self.set_stopped(scope, sender, True, f"mo:{connector.name}")
        log.info("mo_stop", connector=connector.name, scope=scope, source_addr=pdu.source_addr)

        def acknowledge(ok: bool) -> None:
            status = CommandStatus.ESME_ROK if ok else CommandStatus.ESME_RX_T_APPN
            conn.send_response(reply(sequence=pdu.sequence, status=status))

        self.store.after_commit(acknowledge)

    # ------------------------------------------------------------------ stop list

    def set_stopped(self, scope: str, msisdn: str, stopped: bool, source: str) -> bool:
        """Stop (or release) ``msisdn`` in ``scope`` now; recorded in the store, and undone in memory if that commit
        fails. Await ``after_commit`` before answering: even an unchanged number may still be waiting for the commit
        of the request that changed it. Returns False if nothing changed in this worker's memory (then nothing is
        recorded, unless several workers share the store: the log's last word must be this one)."""
        stop_list = self.policies.stoplist
        changed = stop_list.add(scope, msisdn) if stopped else stop_list.remove(scope, msisdn)
        if changed or self.worker.shared:  # another worker may have changed it a moment ago: record it anyway
            event = StopEvent(scope=scope, msisdn=msisdn, stopped=stopped, at=self.clock(), source=source)
            self.store.stop_change(event)

            def undo_unless_stored(ok: bool) -> None:  # memory never claims a change the store does not hold
                if not ok and changed:
                    _ = stop_list.remove(scope, msisdn) if stopped else stop_list.add(scope, msisdn)

            self.store.after_commit(undo_unless_stored)
        return changed

    def _apply_receipt(
        self, connector: Connector, segment: Segment, record: ReceiptRecord, state: MessageState | None
    ) -> None:
        message, part = segment
        if record.message_id is None:  # matched after parking (or at recovery): link it now
            self.store.link_receipt(record.id, message.id, part)
        if state is None or not state.is_final:
            return  # intermediate (ENROUTE/ACCEPTD) or an unknown vendor word: evidence only
        message.part_states[part] = _PART_STATE_TEXT.get(state, "unknown")
        if not message.state.is_final and None not in message.part_states:
            self._finish(message, _aggregate(message.part_states), 0)  # forgets every part's id
            return
        smsc_id = message.smsc_ids[part]
        if smsc_id is not None:
            connector.correlator.forget(smsc_id, segment)

    def _finish(self, message: Message, state: State, status: int) -> None:
        now = self.clock()
        not_sent = message.state in _NOT_SENT and message.traffic_class is _COLLECTION
        if not_sent and self.policies.ledger.release(message.id):  # it never reached the recipient: slot freed
            self.store.cap_release(message.id)
        message.state = state
        message.status = status
        message.done_at = now
        due = message.registered_delivery and message.origin == "smpp"
        self.store.set_state(message.id, state, now, status=status, receipt_due=due)
        final = self.stats.final
        name = _STATE_TEXT[state]
        final[name] = final.get(name, 0) + 1
        self.live.pop(message.id, None)
        connector = self.connectors.get(message.connector)
        if connector is not None:
            for part, smsc_id in enumerate(message.smsc_ids):
                if smsc_id is not None:
                    connector.correlator.forget(smsc_id, (message, part))
        if due or (message.origin == "http" and message.callback_url):
            self.store.after_commit(lambda ok: self._notify(message, due) if ok else None)

    def _notify(self, message: Message, receipt_due: bool) -> None:
        """Tell the client about a final state once it is durable (never a receipt for an unrecorded state)."""
        if receipt_due:
            self.upstream.deliver(message)
        if message.origin == "http" and message.callback_url:
            self.callbacks.enqueue(message)

    # ------------------------------------------------------------------ upstream requests

    async def query(self, account: Account, pdu: QuerySm) -> QuerySmResp:
        message = self.live.get(pdu.message_id)
        if message is None:
            view = await self.store.find_message(pdu.message_id)
            message = None if view is None else view.message
        if message is None or message.account != account.config.system_id:
            return QuerySmResp(sequence=pdu.sequence, status=CommandStatus.ESME_RQUERYFAIL)
        final_date = ""
        if message.done_at is not None:
            final_date = format_absolute_time(datetime.fromtimestamp(message.done_at, UTC))
        return QuerySmResp(
            sequence=pdu.sequence,
            message_id=message.id,
            final_date=final_date,
            message_state=SMPP_STATE_OF[message.state],
            error_code=min(message.status, 255),
        )

    def cancel(self, account: Account, pdu: CancelSm) -> CancelSmResp:
        if not self.cancel_owned(pdu.message_id, account.config.system_id):
            return CancelSmResp(sequence=pdu.sequence, status=CommandStatus.ESME_RCANCELFAIL)
        return CancelSmResp(sequence=pdu.sequence)

    def cancel_owned(self, message_id: str, account: str) -> bool:
        """Cancel a message of this worker that has not gone out yet; False if there is none such."""
        message = self.live.get(message_id)
        if message is None or message.account != account or message.state not in _CANCELLABLE:
            return False
        self.stats.cancelled += 1
        self._finish(message, State.DELETED, 0)  # the connector skips it when it reaches the head of its lane
        return True

    def cancel_asked(self, message_id: str, account: str, at: float) -> None:
        """A cancel_sm another worker passed on: done unless the asker has already answered it failed."""
        if self.clock() - at < CANCEL_WAIT - CANCEL_MARGIN:
            self.cancel_owned(message_id, account)

    def owned_elsewhere(self, message_id: str) -> bool:
        """Several workers, and ``message_id`` is one of ours but another worker's."""
        if not self.worker.shared:
            return False
        try:
            return not self.worker.owns(message_id)
        except ValueError:  # not one of our ids at all
            return False

    async def cancel_elsewhere(self, account: Account, pdu: CancelSm) -> CancelSmResp:
        """cancel_sm for another worker's message: passed to its owner through the store; the answer waits (bounded)
        until the store shows the message cancelled or gone out."""
        failed = CancelSmResp(sequence=pdu.sequence, status=CommandStatus.ESME_RCANCELFAIL)
        name = account.config.system_id
        view = await self.store.find_message(pdu.message_id)
        if view is None or view.message.account != name or view.message.state not in _CANCELLABLE:
            return failed
        self.store.handoff_cancel(pdu.message_id, name, self.clock())
        deadline = time.monotonic() + CANCEL_WAIT
        while True:  # the last read comes after the owner's last chance (CANCEL_WAIT - CANCEL_MARGIN)
            last = time.monotonic() >= deadline
            await asyncio.sleep(0.05)
            view = await self.store.find_message(pdu.message_id)
            if view is None or view.message.state is State.DELETED:
                return failed if view is None else CancelSmResp(sequence=pdu.sequence)
            if view.message.state not in _CANCELLABLE or last:  # it went out meanwhile, or the owner did not act
                return failed

    # ------------------------------------------------------------------ periodic work

    def sweep(self) -> None:
        """Release due scheduled messages, expire what outlived its validity, end receiptless ones as UNKNOWN.
        Both are heaps by time, so a sweep costs what is due, not what is live (1M messages may await receipts)."""
        now = self.clock()
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, message = heapq.heappop(self._scheduled)
            if not message.state.is_final:
                self._dispatch(message)  # checks the window again: a message is never released early
        while self._held_parts and self._held_parts[0][0] <= now:
            _, _, message, part = heapq.heappop(self._held_parts)
            connector = self.connectors.get(message.connector)
            if connector is None or message.state.is_final:
                continue
            if self.worker.shared and not self._part_may_go(message, part, now):
                continue
            connector.requeue_part(message, part)
        if now >= self._next_prune:
            self._next_prune = now + 3600.0
            for message_id in self.policies.ledger.prune(datetime.fromtimestamp(now, UTC).date().toordinal()):
                self.store.cap_release(message_id)
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, message_id = heapq.heappop(self._deadlines)
            due = self.live.get(message_id)
            if due is None or due.state.is_final:
                continue
            if due.state in (_QUEUED, _SCHEDULED, _HELD, _ACCEPTED):
                self._finish(due, State.EXPIRED, 0)
                continue
            connector = self.connectors.get(due.connector)
            grace_ends = due.expires_at + (connector.config.receipt_timeout if connector else DEFAULT_VALIDITY)
            if now < grace_ends:  # in flight or submitted: its receipt may still come until validity + grace
                self._track(due, grace_ends)
                continue
            self.end_unanswered(due)
        self.retired.expire(now)
        if len(self._deadlines) > 2 * len(self.live) + 10_000:  # finished messages linger until their deadline
            self._deadlines = [(m.expires_at, next(self._tiebreak), m.id) for m in self.live.values()]
            heapq.heapify(self._deadlines)
        mono = time.monotonic()
        for connector in self.connectors.values():
            connector.correlator.expire_parked(mono)  # they stay in the store, unmatched, as evidence

    def _part_may_go(self, message: Message, part: int, now: float) -> bool:
        """Several workers: a held part goes only once its message's cap day is confirmed for today (a refused move
        leaves the reservation on another day); otherwise it is held again."""
        slot = self._policy_slot(message, now, whole=False)
        if slot is None:
            self._finish(message, State.EXPIRED, 0)
            return False
        if slot.opens > now or message.id in self._unconfirmed_moves:
            heapq.heappush(self._held_parts, (max(slot.opens, now + 1.0), next(self._tiebreak), message, part))
            return False
        message.window_end = slot.closes
        return True

    def _track(self, message: Message, when: float) -> None:
        heapq.heappush(self._deadlines, (when, next(self._tiebreak), message.id))

    async def run_sweeper(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    # ------------------------------------------------------------------ recovery

    def recover(self, recovery: Recovery) -> dict[str, int]:
        """Resume after a restart: requeue, re-register SMSC ids, mark unknown fate, re-park, re-send receipts."""
        counts = {"requeued": 0, "awaiting_receipts": 0, "fate_unknown": 0, "receipts_parked": 0, "receipts_due": 0}
        worker = self.worker
        if recovery.max_message_id:
            self._ids = MessageIdGenerator(int(recovery.max_message_id, 16), index=worker.index, count=worker.count)
        self._receipt_ids = worker.align(recovery.max_receipt_id)
        self.policies.stoplist.load(recovery.stoplist)
        # With several workers each resumes the messages it owns and keeps their cap reservations (the store counts
        # everyone's inside each commit); the stop list is whole in every worker.
        owned = worker.owns
        self.policies.ledger.load(r for r in recovery.cap_reservations if owned(r[3]))
        for message in filter(lambda m: owned(m.id), recovery.open_messages):
            self.read_part_states(message)
            connector = self.connectors.get(message.connector)
            if connector is None:
                self._finish(message, State.FAILED, CommandStatus.ESME_RINVDSTADR)
                continue
            self.live[message.id] = message
            self._track(message, message.expires_at)
            if message.state in (_ACCEPTED, _QUEUED, _SCHEDULED, _HELD):
                counts["requeued"] += 1
                self._dispatch(message)
            elif None not in message.smsc_ids:
                counts["awaiting_receipts"] += 1
                message.state = _SUBMITTED
                for part, smsc_id in enumerate(message.smsc_ids):
                    if smsc_id is not None and message.part_states[part] is None:
                        connector.correlator.register(smsc_id, (message, part))
                self.retired.sent_whole(message)  # beyond the hot limit the oldest leave memory again
            elif connector.config.resend_unknown_fate:
                counts["requeued"] += 1
                if message.traffic_class in self.policies.hours or message.traffic_class in self.policies.stop_classes:
                    self._dispatch(message)  # its window and the stop list are checked again first
                else:
                    message.state = _QUEUED
                    connector.enqueue(message, front=True)
            else:
                counts["fate_unknown"] += 1
                self._finish(message, State.UNKNOWN, CommandStatus.ESME_RUNKNOWNERR)
        now = self.clock()
        mono = time.monotonic()
        for record in recovery.unmatched_receipts:
            connector = self.connectors.get(record.connector)
            if connector is None or not record.smsc_id:
                continue
            state = MessageState[record.state] if record.state in MessageState.__members__ else None
            segment = connector.correlator.match(record.smsc_id)
            if segment is not None:
                self._apply_receipt(connector, segment, record, state)
            elif self.retired.receipt(connector, record, state):
                counts["receipts_for_retired"] = counts.get("receipts_for_retired", 0) + 1
            else:
                counts["receipts_parked"] += 1
                connector.correlator.park(
                    record.smsc_id, _ParkedReceipt(record, state), mono - (now - record.received_at)
                )
        for message in filter(lambda m: owned(m.id), recovery.receipts_due):
            counts["receipts_due"] += 1
            self.upstream.deliver(message)
        callbacks = [c for c in recovery.callbacks if owned(c.message_id)]
        self.callbacks.restore(callbacks)
        counts["callbacks_pending"] = len(callbacks)
        return counts

    # ------------------------------------------------------------------ other workers (``--workers N``)

    def handed_receipt(self, record: ReceiptRecord) -> bool:
        """A receipt another worker could not match: apply it if its message is ours (else park it a while: our
        submit_sm_resp may still be on its way). True if it matched."""
        connector = self.connectors.get(record.connector)
        if connector is None or not record.smsc_id or record.message_id is not None:
            return False
        state = MessageState[record.state] if record.state in MessageState.__members__ else None
        segment = connector.correlator.match(record.smsc_id)
        if segment is None:
            if self.retired.receipt(connector, record, state):
                return True
            connector.correlator.park(record.smsc_id, _ParkedReceipt(record, state), time.monotonic())
            return False
        self._apply_receipt(connector, segment, record, state)
        return True

    def stop_changed_elsewhere(self, scope: str, msisdn: str, stopped: bool) -> None:
        """Another worker changed the stop list (already durable): follow it in memory."""
        stop_list = self.policies.stoplist
        _ = stop_list.add(scope, msisdn) if stopped else stop_list.remove(scope, msisdn)


class _ParkedReceipt:
    __slots__ = ("record", "state")

    def __init__(self, record: ReceiptRecord, state: MessageState | None) -> None:
        self.record = record
        self.state = state


_SAR_TAGS = frozenset({Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM})
_CLASSES = {klass.value: klass for klass in TrafficClass}
_STATE_TEXT = {state: state.value for state in State}
_PART_STATE_TEXT = {receipt: state.value for receipt, state in _STATE_OF_RECEIPT.items()}
"""Plain text of states (``.value`` of an Enum member costs ~0.16 µs)."""
_NOT_SENT = frozenset({_ACCEPTED, _QUEUED, _SCHEDULED, _HELD})
_CANCELLABLE = _NOT_SENT

ELSEWHERE_TTL = 60.0
"""Seconds a worker remembers other workers' cap days that a refused move showed it (they may be released soon)."""

CANCEL_WAIT = 3.0
"""Seconds a cancel_sm for another worker's message waits for that worker's answer (the owner looks every 0.1 s)."""
CANCEL_MARGIN = 1.0
"""The owner acts on a passed-on cancel only until ``CANCEL_WAIT - CANCEL_MARGIN`` after it was asked, so a cancel
answered "failed" never takes effect later (the margin covers the commit of the owner's change)."""


def _operator(info: NumberInfo | None) -> str:
    return "" if info is None else info.operator


def _smpp_class(owner: Account, pdu: SubmitSm | DataSm) -> TrafficClass:
    """The class of an SMPP message: the account's TLV, then its service_type and source mappings, then its
    default. An unknown class name in the TLV is refused (ESME_RINVOPTPARAMVAL)."""
    account = owner.config
    if account.class_tlv:
        value = get_tlv(pdu.tlvs, account.class_tlv)
        if value is not None:
            name = value.rstrip(b"\x00").decode("ascii", "replace").strip().lower()
            try:
                return TrafficClass(name)
            except ValueError:
                raise SubmitRefusedError(
                    CommandStatus.ESME_RINVOPTPARAMVAL, "invalid_class", f"unknown traffic class {name!r}"
                ) from None
    if account.class_by_service_type:
        mapped = account.class_by_service_type.get(pdu.service_type)
        if mapped is not None:
            return TrafficClass(mapped)
    if account.class_by_source:
        mapped = account.class_by_source.get(pdu.source_addr)
        if mapped is not None:
            return TrafficClass(mapped)
    return owner.default_class


def _smpp_overdue_days(account: AccountConfig, pdu: SubmitSm | DataSm) -> int:
    """Overdue days from the account's TLV (ASCII digits), else the account's default."""
    if account.overdue_tlv:
        value = get_tlv(pdu.tlvs, account.overdue_tlv)
        if value is not None:
            text = value.rstrip(b"\x00")
            if not text.isdigit() or len(text) > 6:
                raise SubmitRefusedError(
                    CommandStatus.ESME_RINVOPTPARAMVAL, "invalid_overdue_days", "overdue days must be ASCII digits"
                )
            return int(text)
    return account.default_overdue_days


def _aggregate(part_states: list[str | None] | list[str]) -> State:
    states = {State(s) for s in part_states if s is not None}
    for state in _SEVERITY:
        if state in states:
            return state
    return State.UNKNOWN


def _apply_source_rules(message: Message, connector: Connector) -> None:
    """Alphanumeric senders go out as TON 5 / NPI 0, numeric ones as 1 / 1 (per-connector override)."""
    cfg = connector.config
    if message.source_addr.lstrip("+").isdigit():
        message.source_addr = message.source_addr.lstrip("+")
        message.source_ton, message.source_npi = cfg.numeric_source_ton, cfg.numeric_source_npi
    else:
        message.source_ton, message.source_npi = cfg.alphanumeric_source_ton, cfg.alphanumeric_source_npi
