"""In-memory store with the SQLite store's semantics (commits happen on the next loop iteration). For tests."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from smppgw.core.message import Message, State
from smppgw.core.policy.caps import CapExceededError, over_cap

from .base import (
    FINAL_RECEIPT_STATES,
    MOVE,
    CapGuard,
    CommitCallback,
    CommitGuard,
    HandedReceipt,
    MessageView,
    PendingCallback,
    ReceiptRecord,
    Recovery,
    Refusal,
    ReportRow,
    SegmentRow,
    StopChange,
    StopEvent,
    StoreStats,
)


class MemoryStore:
    def __init__(self) -> None:
        self.stats = StoreStats()
        self.messages: dict[str, Message] = {}
        self.receipt_due: dict[str, bool] = {}
        self.segments: dict[tuple[str, int], SegmentRow] = {}
        self.receipts: dict[int, ReceiptRecord] = {}
        self.callbacks: dict[str, PendingCallback] = {}
        self.callback_outcomes: list[tuple[str, int, float]] = []
        self.stoplist: dict[tuple[str, str], StopEvent] = {}
        self.stoplist_log: list[StopEvent] = []
        self.cap_ledger: dict[str, tuple[str, str, int]] = {}
        self.refusals: dict[str, Refusal] = {}
        self.receipt_handoff: list[tuple[int, int, float]] = []  # (receipt id, worker, at); seq = index + 1
        self.delivery_handoff: dict[int, list[Any]] = {}  # seq → [message id, account, claimed by (None: free)]
        self._handoff_seq = 0
        self.cancel_handoff: list[tuple[str, str, float]] = []  # (message id, account, at); seq = index + 1
        self._pending: list[tuple[str, tuple[object, ...]]] = []
        self._callbacks: list[CommitCallback] = []
        self._scheduled = False
        self.fail_commits = False  # tests flip this to simulate a broken disk

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def healthy(self) -> bool:
        return not self.fail_commits

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._commit()

    def _queue(self, op: str, *args: object) -> None:
        self._pending.append((op, args))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._commit)

    def add_message(self, message: Message, guard: CommitGuard | None = None) -> None:
        self._queue("message", copy.deepcopy(message), guard)

    def set_state(
        self, message_id: str, state: State, at: float, *, status: int = 0, receipt_due: bool = False
    ) -> None:
        self._queue("state", message_id, state, at, status, receipt_due)

    def add_segment(self, row: SegmentRow) -> None:
        self._queue("segment", row)

    def add_receipt(self, record: ReceiptRecord) -> None:
        self._queue("receipt", record)

    def link_receipt(self, receipt_id: int, message_id: str, part: int) -> None:
        self._queue("link", receipt_id, message_id, part)

    def receipt_delivered(self, message_id: str, at: float) -> None:
        self._queue("delivered", message_id, at)

    def receipt_abandoned(self, message_id: str) -> None:
        self._queue("delivered", message_id, 0.0)

    def add_callback(self, callback: PendingCallback) -> None:
        self._queue("callback", callback)

    def callback_retry(self, message_id: str, attempts: int, next_at: float) -> None:
        self._queue("callback_retry", message_id, attempts, next_at)

    def callback_done(self, message_id: str, http_status: int, at: float) -> None:
        self._queue("callback_done", message_id, http_status, at)

    def stop_change(self, event: StopEvent) -> None:
        self._queue("stop", event)

    def cap_reserve(self, message_id: str, account: str, msisdn: str, day: int) -> None:
        self._queue("cap", message_id, (account, msisdn, day))

    def cap_release(self, message_id: str) -> None:
        self._queue("cap", message_id, None)

    def cap_move(self, message_id: str, guard: CapGuard) -> None:
        self._queue("cap_move", message_id, guard)

    def handoff_receipt(self, receipt_id: int, worker: int, at: float) -> None:
        self._queue("handoff_receipt", receipt_id, worker, at)

    def handoff_delivery(self, message_id: str, account: str) -> None:
        self._queue("handoff_delivery", message_id, account)

    def handoff_cancel(self, message_id: str, account: str, at: float) -> None:
        self._queue("handoff_cancel", message_id, account, at)

    async def cancel_handoffs(self, after: int, limit: int = 1000) -> list[tuple[int, str, str, float]]:
        rows = self.cancel_handoff[after : after + limit]
        return [(after + i + 1, *row) for i, row in enumerate(rows)]

    async def last_cancel_handoff(self) -> int:
        return len(self.cancel_handoff)

    def prune_handoffs(self, before: float) -> None:
        return None  # sequence numbers are list positions here: announcements are kept

    async def receipt_handoffs(self, after: int, limit: int = 1000) -> list[HandedReceipt]:
        rows = self.receipt_handoff[after : after + limit]
        return [HandedReceipt(after + i + 1, w, self.receipts[r]) for i, (r, w, _) in enumerate(rows)]

    async def last_handoff(self) -> int:
        return len(self.receipt_handoff)

    def release_delivery(self, message_id: str) -> None:
        self._queue("release_delivery", message_id)

    async def claim_deliveries(self, accounts: Sequence[str], worker: int, limit: int = 500) -> list[Message]:
        free = [
            (seq, row) for seq, row in sorted(self.delivery_handoff.items()) if row[1] in accounts and row[2] is None
        ]
        taken = []
        for seq, row in free[:limit]:
            row[2] = worker
            if self.receipt_due.get(row[0]):
                taken.append(copy.deepcopy(self.messages[row[0]]))
            else:  # no longer owed (delivered meanwhile): the row goes, as in SQLite
                del self.delivery_handoff[seq]
        return taken

    async def release_claims(self, worker: int, workers: int) -> None:
        for row in self.delivery_handoff.values():
            if row[2] is not None and (row[2] == worker or row[2] >= workers):
                row[2] = None

    async def stop_changes(self, after: int, limit: int = 1000) -> list[StopChange]:
        events = self.stoplist_log[after : after + limit]
        return [StopChange(after + i + 1, e.scope, e.msisdn, e.stopped) for i, e in enumerate(events)]

    async def last_stop_change(self) -> int:
        return len(self.stoplist_log)

    async def stop_history(self, msisdn: str) -> list[StopEvent]:
        return [e for e in self.stoplist_log if e.msisdn == msisdn]

    def after_commit(self, callback: CommitCallback) -> None:
        self._callbacks.append(callback)
        self._schedule()

    def _commit(self) -> None:
        self._scheduled = False
        ops, callbacks = self._pending, self._callbacks
        self._pending, self._callbacks = [], []
        if self.fail_commits:
            self.stats.failures += 1
            for callback in callbacks:
                callback(False)
            return
        refused = self._check_guards(ops)
        for op, args in ops:
            if refused and op in ("message", "cap") and _message_id(op, args) in refused:
                continue
            if refused and op == "cap_move" and MOVE + str(args[0]) in refused:
                continue
            self._apply(op, args)
        self.stats.batches += 1
        self.stats.rows += len(ops)
        for callback in callbacks:
            callback(True)

    def _check_guards(self, ops: list[tuple[str, tuple[object, ...]]]) -> dict[str, Refusal]:
        """The SQLite store's guard semantics: against what is committed plus this batch's earlier messages."""
        refused: dict[str, Refusal] = {}
        if not any(op == "cap_move" or (op == "message" and args[1] is not None) for op, args in ops):
            return refused
        keys = {(m.account, m.client_ref): m.id for m in self.messages.values() if m.client_ref is not None}
        taken: dict[tuple[str, str], list[int]] = {}  # this batch's reservations so far
        for op, args in ops:
            if op == "cap_move":
                message_id, guard = str(args[0]), args[1]
                assert isinstance(guard, CapGuard)
                error, others = self._over_cap(guard, message_id, taken)
                if error is not None:
                    refused[MOVE + message_id] = Refusal("cap_exceeded", str(error), others)
                else:
                    taken.setdefault((guard.account, guard.msisdn), []).append(guard.day)
                continue
            if op != "message" or args[1] is None:
                continue
            message, commit_guard = args
            assert isinstance(message, Message) and isinstance(commit_guard, CommitGuard)
            if commit_guard.client_ref is not None and (message.account, commit_guard.client_ref) in keys:
                refused[message.id] = Refusal("duplicate", keys[(message.account, commit_guard.client_ref)])
                continue
            if commit_guard.cap is not None:
                error, others = self._over_cap(commit_guard.cap, message.id, taken)
                if error is not None:
                    refused[message.id] = Refusal("cap_exceeded", str(error), others)
                    continue
                taken.setdefault((commit_guard.cap.account, commit_guard.cap.msisdn), []).append(commit_guard.cap.day)
            if commit_guard.client_ref is not None:
                keys[(message.account, commit_guard.client_ref)] = message.id
        self.refusals.update(refused)
        return refused

    def _over_cap(
        self, cap: CapGuard, message_id: str, taken: dict[tuple[str, str], list[int]]
    ) -> tuple[CapExceededError | None, tuple[tuple[str, int], ...]]:
        others = tuple(
            (mid, day)
            for mid, (account, msisdn, day) in self.cap_ledger.items()
            if (account, msisdn) == (cap.account, cap.msisdn) and mid != message_id
        )
        days = [day for _, day in others] + taken.get((cap.account, cap.msisdn), [])
        return over_cap(days, cap.day, cap.limits), others

    def _apply(self, op: str, args: tuple[object, ...]) -> None:
        if op == "message":
            message = args[0]
            assert isinstance(message, Message)
            self.messages[message.id] = message
        elif op == "state":
            message_id, state, at, status, due = args
            stored = self.messages[str(message_id)]
            assert isinstance(state, State) and isinstance(status, int) and isinstance(at, float)
            stored.state, stored.status = state, status
            if state.is_final:
                stored.done_at = at
            self.receipt_due[str(message_id)] = bool(due)
        elif op == "segment":
            row = args[0]
            assert isinstance(row, SegmentRow)
            self.segments[(row.message_id, row.part)] = row
        elif op == "receipt":
            record = args[0]
            assert isinstance(record, ReceiptRecord)
            self.receipts[record.id] = record
        elif op == "link":
            receipt_id, message_id, part = args
            record = self.receipts[int(str(receipt_id))]
            self.receipts[record.id] = msgspec.structs.replace(record, message_id=str(message_id), part=int(str(part)))
        elif op == "delivered":
            self.receipt_due[str(args[0])] = False
            if self.delivery_handoff:
                self.delivery_handoff = {k: r for k, r in self.delivery_handoff.items() if r[0] != args[0]}
        elif op == "callback":
            pending = args[0]
            assert isinstance(pending, PendingCallback)
            self.callbacks[pending.message_id] = pending
        elif op == "callback_retry":
            message_id, attempts, next_at = args
            stored_callback = self.callbacks.get(str(message_id))
            if stored_callback is not None:
                stored_callback.attempts, stored_callback.next_at = int(str(attempts)), float(str(next_at))
        elif op == "stop":
            event = args[0]
            assert isinstance(event, StopEvent)
            self.stoplist[(event.scope, event.msisdn)] = event
            self.stoplist_log.append(event)
        elif op == "cap":
            message_id, reservation = args
            if reservation is None:
                self.cap_ledger.pop(str(message_id), None)
            else:
                assert isinstance(reservation, tuple)
                self.cap_ledger[str(message_id)] = reservation
        elif op == "handoff_receipt":
            receipt_id, worker, at = args
            self.receipt_handoff.append((int(str(receipt_id)), int(str(worker)), float(str(at))))
        elif op == "handoff_delivery":
            if all(row[0] != args[0] for row in self.delivery_handoff.values()):
                self._handoff_seq += 1
                self.delivery_handoff[self._handoff_seq] = [str(args[0]), str(args[1]), None]
        elif op == "handoff_cancel":
            self.cancel_handoff.append((str(args[0]), str(args[1]), float(str(args[2]))))
        elif op == "release_delivery":
            for row in self.delivery_handoff.values():
                if row[0] == args[0]:
                    row[2] = None
        elif op == "cap_move":
            guard = args[1]
            assert isinstance(guard, CapGuard)
            self.cap_ledger[str(args[0])] = (guard.account, guard.msisdn, guard.day)
        elif op == "callback_done":
            message_id, http_status, at = args
            self.callbacks.pop(str(message_id), None)
            self.callback_outcomes.append((str(message_id), int(str(http_status)), float(str(at))))

    async def load_open(self, ids: Sequence[str]) -> list[Message]:
        wanted = set(ids)
        return [m for m in self._open_messages() if m.id in wanted]

    async def recover(self) -> Recovery:
        open_messages = self._open_messages()
        return Recovery(
            open_messages=open_messages,
            unmatched_receipts=[r for r in self.receipts.values() if r.message_id is None],
            receipts_due=[copy.deepcopy(self.messages[i]) for i, due in self.receipt_due.items() if due],
            callbacks=[copy.deepcopy(c) for c in sorted(self.callbacks.values(), key=lambda c: c.next_at)],
            max_message_id=max(self.messages, default=None),
            max_receipt_id=max(self.receipts, default=0),
            stoplist=[key for key, event in self.stoplist.items() if event.stopped],
            cap_reservations=[(a, n, d, mid) for mid, (a, n, d) in self.cap_ledger.items()],
        )

    def _open_messages(self) -> list[Message]:
        open_messages = []
        for message in self.messages.values():
            if message.state.is_final:
                continue
            restored = copy.deepcopy(message)
            restored.smsc_ids = [None] * restored.segments
            restored.part_states = [None] * restored.segments
            for (message_id, part), row in self.segments.items():
                if message_id == message.id:
                    restored.smsc_ids[part] = row.smsc_id
            for record in sorted(self.receipts.values(), key=lambda r: r.received_at):
                if record.message_id != message.id or record.part is None or record.state not in FINAL_RECEIPT_STATES:
                    continue
                if restored.part_states[record.part] is None:  # the first final one counts, as in SQLite
                    restored.part_states[record.part] = record.state
            open_messages.append(restored)
        return open_messages

    async def find_by_client_ref(self, account: str, client_ref: str) -> str | None:
        return (await self.find_by_client_refs(account, [client_ref])).get(client_ref)

    async def find_by_client_refs(self, account: str, client_refs: list[str]) -> dict[str, str]:
        wanted = set(client_refs)
        return {m.client_ref: m.id for m in self.messages.values() if m.account == account and m.client_ref in wanted}

    async def find_message(self, message_id: str) -> MessageView | None:
        message = self.messages.get(message_id)
        if message is None:
            return None
        view = copy.deepcopy(message)
        segments = sorted((r for (m, _), r in self.segments.items() if m == message_id), key=lambda r: r.part)
        for row in segments:
            view.smsc_ids[row.part] = row.smsc_id
        receipts = [r for r in self.receipts.values() if r.message_id == message_id]
        return MessageView(message=view, segments=segments, receipts=receipts)

    async def report_rows(
        self, accounts: Sequence[str] | None, since: float, until: float, chunk: int = 5000
    ) -> AsyncIterator[list[ReportRow]]:
        first_submit: dict[str, float] = {}
        for (message_id, _), row in self.segments.items():
            first_submit[message_id] = min(row.submitted_at, first_submit.get(message_id, row.submitted_at))
        wanted = None if accounts is None else set(accounts)
        rows = [
            ReportRow(
                m.account,
                m.traffic_class.value,
                m.operator,
                m.state.value,
                m.segments,
                m.created_at,
                first_submit.get(m.id),
                m.done_at,
            )
            for _, m in sorted(self.messages.items())
            if since <= m.created_at < until and (wanted is None or m.account in wanted)
        ]
        for start in range(0, len(rows), chunk):
            yield rows[start : start + chunk]


def _message_id(op: str, args: tuple[object, ...]) -> str:
    """The id of the message a "message" or "cap" op is about."""
    return args[0].id if op == "message" and isinstance(args[0], Message) else str(args[0])
