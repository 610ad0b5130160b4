"""The store contract, run against both implementations: commits, ordering, recovery, failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smppgw.core.message import Message, State, TrafficClass
from smppgw.store.base import ReceiptRecord, SegmentRow, Store
from smppgw.store.schema import MIGRATIONS, migrate
from smppgw.store.sqlite import SqliteStore

from .helpers import committed


def make_message(i: int, segments: int = 1, **changes: object) -> Message:
    fields: dict[str, object] = {
        "id": f"{i:016x}",
        "account": "acme",
        "origin": "smpp",
        "source_addr": "MFO",
        "source_ton": 5,
        "source_npi": 0,
        "dest": "79161234567",
        "traffic_class": TrafficClass.OTP,
        "registered_delivery": True,
        "text": "Код 1234",
        "segments": segments,
        "connector": "mts",
        "operator": "mts",
        "created_at": 1000.0 + i,
        "expires_at": 90_000.0,
        "smsc_ids": [None] * segments,
        "part_states": [None] * segments,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


async def test_insert_update_in_one_group_keeps_order(store: Store) -> None:
    store.add_message(make_message(1))
    store.set_state(f"{1:016x}", State.SUBMITTING, 1.0)
    store.add_segment(SegmentRow(message_id=f"{1:016x}", part=0, connector="mts", smsc_id="A1", submitted_at=1.5))
    store.set_state(f"{1:016x}", State.DELIVERED, 2.0, receipt_due=True)
    assert await committed(store)
    view = await store.find_message(f"{1:016x}")
    assert view is not None
    assert view.message.state is State.DELIVERED
    assert view.message.smsc_ids == ["A1"]
    recovery = await store.recover()
    assert recovery.open_messages == []
    assert [m.id for m in recovery.receipts_due] == [f"{1:016x}"]


async def test_recovery_restores_open_messages_parts_and_unmatched_receipts(store: Store) -> None:
    store.add_message(make_message(1, segments=3))
    store.add_message(make_message(2))
    store.set_state(f"{1:016x}", State.SUBMITTING, 1.0)
    store.add_segment(SegmentRow(message_id=f"{1:016x}", part=0, connector="mts", smsc_id="A", submitted_at=1.0))
    store.add_segment(SegmentRow(message_id=f"{1:016x}", part=2, connector="mts", smsc_id="C", submitted_at=1.0))
    receipt = ReceiptRecord(
        id=7, connector="mts", smsc_id="A", state="DELIVERED", err="000", done_date=None, received_at=5.0e9, raw="id:A"
    )
    store.add_receipt(receipt)
    store.link_receipt(7, f"{1:016x}", 0)
    store.add_receipt(
        ReceiptRecord(
            id=8,
            connector="mts",
            smsc_id="Z",
            state="DELIVERED",
            err=None,
            done_date=None,
            received_at=5.0e9,
            raw="id:Z",
        )
    )
    assert await committed(store)
    recovery = await store.recover()
    by_id = {m.id: m for m in recovery.open_messages}
    assert by_id[f"{1:016x}"].smsc_ids == ["A", None, "C"]
    assert by_id[f"{1:016x}"].part_states == ["DELIVERED", None, None]
    assert by_id[f"{1:016x}"].state is State.SUBMITTING
    assert by_id[f"{2:016x}"].state is State.ACCEPTED
    assert [r.smsc_id for r in recovery.unmatched_receipts] == ["Z"]
    assert recovery.max_receipt_id == 8
    assert recovery.max_message_id == f"{2:016x}"


async def test_many_rows_commit_in_few_groups(store: Store) -> None:
    for i in range(5000):
        store.add_message(make_message(i))
    assert store.pending >= 5000  # one or more rows per message, depending on the implementation
    queued = store.pending
    assert await committed(store)
    assert store.pending == 0
    assert store.stats.rows == queued
    assert store.stats.batches <= 3


async def test_binary_payload_and_tlvs_survive(store: Store) -> None:
    message = make_message(3, text=None, payload=b"\x05\x00\x03\x01\x02\x01\x04\x10", esm_class=0x40,
                           tlvs=((0x020C, b"\x00\x07"),))  # fmt: skip
    store.add_message(message)
    assert await committed(store)
    view = await store.find_message(message.id)
    assert view is not None
    assert (view.message.payload, view.message.esm_class, view.message.tlvs) == (
        message.payload,
        0x40,
        ((0x020C, b"\x00\x07"),),
    )


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.sqlite3")
    first = SqliteStore(path)
    await first.open()
    first.add_message(make_message(1))
    assert await committed(first)
    await first.close()
    second = SqliteStore(path)
    await second.open()
    assert [m.id for m in (await second.recover()).open_messages] == [f"{1:016x}"]
    await second.close()


async def test_sqlite_failure_is_reported_and_nothing_acknowledged(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "gw.sqlite3"))
    await store.open()
    store.add_message(make_message(1))
    store.add_message(make_message(1))  # duplicate primary key: the whole group fails
    outcome = await committed(store)
    assert outcome is False
    assert not store.healthy
    assert await committed(store) is False
    with pytest.raises(sqlite3.IntegrityError):
        await store.close()


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    assert migrate(db) == len(MIGRATIONS)
    assert migrate(db) == len(MIGRATIONS)
    db.execute("PRAGMA user_version=99")
    with pytest.raises(RuntimeError):
        migrate(db)
