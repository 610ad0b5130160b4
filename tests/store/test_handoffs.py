"""What worker processes share through the store: guarded commits, receipt announcements, receipts left for another
worker's upstream session, the stop-list log. Each runs on both stores; the cross-process cases open two SQLite
stores on one file (two writers, as two worker processes would)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from smppgw.core.message import State, TrafficClass
from smppgw.core.policy.caps import CapLimits
from smppgw.store.base import CapGuard, CommitGuard, ReceiptRecord, StopEvent, Store
from smppgw.store.sqlite import SqliteStore

from .helpers import committed
from .test_store import make_message

DAY = date(2026, 11, 23).toordinal()
ONE_A_DAY = CapLimits(1, 4, 16)


def _receipt(receipt_id: int, smsc_id: str) -> ReceiptRecord:
    return ReceiptRecord(
        id=receipt_id, connector="mts", smsc_id=smsc_id, state="DELIVRD", err=None, done_date=None,
        received_at=1000.0, raw="id:x stat:DELIVRD",
    )  # fmt: skip


def _cap(day: int = DAY) -> CommitGuard:
    return CommitGuard(cap=CapGuard(account="acme", msisdn="79161234567", day=day, limits=ONE_A_DAY))


async def test_a_taken_idempotency_key_refuses_the_second_message(store: Store) -> None:
    store.add_message(make_message(1, client_ref="k1"), CommitGuard(client_ref="k1"))
    assert await committed(store)
    store.add_message(make_message(2, client_ref="k1"), CommitGuard(client_ref="k1"))
    store.add_message(make_message(3, client_ref="k2"), CommitGuard(client_ref="k2"))
    store.add_message(make_message(4, client_ref="k2"), CommitGuard(client_ref="k2"))  # twin in the same batch
    assert await committed(store)
    assert store.refusals.pop(make_message(2).id).detail == make_message(1).id
    assert store.refusals.pop(make_message(4).id).code == "duplicate"
    assert store.refusals == {}
    assert await store.find_message(make_message(2).id) is None
    assert await store.find_message(make_message(3).id) is not None
    recovered = {m.id for m in (await store.recover()).open_messages}
    assert recovered == {make_message(1).id, make_message(3).id}


async def test_a_full_cap_day_refuses_and_leaves_no_reservation(store: Store) -> None:
    first, second, later = make_message(1, traffic_class=TrafficClass.COLLECTION), make_message(2), make_message(3)
    for message, guard in ((first, _cap()), (second, _cap()), (later, _cap(DAY + 1))):
        store.cap_reserve(message.id, "acme", "79161234567", guard.cap.day if guard.cap else 0)
        store.add_message(message, guard)
    assert await committed(store)
    assert set(store.refusals) == {second.id}
    assert store.refusals[second.id].code == "cap_exceeded"
    reservations = {r[3] for r in (await store.recover()).cap_reservations}
    assert reservations == {first.id, later.id}


async def test_receipt_announcements_come_in_commit_order_after_a_cursor(store: Store) -> None:
    start = await store.last_handoff()
    for i in (5, 3, 9):  # ids are strided per worker: not in commit order
        store.add_receipt(_receipt(i, f"S{i}"))
        store.handoff_receipt(i, worker=i % 2, at=1000.0)
        assert await committed(store)
    handed = await store.receipt_handoffs(start)
    assert [h.record.id for h in handed] == [5, 3, 9]
    assert [h.worker for h in handed] == [1, 1, 1]
    assert await store.receipt_handoffs(handed[1].seq) == handed[2:]
    assert await store.last_handoff() == handed[-1].seq


async def _owed(store: Store, i: int) -> str:
    message = make_message(i)
    store.add_message(message)
    store.set_state(message.id, State.DELIVERED, 1001.0, receipt_due=True)
    store.handoff_delivery(message.id, "acme")
    assert await committed(store)
    return message.id


async def test_a_receipt_left_for_an_account_is_taken_once(store: Store) -> None:
    owed = await _owed(store, 1)
    store.handoff_delivery(owed, "acme")  # left again (the owner restarted): still one
    assert await committed(store)
    assert await store.claim_deliveries(["other"], 1) == []
    taken = await store.claim_deliveries(["acme"], 1)
    assert [m.id for m in taken] == [owed] and taken[0].state is State.DELIVERED
    assert taken[0].done_at == 1001.0
    assert await store.claim_deliveries(["acme"], 2) == []
    store.handoff_delivery(owed, "acme")  # the owner leaves it again while worker 1 holds it: still nobody else's
    assert await committed(store)
    assert await store.claim_deliveries(["acme"], 2) == []


async def test_a_lease_given_back_or_of_a_restarted_worker_is_taken_again(store: Store) -> None:
    owed = await _owed(store, 1)
    assert [m.id for m in await store.claim_deliveries(["acme"], 1)] == [owed]
    store.release_delivery(owed)  # worker 1 lost its session
    assert await committed(store)
    assert [m.id for m in await store.claim_deliveries(["acme"], 2)] == [owed]
    await store.release_claims(2, 3)  # worker 2 starts again: what it held is free
    assert [m.id for m in await store.claim_deliveries(["acme"], 0)] == [owed]
    await store.release_claims(1, 1)  # now one worker only: leases of workers >= 1 are free too
    assert [m.id for m in await store.claim_deliveries(["acme"], 0)] == []  # worker 0 holds it (its own)
    await store.release_claims(0, 1)
    assert [m.id for m in await store.claim_deliveries(["acme"], 0)] == [owed]


async def test_a_delivered_receipt_left_behind_is_not_taken(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "gw.sqlite3"), shared=True)
    await store.open()
    try:
        owed = await _owed(store, 1)
        assert [m.id for m in await store.claim_deliveries(["acme"], 0)] == [owed]
        store.receipt_delivered(owed, 1002.0)
        store.release_delivery(owed)
        assert await committed(store)
        await store.release_claims(0, 1)
        assert await store.claim_deliveries(["acme"], 0) == []
    finally:
        await store.close()


async def test_stop_changes_follow_the_log(store: Store) -> None:
    start = await store.last_stop_change()
    for stopped in (True, False, True):
        store.stop_change(StopEvent(scope="acme", msisdn="79161234567", stopped=stopped, at=1.0, source="t"))
    assert await committed(store)
    changes = await store.stop_changes(start)
    assert [c.stopped for c in changes] == [True, False, True]
    assert {(c.scope, c.msisdn) for c in changes} == {("acme", "79161234567")}
    assert await store.stop_changes(changes[-1].seq) == []


async def test_two_writers_on_one_file_take_a_cap_slot_and_a_receipt_once(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.sqlite3")
    first, second = SqliteStore(path, shared=True), SqliteStore(path, shared=True)
    await first.open()
    await second.open()
    try:
        a, b = make_message(2), make_message(3)
        for store, message in ((first, a), (second, b)):
            store.cap_reserve(message.id, "acme", "79161234567", DAY)
            store.add_message(message, _cap())
        assert all(await asyncio.gather(committed(first), committed(second)))
        assert len(first.refusals) + len(second.refusals) == 1
        done = make_message(4)
        first.add_message(done)
        first.set_state(done.id, State.DELIVERED, 1001.0, receipt_due=True)
        first.handoff_delivery(done.id, "acme")
        assert await committed(first)
        taken = await asyncio.gather(*(s.claim_deliveries(["acme"], i % 2) for i, s in enumerate((first, second) * 2)))
        assert sorted(len(t) for t in taken) == [0, 0, 0, 1]
    finally:
        await first.close()
        await second.close()


async def test_cancel_requests_follow_a_cursor(store: Store) -> None:
    start = await store.last_cancel_handoff()
    for i in (4, 1, 7):
        store.handoff_cancel(make_message(i).id, "acme", 1000.0)
    assert await committed(store)
    requests = await store.cancel_handoffs(start)
    assert [(m, a, at) for _, m, a, at in requests] == [(make_message(i).id, "acme", 1000.0) for i in (4, 1, 7)]
    assert await store.cancel_handoffs(requests[0][0]) == requests[1:]
    assert await store.last_cancel_handoff() == requests[-1][0]
