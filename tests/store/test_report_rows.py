"""``Store.report_rows`` against both implementations: live states, first submit time, range, accounts, chunks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smppgw.core.message import Message, MessageIdGenerator, State, TrafficClass
from smppgw.store.base import ReportRow, SegmentRow, Store
from smppgw.store.sqlite import _REPORT_ROWS, SqliteStore

from .helpers import committed

T0 = 1_740_787_200.0  # 2025-03-01T00:00:00Z


def make(message_id: str, created_at: float, account: str = "acme", segments: int = 1) -> Message:
    return Message(
        id=message_id,
        account=account,
        origin="http",
        source_addr="MFO",
        source_ton=5,
        source_npi=0,
        dest="79161234567",
        traffic_class=TrafficClass.OTP,
        segments=segments,
        connector="mts",
        operator="mts",
        created_at=created_at,
        expires_at=created_at + 86_400,
        smsc_ids=[None] * segments,
        part_states=[None] * segments,
    )


async def add_many(store: Store, count: int, *, start: float = T0, step: float = 60.0, account: str = "acme") -> None:
    ids = MessageIdGenerator()
    for i in range(count):
        created = start + i * step
        store.add_message(make(ids.next(int(created * 1000)), created, account))
    assert await committed(store)


async def collect(
    store: Store, accounts: list[str] | None, since: float, until: float, chunk: int = 5000
) -> list[list[ReportRow]]:
    return [chunk_rows async for chunk_rows in store.report_rows(accounts, since, until, chunk)]


def flat(chunks: list[list[ReportRow]]) -> list[ReportRow]:
    return [r for c in chunks for r in c]


async def test_rows_carry_live_state_first_submit_and_done_time(store: Store) -> None:
    ids = MessageIdGenerator()
    open_id, done_id, never_id = (ids.next(int((T0 + i) * 1000)) for i in range(3))
    store.add_message(make(open_id, T0, segments=2))
    store.add_message(make(done_id, T0 + 1))
    store.add_message(make(never_id, T0 + 2))
    store.set_state(open_id, State.SUBMITTED, T0 + 5)
    store.add_segment(SegmentRow(message_id=open_id, part=1, connector="mts", smsc_id="B", submitted_at=T0 + 3))
    store.add_segment(SegmentRow(message_id=open_id, part=0, connector="mts", smsc_id="A", submitted_at=T0 + 4))
    store.add_segment(SegmentRow(message_id=done_id, part=0, connector="mts", smsc_id="C", submitted_at=T0 + 6))
    store.set_state(done_id, State.DELIVERED, T0 + 9)
    store.set_state(never_id, State.FAILED, T0 + 7, status=0x58)
    assert await committed(store)
    rows = flat(await collect(store, ["acme"], T0, T0 + 60))
    assert rows == [
        ReportRow("acme", "otp", "mts", "submitted", 2, T0, T0 + 3, None),
        ReportRow("acme", "otp", "mts", "delivered", 1, T0 + 1, T0 + 6, T0 + 9),
        ReportRow("acme", "otp", "mts", "failed", 1, T0 + 2, None, T0 + 7),
    ]


async def test_range_is_created_at_from_inclusive_to_exclusive(store: Store) -> None:
    await add_many(store, 5)  # T0, T0+60, … T0+240
    rows = flat(await collect(store, ["acme"], T0 + 60, T0 + 180))
    assert [r.created_at for r in rows] == [T0 + 60, T0 + 120]


async def test_accounts_filter(store: Store) -> None:
    await add_many(store, 3, account="acme")
    await add_many(store, 2, start=T0 + 1, account="other")
    span = (T0, T0 + 3600)
    assert {r.account for r in flat(await collect(store, ["other"], *span))} == {"other"}
    assert len(flat(await collect(store, ["acme", "other"], *span))) == 5
    assert len(flat(await collect(store, None, *span))) == 5
    assert await collect(store, [], *span) == []
    assert await collect(store, ["nobody"], *span) == []


@pytest.mark.parametrize(("count", "sizes"), [(10, [3, 3, 3, 1]), (9, [3, 3, 3]), (2, [2]), (0, [])])
async def test_chunks_in_creation_order_without_gaps(store: Store, count: int, sizes: list[int]) -> None:
    await add_many(store, count)
    chunks = await collect(store, ["acme"], T0, T0 + 86_400, chunk=3)
    assert [len(c) for c in chunks] == sizes
    assert [r.created_at for r in flat(chunks)] == [T0 + 60 * i for i in range(count)]


async def test_an_id_ahead_of_its_clock_is_still_found(tmp_path: Path) -> None:
    """After the clock stepped back, ids run ahead of created_at: the scan looks past ``until`` for them."""
    store = SqliteStore(str(tmp_path / "gw.sqlite3"))
    await store.open()
    try:
        ahead = MessageIdGenerator().next(int((T0 + 300) * 1000))  # id of T0+5 min, created at T0+30 s
        store.add_message(make(ahead, T0 + 30))
        assert await committed(store)
        rows = flat(await collect(store, ["acme"], T0, T0 + 60))
        assert [r.created_at for r in rows] == [T0 + 30]
    finally:
        await store.close()


def test_the_scan_is_a_primary_key_range(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "plan.sqlite3")
    db.executescript(
        "CREATE TABLE messages (id TEXT PRIMARY KEY, account TEXT, traffic_class TEXT, operator TEXT, state TEXT, "
        "segments INTEGER, created_at REAL, done_at REAL) WITHOUT ROWID;"
        "CREATE TABLE open_messages (id TEXT PRIMARY KEY, state TEXT) WITHOUT ROWID;"
        "CREATE TABLE segments (message_id TEXT, part INTEGER, submitted_at REAL, PRIMARY KEY (message_id, part))"
        " WITHOUT ROWID;"
    )
    sql = _REPORT_ROWS.format(first=">=", where=" AND m.account IN (SELECT value FROM json_each(?))")
    plan = " | ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("0", "1", 0.0, 1.0, "[]", 10)))
    db.close()
    assert "SEARCH m USING PRIMARY KEY (id>? AND id<?)" in plan, plan
    assert "SCAN m" not in plan, plan
