"""The persistence contract. Writes are queued without awaiting (never one await per row) and committed in groups;
``after_commit`` says when everything queued so far is durable, which is when the gateway may acknowledge it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

import msgspec

from smppgw.core.message import Message, State
from smppgw.core.policy.caps import CapLimits
from smppgw.smpp.constants import MessageState

CommitCallback = Callable[[bool], None]
"""Called with True once durable, or False if the store failed (then nothing in that group may be acknowledged)."""


FINAL_RECEIPT_STATES = frozenset(state.name for state in MessageState if state.is_final)
"""Receipt state names that answer a part for good. A part's state read back from the store is its first such
receipt's: intermediate receipts (ENROUTE, ACCEPTD), unrecognised words and later duplicates never hide it."""

UNRECOGNISED = "UNRECOGNISED"
"""The state name a receipt is stored under when its status word is not one the gateway knows (evidence only)."""


class ReceiptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt as received from an operator: evidence, kept whether or not it matched a message."""

    id: int
    connector: str
    smsc_id: str
    state: str  # MessageState name from the receipt, or UNRECOGNISED
    err: str | None
    done_date: str | None  # ISO text of the receipt's done date (the SMSC's local time)
    received_at: float
    raw: str
    message_id: str | None = None
    part: int | None = None


class SegmentRow(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    part: int
    connector: str
    smsc_id: str
    submitted_at: float


class Recovery(msgspec.Struct, kw_only=True):
    """What a restart must pick up again."""

    open_messages: list[Message]  # not final; their parts' SMSC ids filled from the segments table
    unmatched_receipts: list[ReceiptRecord]  # received, not yet matched (to park again)
    receipts_due: list[Message]  # final, receipt owed upstream and not acknowledged yet
    callbacks: list[PendingCallback]  # HTTP callbacks not delivered yet
    max_message_id: str | None
    max_receipt_id: int
    stoplist: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (scope, msisdn) currently stopped
    cap_reservations: list[tuple[str, str, int, str]] = msgspec.field(default_factory=list)  # account, msisdn, day, id


class PendingCallback(msgspec.Struct, kw_only=True):
    """An HTTP callback not yet delivered (the outbox row)."""

    message_id: str
    url: str
    payload: bytes
    attempts: int
    next_at: float
    created_at: float


class StopEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the stop list: a number stopped (opt-out) or released, when and by what."""

    scope: str
    msisdn: str
    stopped: bool
    at: float
    source: str  # "http:<account>", "cli", "mo:<connector>", "import:<account>"


class MessageView(msgspec.Struct, kw_only=True):
    """A message with its evidence, for query_sm and the HTTP status endpoint."""

    message: Message
    segments: list[SegmentRow]
    receipts: list[ReceiptRecord]


class ReportRow(msgspec.Struct, frozen=True, gc=False):
    """One message as a traffic report sees it (positional: the SQLite store builds it straight from a row).

    ``state`` is the current one (the live state while open); ``submitted_at`` is its first segment's submit time,
    ``None`` if no part reached an operator."""

    account: str
    traffic_class: str
    operator: str
    state: str
    segments: int
    created_at: float
    submitted_at: float | None
    done_at: float | None


class CapGuard(msgspec.Struct, frozen=True, kw_only=True):
    """A collection-cap reservation to check against every worker's committed reservations."""

    account: str
    msisdn: str
    day: int
    limits: CapLimits


class CommitGuard(msgspec.Struct, frozen=True, kw_only=True):
    """What a new message must pass inside the transaction that stores it when several worker processes share the
    store: its idempotency key unused and its cap slot still free. One process checks both in memory; across
    processes only the store's write lock makes check-and-insert one step. A refused message is not stored."""

    client_ref: str | None = None
    cap: CapGuard | None = None
    move: bool = False  # an existing message's reservation moving to another day (its refusal key: MOVE + id)


MOVE = "move:"
"""Prefix of the refusal key of a cap move (``Store.cap_move``)."""


class Refusal(msgspec.Struct, frozen=True):
    """Why a guarded message was not stored: ``duplicate`` (``detail``: the stored message's id) or
    ``cap_exceeded`` (``detail``: the period and limit)."""

    code: str
    detail: str
    taken: tuple[tuple[str, int], ...] = ()  # cap refusals: the recipient's other reservations (message id, day)


class HandedReceipt(msgspec.Struct, frozen=True):
    """A receipt another worker received and could not match (its message may be ours)."""

    seq: int
    worker: int
    record: ReceiptRecord


class StopChange(msgspec.Struct, frozen=True):
    """A row of the stop-list log, for other workers to follow."""

    seq: int
    scope: str
    msisdn: str
    stopped: bool


class StoreStats:
    __slots__ = ("batches", "commit_seconds", "failures", "last_batch_rows", "rows", "wal_checkpoints")

    def __init__(self) -> None:
        self.wal_checkpoints = 0  # checkpoints the writer had to run itself to bound the WAL
        self.batches = 0
        self.rows = 0
        self.failures = 0
        self.commit_seconds = 0.0
        self.last_batch_rows = 0


class Store(Protocol):
    stats: StoreStats

    @property
    def pending(self) -> int:
        """Rows queued and not yet committed (for backpressure)."""

    @property
    def healthy(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Commit everything queued, then close."""

    refusals: dict[str, Refusal]
    """Guarded messages the last commits refused (message id → why); the commit callback pops its own."""

    def add_message(self, message: Message, guard: CommitGuard | None = None) -> None: ...

    def set_state(
        self, message_id: str, state: State, at: float, *, status: int = 0, receipt_due: bool = False
    ) -> None: ...

    def add_segment(self, row: SegmentRow) -> None: ...

    def add_receipt(self, record: ReceiptRecord) -> None: ...

    def link_receipt(self, receipt_id: int, message_id: str, part: int) -> None: ...

    def receipt_delivered(self, message_id: str, at: float) -> None: ...

    def receipt_abandoned(self, message_id: str) -> None:
        """The receipt owed upstream is given up (too old): no longer due, not marked sent."""

    def add_callback(self, callback: PendingCallback) -> None: ...

    def callback_retry(self, message_id: str, attempts: int, next_at: float) -> None: ...

    def callback_done(self, message_id: str, http_status: int, at: float) -> None:
        """Delivered (2xx) or given up (``http_status`` 0 or the last status): the outbox row goes."""

    def stop_change(self, event: StopEvent) -> None:
        """Record a stop-list change (the current state and the log)."""

    def cap_reserve(self, message_id: str, account: str, msisdn: str, day: int) -> None:
        """Record (or move) a message's collection-cap reservation."""

    def cap_release(self, message_id: str) -> None: ...

    def cap_move(self, message_id: str, guard: CapGuard) -> None:
        """Move a reservation to ``guard.day`` if every process's reservations leave room there; otherwise it stays
        and ``refusals["move:" + message_id]`` says why (with the reservations in the way)."""

    def handoff_receipt(self, receipt_id: int, worker: int, at: float) -> None:
        """Announce a receipt this worker could not match to the other workers."""

    def handoff_delivery(self, message_id: str, account: str) -> None:
        """Leave a receipt owed upstream for a worker holding a receiver session of ``account`` (nothing if it is
        already left, taken or not)."""

    def release_delivery(self, message_id: str) -> None:
        """Give back a receipt this worker took but cannot deliver now (another worker may take it)."""

    def handoff_cancel(self, message_id: str, account: str, at: float) -> None:
        """Ask the worker owning the message to cancel it (cancel_sm on another worker's session)."""

    def prune_handoffs(self, before: float) -> None:
        """Forget receipt announcements older than ``before`` (the receipts stay, unmatched, as evidence)."""

    def after_commit(self, callback: CommitCallback) -> None: ...

    async def receipt_handoffs(self, after: int, limit: int = 1000) -> list[HandedReceipt]:
        """Announced receipts with a sequence number above ``after``, in commit order."""

    async def cancel_handoffs(self, after: int, limit: int = 1000) -> list[tuple[int, str, str, float]]:
        """Cancel requests (sequence, message id, account, asked at) above ``after``, in commit order."""

    async def last_cancel_handoff(self) -> int: ...

    async def last_handoff(self) -> int:
        """The highest receipt-announcement sequence number so far (a new reader's starting cursor)."""

    async def claim_deliveries(self, accounts: Sequence[str], worker: int, limit: int = 500) -> list[Message]:
        """Lease to ``worker`` (atomically, across processes) up to ``limit`` receipts left for these accounts; their
        messages, final, still owed. The lease ends with ``receipt_delivered``/``receipt_abandoned`` (the row goes),
        ``release_delivery`` or ``release_claims``."""

    async def release_claims(self, worker: int, workers: int) -> None:
        """Free the leases of ``worker`` (starting again: what it held is lost with its memory) and of workers that
        no longer exist (``workers`` is the current count)."""

    async def stop_changes(self, after: int, limit: int = 1000) -> list[StopChange]:
        """Stop-list log rows above sequence ``after``, in commit order."""

    async def last_stop_change(self) -> int: ...

    async def stop_history(self, msisdn: str) -> list[StopEvent]:
        """Every recorded change of ``msisdn`` in any scope, oldest first."""

    async def recover(self) -> Recovery: ...

    async def find_message(self, message_id: str) -> MessageView | None: ...

    async def load_open(self, ids: Sequence[str]) -> list[Message]:
        """Those of ``ids`` still open, as recovery builds them (parts' SMSC ids and receipt states filled)."""

    async def find_by_client_ref(self, account: str, client_ref: str) -> str | None:
        """The id of the account's message with this idempotency key, if any."""

    async def find_by_client_refs(self, account: str, client_refs: list[str]) -> dict[str, str]:
        """client_ref → message id for those of ``client_refs`` the account already used."""

    def report_rows(
        self, accounts: Sequence[str] | None, since: float, until: float, chunk: int = 5000
    ) -> AsyncIterator[list[ReportRow]]:
        """The messages of ``accounts`` (``None``: every account) created in ``[since, until)``, in id order, in
        lists of at most ``chunk``. Each chunk is a separate short read (no snapshot over the whole report)."""
