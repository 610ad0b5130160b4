"""SQLite store: WAL, one writer thread, group commit; reads through aiosqlite on a second connection.

Writes are queued per statement and committed together by a writer task: while one transaction runs, the next group
accumulates, so the commit rate adapts to the load with no timer. Statements run in a fixed order — inserts before
updates — so a row inserted and updated in the same group is never updated first; updates of the same kind keep
their queue order. ``after_commit`` callbacks run only after COMMIT returned.

Durability: ``synchronous=NORMAL`` in WAL survives a process crash (kill -9); ``FULL`` also survives power loss.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiosqlite
import msgspec

from smppgw.core.message import Message, State, TrafficClass
from smppgw.core.policy.caps import over_cap
from smppgw.obs.logging import get_logger

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
from .bulk import BulkStatement, bulk_delete, bulk_insert, bulk_update, max_variables, supports_bulk_update
from .schema import migrate

log = get_logger("smppgw.store")

WAL_LIMIT_BYTES = 64 << 20
"""Past this size the writer checkpoints the WAL itself (see ``_bound_wal``)."""

_MESSAGE_COLUMNS = (
    "id, account, origin, source_addr, source_ton, source_npi, dest, traffic_class, priority, registered_delivery, "
    "text, payload, data_coding, esm_class, tlvs, segments, connector, operator, created_at, send_at, expires_at, "
    "client_ref, callback_url, state, status, overdue_days"
)

_QUALIFIED_COLUMNS = ", ".join(f"m.{name.strip()}" for name in _MESSAGE_COLUMNS.split(","))

# Statement order in a transaction: inserts first, then updates, then deletes (see module docstring). A message
# accepted, submitted and finished within one group is inserted, updated and deleted from open_messages in that order.
_INSERT_MESSAGE = f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({','.join('?' * 26)})"
_INSERT_OPEN = "INSERT INTO open_messages (id, state) VALUES (?, ?)"
_INSERT_SEGMENT = (
    "INSERT OR REPLACE INTO segments (message_id, part, connector, smsc_id, submitted_at) VALUES (?,?,?,?,?)"
)
_INSERT_RECEIPT = (
    "INSERT INTO receipts (id, connector, smsc_id, state, err, done_date, received_at, raw, message_id, part) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DUE = "INSERT OR IGNORE INTO receipts_due (id) VALUES (?)"
_INSERT_DELIVERY = "INSERT INTO receipt_deliveries (message_id, delivered_at) VALUES (?, ?)"
_UPDATE_OPEN = "UPDATE open_messages SET state=? WHERE id=?"
_UPDATE_FINAL = "UPDATE messages SET state=?, status=?, updated_at=?, done_at=? WHERE id=?"
_LINK_RECEIPT = "UPDATE receipts SET message_id=?, part=? WHERE id=?"
_INSERT_CALLBACK = (
    "INSERT OR REPLACE INTO callbacks (message_id, url, payload, attempts, next_at, created_at) VALUES (?,?,?,?,?,?)"
)
_RETRY_CALLBACK = "UPDATE callbacks SET attempts=?, next_at=? WHERE message_id=?"
_CALLBACK_OUTCOME = "INSERT INTO callback_outcomes (message_id, http_status, at) VALUES (?,?,?)"
_DELETE_CALLBACK = "DELETE FROM callbacks WHERE message_id=?"
_UPSERT_STOP = "INSERT OR REPLACE INTO stoplist (scope, msisdn, stopped, at, source) VALUES (?,?,?,?,?)"
_LOG_STOP = "INSERT INTO stoplist_log (scope, msisdn, stopped, at, source) VALUES (?,?,?,?,?)"
_UPSERT_CAP = "INSERT OR REPLACE INTO cap_ledger (message_id, account, msisdn, day) VALUES (?,?,?,?)"
_DELETE_CAP = "DELETE FROM cap_ledger WHERE message_id=?"
_DELETE_OPEN = "DELETE FROM open_messages WHERE id=?"
_DELETE_DUE = "DELETE FROM receipts_due WHERE id=?"
_HANDOFF_RECEIPT = "INSERT INTO receipt_handoff (receipt_id, worker, at) VALUES (?,?,?)"
_HANDOFF_DELIVERY = "INSERT OR IGNORE INTO delivery_handoff (message_id, account) VALUES (?,?)"
_RELEASE_DELIVERY = "UPDATE delivery_handoff SET claimed_by=? WHERE message_id=?"
_DELETE_DELIVERY_HANDOFF = "DELETE FROM delivery_handoff WHERE message_id=?"
_HANDOFF_CANCEL = "INSERT INTO cancel_handoff (message_id, account, at) VALUES (?,?,?)"
_PRUNE_HANDOFFS = "DELETE FROM receipt_handoff WHERE at < ?"
_PRUNE_CANCELS = "DELETE FROM cancel_handoff WHERE at < ?"
_ROW_BY_ROW = frozenset({_PRUNE_HANDOFFS, _PRUNE_CANCELS})
_GUARDED = frozenset({_INSERT_MESSAGE, _INSERT_OPEN, _UPSERT_CAP})  # a refused message's rows (first column: its id)
_ORDER = (
    _INSERT_MESSAGE,
    _INSERT_OPEN,
    _INSERT_SEGMENT,
    _INSERT_RECEIPT,
    _HANDOFF_RECEIPT,  # after its receipt: a reader joining the two never sees one without the other
    _HANDOFF_DELIVERY,
    _HANDOFF_CANCEL,
    _INSERT_DUE,
    _INSERT_DELIVERY,
    _INSERT_CALLBACK,
    _CALLBACK_OUTCOME,
    _UPSERT_STOP,  # one statement for stop and release, so changes of one number keep their order
    _LOG_STOP,
    _UPSERT_CAP,
    _UPDATE_OPEN,
    _UPDATE_FINAL,
    _LINK_RECEIPT,
    _RELEASE_DELIVERY,
    _RETRY_CALLBACK,
    _DELETE_OPEN,
    _DELETE_DUE,
    _DELETE_CALLBACK,
    _DELETE_CAP,
    _DELETE_DELIVERY_HANDOFF,
    _PRUNE_HANDOFFS,
    _PRUNE_CANCELS,
)

_REPORT_ROWS = (
    "SELECT m.id, m.account, m.traffic_class, m.operator, coalesce(o.state, m.state), m.segments, m.created_at, "
    "(SELECT min(s.submitted_at) FROM segments s WHERE s.message_id = m.id), m.done_at "
    "FROM messages m LEFT JOIN open_messages o ON o.id = m.id "
    "WHERE m.id {first} ? AND m.id < ? AND m.created_at >= ? AND m.created_at < ?{where} ORDER BY m.id LIMIT ?"
)
_ID_CLOCK_SLACK = 600.0
"""Seconds an id may run ahead of its message's created_at: ids stay increasing when the clock steps back or
4,096 ids are taken in one millisecond, so the scan looks this far past ``until`` (created_at decides)."""


def _report_id_range(since: float, until: float) -> tuple[str, str]:
    """The id range holding every message created in ``[since, until)``: an id is never below its creation
    millisecond × 4096 (``MessageIdGenerator``), and at most ``_ID_CLOCK_SLACK`` above it."""
    top = 16**16 - 1

    def at(seconds: float) -> str:
        return f"{min(top, max(0, int(seconds * 1000) << 12)):016x}"

    return at(since), at(until + _ID_CLOCK_SLACK)


_UPDATES: dict[str, tuple[str, tuple[str, ...], str]] = {
    _UPDATE_OPEN: ("open_messages", ("state",), "id"),
    _UPDATE_FINAL: ("messages", ("state", "status", "updated_at", "done_at"), "id"),
    _LINK_RECEIPT: ("receipts", ("message_id", "part"), "id"),
    _RETRY_CALLBACK: ("callbacks", ("attempts", "next_at"), "message_id"),
    _RELEASE_DELIVERY: ("delivery_handoff", ("claimed_by",), "message_id"),
}
_DELETES: dict[str, tuple[str, str]] = {
    _DELETE_OPEN: ("open_messages", "id"),
    _DELETE_DUE: ("receipts_due", "id"),
    _DELETE_CALLBACK: ("callbacks", "message_id"),
    _DELETE_CAP: ("cap_ledger", "message_id"),
    _DELETE_DELIVERY_HANDOFF: ("delivery_handoff", "message_id"),
}


def _bulk_statements(db: sqlite3.Connection) -> dict[str, BulkStatement]:
    """The multi-row form of every queued statement (see ``bulk``); updates stay row by row before SQLite 3.33."""
    limit = max_variables(db)
    bulk: dict[str, BulkStatement] = {}
    for sql in _ORDER:
        if sql in _ROW_BY_ROW:
            continue
        if sql in _UPDATES:
            if supports_bulk_update():
                table, columns, key = _UPDATES[sql]
                bulk[sql] = bulk_update(table, columns, key, max_variables=limit)
        elif sql in _DELETES:
            bulk[sql] = bulk_delete(*_DELETES[sql], max_variables=limit)
        else:
            bulk[sql] = bulk_insert(sql[: sql.index("VALUES") + 7], sql.count("?"), max_variables=limit)
    return bulk


_TEXT: dict[State | TrafficClass, str] = {member: member.value for member in (*State, *TrafficClass)}
"""Plain text of the enum members stored in rows (``.value`` on an Enum member costs ~0.16 µs)."""

_TLVS = msgspec.msgpack.Encoder()
_TLVS_DECODE = msgspec.msgpack.Decoder(tuple[tuple[int, bytes], ...])


def _message_row(m: Message) -> tuple[Any, ...]:
    return (
        m.id,
        m.account,
        m.origin,
        m.source_addr,
        m.source_ton,
        m.source_npi,
        m.dest,
        _TEXT[m.traffic_class],
        m.priority,
        int(m.registered_delivery),
        m.text,
        m.payload,
        m.data_coding,
        m.esm_class,
        _TLVS.encode(m.tlvs) if m.tlvs else None,
        m.segments,
        m.connector,
        m.operator,
        m.created_at,
        m.send_at,
        m.expires_at,
        m.client_ref,
        m.callback_url,
        _TEXT[m.state],
        m.status,
        m.overdue_days,
    )


def _message_from_row(row: Sequence[Any]) -> Message:
    (id_, account, origin, source_addr, source_ton, source_npi, dest, traffic_class, priority, registered_delivery,
     text, payload, data_coding, esm_class, tlvs, segments, connector, operator, created_at, send_at, expires_at,
     client_ref, callback_url, state, status, overdue_days) = row  # fmt: skip
    return Message(
        id=id_,
        account=account,
        origin=origin,
        source_addr=source_addr,
        source_ton=source_ton,
        source_npi=source_npi,
        dest=dest,
        traffic_class=TrafficClass(traffic_class),
        priority=priority,
        registered_delivery=bool(registered_delivery),
        text=text,
        payload=payload,
        data_coding=data_coding,
        esm_class=esm_class,
        tlvs=_TLVS_DECODE.decode(tlvs) if tlvs else (),
        segments=segments,
        connector=connector,
        operator=operator,
        created_at=created_at,
        send_at=send_at,
        expires_at=expires_at,
        client_ref=client_ref,
        callback_url=callback_url,
        state=State(state),
        status=status,
        overdue_days=overdue_days,
        smsc_ids=[None] * segments,
        part_states=[None] * segments,
    )


def _receipt_from_row(row: Sequence[Any]) -> ReceiptRecord:
    id_, connector, smsc_id, state, err, done_date, received_at, raw, message_id, part = row
    return ReceiptRecord(
        id=id_,
        connector=connector,
        smsc_id=smsc_id,
        state=state,
        err=err,
        done_date=done_date,
        received_at=received_at,
        raw=raw,
        message_id=message_id,
        part=part,
    )


class SqliteStore:
    """The default store. ``open`` migrates the schema; ``close`` commits what is queued."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "normal",
        unmatched_receipt_ttl: float = 86_400.0,
        commit_interval: float = 0.002,
        max_batch: int = 2000,
        shared: bool = False,
    ) -> None:
        self.path = path
        # Several processes write this file (``--workers``): their writers take turns on an flock first. SQLite's own
        # busy handler polls with sleeps of 1, 2, 5, ... 100 ms; a blocked flock wakes the moment it is released.
        self._lock_path = path + "-writer.lock" if shared else None
        self._lock_fd: int | None = None
        self.commit_interval = commit_interval
        self.max_batch = max_batch
        self._last_commit = 0.0
        self.synchronous = synchronous.upper()
        self.unmatched_receipt_ttl = unmatched_receipt_ttl
        self.stats = StoreStats()
        self._queues: dict[str, list[tuple[Any, ...]]] = {sql: [] for sql in _ORDER}
        self._callbacks: list[CommitCallback] = []
        self._guards: list[tuple[str, str, CommitGuard]] = []  # (message id, account, guard)
        self.refusals: dict[str, Refusal] = {}
        self._pending = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smppgw-store")
        self._writer_db: sqlite3.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._wakeup: asyncio.Event | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._closing = False
        self._failed: BaseException | None = None
        self._bulk: dict[str, BulkStatement] = {}
        self._checkpoint_task: asyncio.Task[None] | None = None
        self.checkpoint_interval = 1.0  # seconds between background WAL checkpoints
        self._wal_path = path + "-wal"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer_db = await loop.run_in_executor(self._executor, self._open_writer)
        self._reader = await aiosqlite.connect(self.path)
        await self._reader.execute("PRAGMA query_only=1")
        self._wakeup = asyncio.Event()
        self._writer_task = asyncio.create_task(self._write_loop(), name="store-writer")
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="store-checkpoint")

    def _open_writer(self) -> sqlite3.Connection:
        if self._lock_path is not None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=1024)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        # No checkpoint inside a commit (it copies pages back and syncs the file: tens of ms added to the
        # acknowledgements of that group); a separate connection checkpoints in the background instead.
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the WAL file is truncated back to this
        with self._turn():  # another worker may be writing (or migrating) right now
            migrate(db)
        self._bulk = _bulk_statements(db)
        return db

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database every ``checkpoint_interval`` from its own connection and thread
        (PASSIVE: never blocks the writer or readers), so the WAL stays small without a commit ever paying."""
        loop = asyncio.get_running_loop()
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smppgw-checkpoint")
        db = await loop.run_in_executor(executor, lambda: sqlite3.connect(self.path, check_same_thread=False))
        try:
            while not self._closing:
                await asyncio.sleep(self.checkpoint_interval)
                try:
                    await loop.run_in_executor(executor, db.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except Exception as exc:  # busy or I/O: the next turn tries again; the writer bounds the WAL anyway
                    log.warning("checkpoint_failed", error=repr(exc))
        finally:
            await loop.run_in_executor(executor, db.close)
            executor.shutdown(wait=False)

    async def close(self) -> None:
        self._closing = True
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
        if self._wakeup is not None:
            self._wakeup.set()
        failure: BaseException | None = None
        if self._writer_task is not None:
            try:
                await self._writer_task
            except Exception as exc:  # reported after every resource is released
                failure = exc
        if self._reader is not None:
            await self._reader.close()
        if self._writer_db is not None:
            db = self._writer_db
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if failure is not None:
            raise failure

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def healthy(self) -> bool:
        return self._failed is None and self._writer_task is not None and not self._writer_task.done()

    # ------------------------------------------------------------------ queued writes

    def _queue(self, sql: str, row: tuple[Any, ...]) -> None:
        self._queues[sql].append(row)
        self._pending += 1
        if self._pending == 1 and self._wakeup is not None:
            self._wakeup.set()

    def add_message(self, message: Message, guard: CommitGuard | None = None) -> None:
        if guard is not None:
            self._guards.append((message.id, message.account, guard))
        self._queue(_INSERT_MESSAGE, _message_row(message))
        self._queue(_INSERT_OPEN, (message.id, _TEXT[message.state]))

    def set_state(
        self, message_id: str, state: State, at: float, *, status: int = 0, receipt_due: bool = False
    ) -> None:
        if not state.is_final:
            self._queue(_UPDATE_OPEN, (_TEXT[state], message_id))
            return
        self._queue(_UPDATE_FINAL, (_TEXT[state], status, at, at, message_id))
        self._queue(_DELETE_OPEN, (message_id,))
        if receipt_due:
            self._queue(_INSERT_DUE, (message_id,))

    def add_segment(self, row: SegmentRow) -> None:
        self._queue(_INSERT_SEGMENT, (row.message_id, row.part, row.connector, row.smsc_id, row.submitted_at))

    def add_receipt(self, record: ReceiptRecord) -> None:
        r = record
        self._queue(
            _INSERT_RECEIPT,
            (r.id, r.connector, r.smsc_id, r.state, r.err, r.done_date, r.received_at, r.raw, r.message_id, r.part),
        )

    def link_receipt(self, receipt_id: int, message_id: str, part: int) -> None:
        self._queue(_LINK_RECEIPT, (message_id, part, receipt_id))

    def receipt_delivered(self, message_id: str, at: float) -> None:
        self._queue(_INSERT_DELIVERY, (message_id, at))
        self._queue(_DELETE_DUE, (message_id,))
        if self._lock_fd is not None:  # it may have been left for another worker: its lease ends
            self._queue(_DELETE_DELIVERY_HANDOFF, (message_id,))

    def receipt_abandoned(self, message_id: str) -> None:
        self._queue(_DELETE_DUE, (message_id,))
        if self._lock_fd is not None:
            self._queue(_DELETE_DELIVERY_HANDOFF, (message_id,))

    def add_callback(self, callback: PendingCallback) -> None:
        c = callback
        self._queue(_INSERT_CALLBACK, (c.message_id, c.url, c.payload, c.attempts, c.next_at, c.created_at))

    def callback_retry(self, message_id: str, attempts: int, next_at: float) -> None:
        self._queue(_RETRY_CALLBACK, (attempts, next_at, message_id))

    def callback_done(self, message_id: str, http_status: int, at: float) -> None:
        self._queue(_CALLBACK_OUTCOME, (message_id, http_status, at))
        self._queue(_DELETE_CALLBACK, (message_id,))

    def stop_change(self, event: StopEvent) -> None:
        row = (event.scope, int(event.msisdn), int(event.stopped), event.at, event.source)
        self._queue(_UPSERT_STOP, row)
        self._queue(_LOG_STOP, row)

    def cap_reserve(self, message_id: str, account: str, msisdn: str, day: int) -> None:
        self._queue(_UPSERT_CAP, (message_id, account, msisdn, day))

    def cap_release(self, message_id: str) -> None:
        self._queue(_DELETE_CAP, (message_id,))

    def cap_move(self, message_id: str, guard: CapGuard) -> None:
        self._guards.append((message_id, guard.account, CommitGuard(cap=guard, move=True)))
        self._queue(_UPSERT_CAP, (message_id, guard.account, guard.msisdn, guard.day))

    def handoff_receipt(self, receipt_id: int, worker: int, at: float) -> None:
        self._queue(_HANDOFF_RECEIPT, (receipt_id, worker, at))

    def handoff_delivery(self, message_id: str, account: str) -> None:
        self._queue(_HANDOFF_DELIVERY, (message_id, account))

    def release_delivery(self, message_id: str) -> None:
        self._queue(_RELEASE_DELIVERY, (None, message_id))

    def handoff_cancel(self, message_id: str, account: str, at: float) -> None:
        self._queue(_HANDOFF_CANCEL, (message_id, account, at))

    def prune_handoffs(self, before: float) -> None:
        self._queue(_PRUNE_HANDOFFS, (before,))
        self._queue(_PRUNE_CANCELS, (before,))

    def after_commit(self, callback: CommitCallback) -> None:
        if self._failed is not None:
            asyncio.get_running_loop().call_soon(callback, False)
            return
        self._callbacks.append(callback)
        if self._wakeup is not None:
            self._wakeup.set()

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending and not self._callbacks:
                if self._closing:
                    return
                continue
            # Group commit: a small group waits until commit_interval after the previous commit so that one
            # transaction carries many rows (fewer, larger transactions); a full group or a close goes at once.
            wait = self._last_commit + self.commit_interval - time.perf_counter()
            if wait > 0 and self._pending < self.max_batch and not self._closing:
                await asyncio.sleep(wait)
            queues, callbacks, rows, guards = self._queues, self._callbacks, self._pending, self._guards
            self._queues = {sql: [] for sql in _ORDER}
            self._callbacks = []
            self._guards = []
            self._pending = 0
            started = self._last_commit = time.perf_counter()
            try:
                if rows:
                    refused = await loop.run_in_executor(self._executor, self._write_batch, queues, guards)
                    self.refusals.update(refused)
            except Exception as exc:  # disk full, I/O error, corruption: stop acknowledging anything
                self._failed = exc
                self.stats.failures += 1
                _run_callbacks(callbacks, ok=False)
                raise
            self.stats.batches += 1
            self.stats.rows += rows
            self.stats.last_batch_rows = rows
            self.stats.commit_seconds += time.perf_counter() - started
            _run_callbacks(callbacks, ok=True)
            if self._pending or self._callbacks or self._closing:
                self._wakeup.set()  # more to write, or closing: the next turn returns once nothing is left

    def _write_batch(
        self, queues: dict[str, list[tuple[Any, ...]]], guards: list[tuple[str, str, CommitGuard]]
    ) -> dict[str, Refusal]:
        db = self._writer_db
        assert db is not None
        with self._turn():
            return self._write_batch_locked(db, queues, guards)

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This writer's turn among the processes sharing the file (nothing to wait for when alone)."""
        fd = self._lock_fd
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _write_batch_locked(
        self,
        db: sqlite3.Connection,
        queues: dict[str, list[tuple[Any, ...]]],
        guards: list[tuple[str, str, CommitGuard]],
    ) -> dict[str, Refusal]:
        db.execute("BEGIN IMMEDIATE")  # the write lock first: other worker processes may share the file
        refused: dict[str, Refusal] = {}
        try:
            if guards:
                refused = _check_guards(db, guards)
                if refused:
                    ids = {key.removeprefix(MOVE) for key in refused}
                    for sql in _GUARDED:
                        queues[sql] = [row for row in queues[sql] if row[0] not in ids]
            for sql in _ORDER:
                rows = queues[sql]
                if rows:
                    bulk = self._bulk.get(sql)
                    if bulk is not None and len(rows) > 1:
                        bulk.run(db, rows)
                    else:
                        db.executemany(sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._bound_wal(db)
        return refused

    def _claim_deliveries(self, accounts: Sequence[str], worker: int, limit: int) -> list[str]:
        """Lease receipts left for ``accounts`` to ``worker`` in one write transaction: no other process can take the
        same; the row stays until the receipt is delivered or abandoned, or the lease is given back."""
        db = self._writer_db
        assert db is not None
        marks = ",".join("?" * len(accounts))
        with self._turn():
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    f"SELECT seq, message_id FROM delivery_handoff WHERE account IN ({marks}) AND claimed_by IS NULL "
                    "ORDER BY seq LIMIT ?",
                    (*accounts, limit),
                ).fetchall()
                if rows:
                    marks = ",".join("?" * len(rows))
                    db.execute(
                        f"UPDATE delivery_handoff SET claimed_by=? WHERE seq IN ({marks})",
                        [worker, *(r[0] for r in rows)],
                    )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return [str(r[1]) for r in rows]

    def _release_claims(self, worker: int, workers: int) -> None:
        db = self._writer_db
        assert db is not None
        with self._turn():
            db.execute(
                "UPDATE delivery_handoff SET claimed_by=NULL WHERE claimed_by=? OR claimed_by>=?", (worker, workers)
            )

    def _bound_wal(self, db: sqlite3.Connection) -> None:
        """The background checkpoints run while this writer keeps committing, so they never copy the last frames and
        the WAL would never start over: past ``WAL_LIMIT_BYTES`` the writer checkpoints itself, between transactions
        (most frames are already copied), and its next transaction restarts the WAL from the beginning."""
        try:
            size = os.stat(self._wal_path).st_size
        except OSError:
            return
        if size > WAL_LIMIT_BYTES:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.stats.wal_checkpoints += 1

    # ------------------------------------------------------------------ reads

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One query, executed and read to the end in one step on the reader's thread. (As an execute, then a fetch,
        another coroutine's query ran in between while this statement was open, i.e. inside its read snapshot: under
        concurrent reads the connection never left an old snapshot and missed rows other processes had committed.)"""
        assert self._reader is not None
        return list(await self._reader.execute_fetchall(sql, params))

    async def recover(self) -> Recovery:
        """Everything a restart must resume. Reads are consistent: the writer has committed what it had."""
        messages = await self._open_messages()
        unmatched = [
            _receipt_from_row(row)
            for row in await self._fetchall(
                "SELECT id, connector, smsc_id, state, err, done_date, received_at, raw, message_id, part "
                "FROM receipts WHERE message_id IS NULL AND received_at > ? ORDER BY id",
                (time.time() - self.unmatched_receipt_ttl,),
            )
        ]
        due = [
            _message_from_row(row)
            for row in await self._fetchall(
                f"SELECT {_QUALIFIED_COLUMNS} FROM receipts_due d JOIN messages m ON m.id = d.id ORDER BY d.id"
            )
        ]
        callbacks = [
            PendingCallback(message_id=r[0], url=r[1], payload=r[2], attempts=r[3], next_at=r[4], created_at=r[5])
            for r in await self._fetchall(
                "SELECT message_id, url, payload, attempts, next_at, created_at FROM callbacks ORDER BY next_at"
            )
        ]
        stoplist = [
            (scope, str(msisdn))
            for scope, msisdn in await self._fetchall("SELECT scope, msisdn FROM stoplist WHERE stopped = 1")
        ]
        reservations = [
            (account, msisdn, int(day), message_id)
            for message_id, account, msisdn, day in await self._fetchall(
                "SELECT message_id, account, msisdn, day FROM cap_ledger"
            )
        ]
        (max_id,) = (await self._fetchall("SELECT max(id) FROM messages"))[0]
        (max_receipt,) = (await self._fetchall("SELECT coalesce(max(id), 0) FROM receipts"))[0]
        return Recovery(
            open_messages=messages,
            unmatched_receipts=unmatched,
            receipts_due=due,
            callbacks=callbacks,
            max_message_id=max_id,
            max_receipt_id=int(max_receipt),
            stoplist=stoplist,
            cap_reservations=reservations,
        )

    async def receipt_handoffs(self, after: int, limit: int = 1000) -> list[HandedReceipt]:
        return [
            HandedReceipt(row[0], row[1], _receipt_from_row(row[2:]))
            for row in await self._fetchall(
                "SELECT h.seq, h.worker, r.id, r.connector, r.smsc_id, r.state, r.err, r.done_date, r.received_at, "
                "r.raw, r.message_id, r.part FROM receipt_handoff h JOIN receipts r ON r.id = h.receipt_id "
                "WHERE h.seq > ? ORDER BY h.seq LIMIT ?",
                (after, limit),
            )
        ]

    async def cancel_handoffs(self, after: int, limit: int = 1000) -> list[tuple[int, str, str, float]]:
        return [
            (int(seq), str(message_id), str(account), float(at))
            for seq, message_id, account, at in await self._fetchall(
                "SELECT seq, message_id, account, at FROM cancel_handoff WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]

    async def last_cancel_handoff(self) -> int:
        return int((await self._fetchall("SELECT coalesce(max(seq), 0) FROM cancel_handoff"))[0][0])

    async def last_handoff(self) -> int:
        return int((await self._fetchall("SELECT coalesce(max(seq), 0) FROM receipt_handoff"))[0][0])

    async def claim_deliveries(self, accounts: Sequence[str], worker: int, limit: int = 500) -> list[Message]:
        if not accounts or self._failed is not None:
            return []
        marks = ",".join("?" * len(accounts))
        waiting = await self._fetchall(  # a read first: no write lock taken while nothing waits
            f"SELECT 1 FROM delivery_handoff WHERE account IN ({marks}) AND claimed_by IS NULL LIMIT 1", accounts
        )
        if not waiting:
            return []
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(self._executor, self._claim_deliveries, list(accounts), worker, limit)
        if not ids:
            return []
        try:
            rows = await self._fetchall(
                f"SELECT {_QUALIFIED_COLUMNS}, m.done_at FROM receipts_due d JOIN messages m ON m.id = d.id "
                f"WHERE d.id IN ({','.join('?' * len(ids))}) ORDER BY d.id",
                ids,
            )
        except BaseException:  # the leases were taken: give them back, or nobody would deliver those receipts
            for message_id in ids:
                self._queue(_RELEASE_DELIVERY, (None, message_id))
            raise
        messages = []
        for row in rows:
            message = _message_from_row(row[:-1])
            message.done_at = row[-1]
            messages.append(message)
        for gone in set(ids).difference(m.id for m in messages):  # no longer owed (delivered meanwhile)
            self._queue(_DELETE_DELIVERY_HANDOFF, (gone,))
        return messages

    async def release_claims(self, worker: int, workers: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._release_claims, worker, workers)

    async def stop_changes(self, after: int, limit: int = 1000) -> list[StopChange]:
        return [
            StopChange(seq, scope, str(msisdn), bool(stopped))
            for seq, scope, msisdn, stopped in await self._fetchall(
                "SELECT rowid, scope, msisdn, stopped FROM stoplist_log WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            )
        ]

    async def last_stop_change(self) -> int:
        return int((await self._fetchall("SELECT coalesce(max(rowid), 0) FROM stoplist_log"))[0][0])

    async def _open_messages(self, ids: Sequence[str] | None = None) -> list[Message]:
        """Open messages (all, or those of ``ids``) with the SMSC ids of their parts and the states of the parts
        whose receipts came."""
        where, params = ("", ()) if ids is None else (f" WHERE o.id IN ({','.join('?' * len(ids))})", tuple(ids))
        messages = [
            _message_from_row(row)
            for row in await self._fetchall(
                f"SELECT {_QUALIFIED_COLUMNS.replace('m.state', 'o.state')} "
                f"FROM open_messages o JOIN messages m ON m.id = o.id{where} ORDER BY o.id",
                params,
            )
        ]
        by_id = {m.id: m for m in messages}
        for message_id, part, smsc_id in await self._fetchall(
            "SELECT s.message_id, s.part, s.smsc_id FROM open_messages o JOIN segments s ON s.message_id = o.id"
            + where,
            params,
        ):
            message = by_id.get(message_id)
            if message is not None and 0 <= part < len(message.smsc_ids):
                message.smsc_ids[part] = smsc_id
        for message_id, part, state in await self._fetchall(
            f"SELECT r.message_id, r.part, r.state FROM open_messages o JOIN receipts r ON r.message_id = o.id{where} "
            "ORDER BY r.received_at, r.id",  # arrival order (ids are strided per worker)
            params,
        ):
            message = by_id.get(message_id)
            if message is None or part is None or not 0 <= part < len(message.part_states):
                continue
            if state in FINAL_RECEIPT_STATES and message.part_states[part] is None:  # the first final one counts
                message.part_states[part] = state
        return messages

    async def load_open(self, ids: Sequence[str]) -> list[Message]:
        found: list[Message] = []
        for start in range(0, len(ids), 300):  # three IN lists of up to 300 per query stay far below the limits
            found.extend(await self._open_messages(ids[start : start + 300]))
        return found

    async def stop_history(self, msisdn: str) -> list[StopEvent]:
        return [
            StopEvent(scope=scope, msisdn=msisdn, stopped=bool(stopped), at=at, source=source)
            for scope, stopped, at, source in await self._fetchall(
                "SELECT scope, stopped, at, source FROM stoplist_log WHERE msisdn = ? ORDER BY rowid", (int(msisdn),)
            )
        ]

    async def find_by_client_ref(self, account: str, client_ref: str) -> str | None:
        return (await self.find_by_client_refs(account, [client_ref])).get(client_ref)

    async def find_by_client_refs(self, account: str, client_refs: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(client_refs), 500):  # SQLite's default limit on host parameters is 999
            chunk = client_refs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for ref, message_id in await self._fetchall(
                f"SELECT client_ref, id FROM messages WHERE account=? AND client_ref IN ({marks})", (account, *chunk)
            ):
                found[str(ref)] = str(message_id)
        return found

    async def find_message(self, message_id: str) -> MessageView | None:
        rows = await self._fetchall(
            f"SELECT {_QUALIFIED_COLUMNS.replace('m.state', 'coalesce(o.state, m.state)')}, m.done_at "
            "FROM messages m LEFT JOIN open_messages o ON o.id = m.id WHERE m.id=?",
            (message_id,),
        )
        if not rows:
            return None
        message = _message_from_row(rows[0][:-1])
        message.done_at = rows[0][-1]
        segments = [
            SegmentRow(message_id=r[0], part=r[1], connector=r[2], smsc_id=r[3], submitted_at=r[4])
            for r in await self._fetchall(
                "SELECT message_id, part, connector, smsc_id, submitted_at FROM segments WHERE message_id=? "
                "ORDER BY part",
                (message_id,),
            )
        ]
        receipts = [
            _receipt_from_row(r)
            for r in await self._fetchall(
                "SELECT id, connector, smsc_id, state, err, done_date, received_at, raw, message_id, part "
                "FROM receipts WHERE message_id=? ORDER BY id",
                (message_id,),
            )
        ]
        for segment in segments:
            message.smsc_ids[segment.part] = segment.smsc_id
        return MessageView(message=message, segments=segments, receipts=receipts)

    async def report_rows(
        self, accounts: Sequence[str] | None, since: float, until: float, chunk: int = 5000
    ) -> AsyncIterator[list[ReportRow]]:
        """Keyset pages over the primary key: ids encode the creation time (see ``_report_id_range``), so the
        scan touches only the period's rows; each page is one short read, letting other reads interleave."""
        low, high = _report_id_range(since, until)
        where = "" if accounts is None else " AND m.account IN (SELECT value FROM json_each(?))"
        names = () if accounts is None else (msgspec.json.encode(list(accounts)).decode(),)
        first, after = ">=", low
        while True:
            rows = await self._fetchall(
                _REPORT_ROWS.format(first=first, where=where), (after, high, since, until, *names, chunk)
            )
            if rows:
                yield [ReportRow(*row[1:]) for row in rows]
            if len(rows) < chunk:
                return
            first, after = ">", rows[-1][0]


def _check_guards(db: sqlite3.Connection, guards: list[tuple[str, str, CommitGuard]]) -> dict[str, Refusal]:
    """Inside the batch's write transaction: the guarded messages whose key another message already has, or whose
    cap slot every process's committed reservations (and this batch's earlier ones) already fill; and the cap moves
    that would overfill their new day (keyed ``MOVE + id``)."""
    refused: dict[str, Refusal] = {}
    keys: dict[tuple[str, str], str] = {}
    taken: dict[tuple[str, str], list[int]] = {}
    for message_id, account, guard in guards:
        key = MOVE + message_id if guard.move else message_id
        if guard.client_ref is not None:
            ref = (account, guard.client_ref)
            row = db.execute("SELECT id FROM messages WHERE account=? AND client_ref=?", ref).fetchone()
            existing = str(row[0]) if row is not None else keys.get(ref)
            if existing is not None:
                refused[key] = Refusal("duplicate", existing)
                continue
        cap = guard.cap
        if cap is not None:
            recipient = (cap.account, cap.msisdn)
            others = [
                (str(other), int(day))
                for other, day in db.execute(
                    "SELECT message_id, day FROM cap_ledger WHERE account=? AND msisdn=? AND message_id<>?",
                    (*recipient, message_id),
                )
            ]
            error = over_cap([day for _, day in others] + taken.get(recipient, []), cap.day, cap.limits)
            if error is not None:
                refused[key] = Refusal("cap_exceeded", str(error), tuple(others))
                continue
            taken.setdefault(recipient, []).append(cap.day)
        if guard.client_ref is not None:
            keys[(account, guard.client_ref)] = message_id
    return refused


def _run_callbacks(callbacks: list[CommitCallback], *, ok: bool) -> None:
    for callback in callbacks:
        callback(ok)
