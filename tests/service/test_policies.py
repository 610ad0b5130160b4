"""Sending policies in the gateway, with an injected clock (no sleeping): quiet hours by the recipient's zone, HELD
and release, expiry before the window, collection caps (atomic, restart-safe), the stop list, MO STOP, SMPP class
mapping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from smppgw.app import build_router
from smppgw.config import AccountConfig, ConnectorConfig, GatewayConfig, RoutingConfig
from smppgw.core.message import Message, State, TrafficClass
from smppgw.core.workers import SOLE_WORKER, WorkerSlot
from smppgw.service.connector import Connector
from smppgw.service.errors import SubmitRefusedError
from smppgw.service.gateway import Account, Gateway, TextSubmit
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import DeliverSm, SubmitSm
from smppgw.store.memory import MemoryStore
from smppgw.store.sqlite import SqliteStore
from tests.store.helpers import committed

from .fakes import Clock, FreeLink, RecordingConn

MOSCOW = "79001400000"  # Moscow, UTC+3
SARATOV = "79001650000"  # UTC+4 since December 2020
KAMCHATKA = "79001750000"  # UTC+12


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def make_gateway(
    clock: Clock, store: MemoryStore | SqliteStore | None = None, *, worker: WorkerSlot = SOLE_WORKER, **account: Any
) -> Gateway:
    config = GatewayConfig(
        accounts=(AccountConfig(system_id="acme", password="pw", rate=1e6, **account),),
        connectors=(ConnectorConfig(name="sim"),),
        routing=RoutingConfig(default="sim"),
    )
    gateway = Gateway(config, store or MemoryStore(), build_router(config), clock=clock, worker=worker)
    connector = Connector(config.connectors[0], gateway)
    connector.clock = clock
    gateway.add_connector(connector)
    return gateway


def account(gateway: Gateway) -> Account:
    return gateway.accounts["acme"]


async def submit(gateway: Gateway, to: str, klass: str, **fields: Any) -> Message:
    message = gateway.accept_text(
        account(gateway), TextSubmit(to=to, sender="Lender", text="Pay", traffic_class=klass, **fields)
    )
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    gateway.persist(message, done.set_result)
    assert await done
    return message


def queued(gateway: Gateway) -> list[str]:
    return [m.id for lane in gateway.connectors["sim"].lanes for m, _ in lane]


async def test_collection_at_night_is_held_until_the_recipients_morning() -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))  # Tuesday 23:30 in Moscow
    gateway = make_gateway(clock)
    message = await submit(gateway, MOSCOW, "collection")
    assert message.state is State.HELD and message.id not in queued(gateway)
    clock.now = utc("2026-03-04T04:59:59")  # 07:59:59 Moscow
    gateway.sweep()
    assert message.state is State.HELD
    clock.now = utc("2026-03-04T05:00:00")  # 08:00 Moscow
    gateway.sweep()
    assert message.state is State.QUEUED and message.id in queued(gateway)
    assert message.window_end == utc("2026-03-04T19:00:00")  # closes at 22:00 Moscow


async def test_each_recipient_by_their_own_zone() -> None:
    clock = Clock(utc("2026-03-03T04:30:00"))  # 07:30 Moscow, 08:30 Saratov, 16:30 Kamchatka (Tuesday)
    gateway = make_gateway(clock)
    moscow = await submit(gateway, MOSCOW, "collection")
    saratov = await submit(gateway, SARATOV, "collection")
    kamchatka = await submit(gateway, KAMCHATKA, "collection")
    assert moscow.state is State.HELD
    assert saratov.state is State.QUEUED and kamchatka.state is State.QUEUED
    assert kamchatka.window_end == utc("2026-03-03T10:00:00")  # 22:00 in UTC+12


async def test_weekend_and_holiday_hours_are_shorter() -> None:
    clock = Clock(utc("2026-03-08T05:30:00"))  # Sunday 08:30 Moscow: weekend window opens at 09:00
    gateway = make_gateway(clock)
    message = await submit(gateway, MOSCOW, "collection")
    assert message.state is State.HELD
    clock.now = utc("2026-03-08T06:00:00")
    gateway.sweep()
    assert message.state is State.QUEUED
    assert message.window_end == utc("2026-03-08T17:00:00")  # 20:00 Moscow


async def test_otp_is_never_held_and_marketing_has_its_own_window() -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))  # 23:30 Moscow
    gateway = make_gateway(clock)
    otp = await submit(gateway, MOSCOW, "otp")
    marketing = await submit(gateway, MOSCOW, "marketing")
    assert otp.state is State.QUEUED
    assert marketing.state is State.HELD
    clock.now = utc("2026-03-04T06:00:00")  # 09:00 Moscow
    gateway.sweep()
    assert marketing.state is State.QUEUED


async def test_validity_ending_before_the_window_opens_is_expired_and_frees_its_cap_slot() -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))
    gateway = make_gateway(clock)
    message = await submit(gateway, MOSCOW, "collection", validity=3600.0)
    await asyncio.sleep(0)
    assert message.state is State.EXPIRED
    assert len(gateway.policies.ledger) == 0
    second = await submit(gateway, MOSCOW, "collection")
    assert second.state is State.HELD  # the day's only slot was not used by the expired one


async def test_window_closing_while_queued_holds_it_again() -> None:
    clock = Clock(utc("2026-03-03T18:59:00"))  # 21:59 Moscow
    gateway = make_gateway(clock)
    message = await submit(gateway, MOSCOW, "collection")
    assert message.state is State.QUEUED
    clock.now = utc("2026-03-03T19:00:00")  # 22:00: the connector reaches it too late
    connector = gateway.connectors["sim"]
    connector.link = FreeLink()  # type: ignore[assignment]
    connector._send_what_we_can()
    assert message.state is State.HELD and message.id not in queued(gateway)
    clock.now = utc("2026-03-04T05:00:00")
    gateway.sweep()
    assert message.state is State.QUEUED


async def test_collection_caps_per_day_by_overdue_days() -> None:
    clock = Clock(utc("2026-03-03T09:00:00"))  # 12:00 Moscow, Tuesday
    gateway = make_gateway(clock)
    await submit(gateway, MOSCOW, "collection")
    with pytest.raises(SubmitRefusedError) as exc:
        await submit(gateway, MOSCOW, "collection")
    assert exc.value.code == "cap_exceeded" and exc.value.status == 0x0401
    await submit(gateway, SARATOV, "collection")  # another recipient
    await submit(gateway, MOSCOW, "otp")  # other classes are not capped
    overdue = make_gateway(clock)
    await submit(overdue, MOSCOW, "collection", overdue_days=45)
    await submit(overdue, MOSCOW, "collection", overdue_days=45)
    with pytest.raises(SubmitRefusedError):
        await submit(overdue, MOSCOW, "collection", overdue_days=45)


async def test_two_submits_before_any_commit_cannot_both_take_the_last_slot() -> None:
    gateway = make_gateway(Clock(utc("2026-03-03T09:00:00")))
    request = TextSubmit(to=MOSCOW, sender="Lender", text="Pay", traffic_class="collection")
    gateway.accept_text(account(gateway), request)
    with pytest.raises(SubmitRefusedError):
        gateway.accept_text(account(gateway), request)


async def test_week_cap_spans_days_and_a_held_message_counts_on_its_release_day() -> None:
    clock = Clock(utc("2026-03-02T09:00:00"))  # Monday 12:00 Moscow
    gateway = make_gateway(clock, default_overdue_days=60)  # 2 a day, 4 a week
    for _ in range(2):
        await submit(gateway, MOSCOW, "collection")
    clock.now = utc("2026-03-03T20:00:00")  # Tuesday 23:00: planned for Wednesday 08:00
    for _ in range(2):
        assert (await submit(gateway, MOSCOW, "collection")).state is State.HELD
    clock.now = utc("2026-03-05T09:00:00")  # Thursday noon: the day is free, the week is not
    with pytest.raises(SubmitRefusedError) as exc:
        await submit(gateway, MOSCOW, "collection")
    assert "week" in str(exc.value)


async def test_held_messages_and_caps_survive_a_restart() -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))
    store = MemoryStore()
    first = make_gateway(clock, store)
    held = await submit(first, MOSCOW, "collection")
    assert held.state is State.HELD
    recovered = await store.recover()
    second = make_gateway(clock, store)
    second.recover(recovered)
    assert second.live[held.id].state is State.HELD
    with pytest.raises(SubmitRefusedError):  # the reservation came back with it
        await submit(second, MOSCOW, "collection")
    clock.now = utc("2026-03-04T05:00:00")
    second.sweep()
    assert second.live[held.id].state is State.QUEUED


async def test_stop_list_refuses_marketing_but_not_otp() -> None:
    gateway = make_gateway(Clock(utc("2026-03-03T09:00:00")))
    assert gateway.set_stopped("acme", MOSCOW, True, "test")
    with pytest.raises(SubmitRefusedError) as exc:
        await submit(gateway, MOSCOW, "marketing")
    assert exc.value.code == "stop_listed" and exc.value.status == 0x0402
    await submit(gateway, MOSCOW, "otp")
    gateway.set_stopped("acme", MOSCOW, False, "test")
    await submit(gateway, MOSCOW, "marketing")
    gateway.set_stopped("*", SARATOV, True, "test")  # the global list binds every account
    with pytest.raises(SubmitRefusedError):
        await submit(gateway, SARATOV, "marketing")


async def test_mo_stop_keyword_stops_the_sender_after_commit() -> None:
    gateway = make_gateway(Clock(utc("2026-03-03T09:00:00")), mo_addresses=("3443",))
    conn = RecordingConn()
    mo = DeliverSm(
        sequence=7,
        source_addr="89001400000",
        destination_addr="3443",
        short_message="СТОП".encode("utf-16-be"),
        data_coding=8,
    )
    gateway.receipt_pdu(gateway.connectors["sim"], conn, mo)  # type: ignore[arg-type]
    assert conn.sent == []  # acknowledged only once durable
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert conn.sent and conn.sent[0].status == CommandStatus.ESME_ROK
    assert gateway.policies.stoplist.stopped("acme", MOSCOW) == "acme"
    history = await gateway.store.stop_history(MOSCOW)
    assert [(e.scope, e.stopped, e.source) for e in history] == [("acme", True, "mo:sim")]
    other = DeliverSm(sequence=8, source_addr="79001650000", destination_addr="9999", short_message=b"stop")
    gateway.receipt_pdu(gateway.connectors["sim"], conn, other)  # type: ignore[arg-type]
    assert gateway.policies.stoplist.stopped("acme", SARATOV) == "*"  # an unclaimed address stops globally
    hello = DeliverSm(sequence=9, source_addr="79001650001", destination_addr="3443", short_message=b"hello")
    gateway.receipt_pdu(gateway.connectors["sim"], conn, hello)  # type: ignore[arg-type]
    assert conn.sent[-1].sequence == 9 and gateway.policies.stoplist.stopped("acme", "79001650001") is None


def _submit_sm(**fields: Any) -> SubmitSm:
    base: dict[str, Any] = {"sequence": 1, "source_addr": "Lender", "destination_addr": MOSCOW, "short_message": b"Pay"}
    return msgspec.structs.replace(SubmitSm(**base), **fields)


async def test_smpp_class_from_tlv_service_type_source_then_default() -> None:
    gateway = make_gateway(
        Clock(utc("2026-03-03T09:00:00")),
        class_tlv=0x1400,
        overdue_tlv=0x1401,
        class_by_service_type={"OTP": "otp"},
        class_by_source={"Collect": "collection"},
        default_class="service",
    )
    acct = account(gateway)
    assert (
        gateway.accept_submit(acct, _submit_sm(tlvs=((0x1400, b"marketing\x00"),))).traffic_class
        is TrafficClass.MARKETING
    )
    assert gateway.accept_submit(acct, _submit_sm(service_type="OTP")).traffic_class is TrafficClass.OTP
    collected = gateway.accept_submit(acct, _submit_sm(source_addr="Collect", tlvs=((0x1401, b"31"),)))
    assert collected.traffic_class is TrafficClass.COLLECTION and collected.overdue_days == 31
    assert gateway.accept_submit(acct, _submit_sm(destination_addr=SARATOV)).traffic_class is TrafficClass.SERVICE
    with pytest.raises(SubmitRefusedError) as exc:
        gateway.accept_submit(acct, _submit_sm(tlvs=((0x1400, b"spam"),)))
    assert exc.value.status == CommandStatus.ESME_RINVOPTPARAMVAL
    with pytest.raises(SubmitRefusedError):
        gateway.accept_submit(acct, _submit_sm(source_addr="Collect", destination_addr=SARATOV, tlvs=((0x1401, b"x"),)))


async def test_held_message_and_reservation_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))  # 23:30 Moscow
    store = SqliteStore(str(tmp_path / "gw.sqlite3"))
    await store.open()
    first = make_gateway(clock, store)
    held = await submit(first, MOSCOW, "collection")
    stopped = first.set_stopped("acme", SARATOV, True, "test")
    await store.close()
    assert held.state is State.HELD and stopped
    store = SqliteStore(str(tmp_path / "gw.sqlite3"))
    await store.open()
    try:
        second = make_gateway(clock, store)
        counts = second.recover(await store.recover())
        assert counts["requeued"] == 1
        again = second.live[held.id]
        assert again.state is State.HELD and again.traffic_class is TrafficClass.COLLECTION
        with pytest.raises(SubmitRefusedError) as exc:
            await submit(second, MOSCOW, "collection")
        assert exc.value.code == "cap_exceeded"
        with pytest.raises(SubmitRefusedError):
            await submit(second, SARATOV, "marketing")
        clock.now = utc("2026-03-04T04:59:00")
        second.sweep()
        assert again.state is State.HELD
        clock.now = utc("2026-03-04T05:00:00")
        second.sweep()
        assert again.state is State.QUEUED
    finally:
        await store.close()


async def test_an_opt_out_while_held_or_queued_wins_over_the_send() -> None:
    clock = Clock(utc("2026-03-03T20:30:00"))  # 23:30 Moscow: marketing is held until 09:00
    gateway = make_gateway(clock)
    held = await submit(gateway, MOSCOW, "marketing")
    assert held.state is State.HELD
    gateway.set_stopped("acme", MOSCOW, True, "test")
    clock.now = utc("2026-03-04T06:00:00")
    gateway.sweep()
    assert held.state is State.REJECTED and held.status == 0x0402
    queued_one = await submit(gateway, SARATOV, "marketing")
    assert queued_one.state is State.QUEUED
    gateway.set_stopped("*", SARATOV, True, "test")  # arrives while it waits in the connector's queue
    connector = gateway.connectors["sim"]
    connector.link = FreeLink()  # type: ignore[assignment]
    connector._send_what_we_can()
    assert queued_one.state is State.REJECTED and queued_one.id not in queued(gateway)
    assert connector.queued == 0


async def test_a_part_to_send_again_after_the_window_closed_waits_for_the_next_window() -> None:
    clock = Clock(utc("2026-03-03T18:59:58"))  # 21:59:58 Moscow
    gateway = make_gateway(clock)
    message = await submit(gateway, MOSCOW, "collection")
    assert message.state is State.QUEUED
    connector = gateway.connectors["sim"]
    message.wire_parts = connector._build_parts(message)
    message.state = State.SUBMITTING
    clock.now = utc("2026-03-03T19:00:05")  # the operator throttled the part; it comes up again at 22:00:05
    connector._requeue_part(message, 0)
    connector.link = FreeLink()  # type: ignore[assignment]
    connector._send_what_we_can()
    assert connector.queued == 0 and message.state is State.SUBMITTING  # not sent: held for the morning
    clock.now = utc("2026-03-04T04:59:00")
    gateway.sweep()
    assert connector.queued == 0
    clock.now = utc("2026-03-04T05:00:00")
    gateway.sweep()
    assert connector.queued == 1 and connector._peek() == (message, 0)


async def test_a_stop_whose_commit_fails_is_undone_in_memory() -> None:
    store = MemoryStore()
    gateway = make_gateway(Clock(utc("2026-03-03T09:00:00")), store)
    store.fail_commits = True
    assert gateway.set_stopped("acme", MOSCOW, True, "test")
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.after_commit(done.set_result)
    assert not await done
    assert gateway.policies.stoplist.stopped("acme", MOSCOW) is None  # a retry will record it again
    store.fail_commits = False
    assert gateway.set_stopped("acme", MOSCOW, True, "test")


async def _commits(store: MemoryStore, rounds: int = 3) -> None:
    for _ in range(rounds):  # a settled move may queue another one: a few commit rounds
        assert await committed(store)


async def test_a_cap_move_across_workers_is_refused_when_another_worker_filled_the_day() -> None:
    """Worker 0 holds m1 for Wednesday; worker 1 takes Thursday for the same debtor (1 a day); worker 0 only sweeps on
    Thursday: m1 may not move onto Thursday (the store refuses, worker 0 learns why) and goes on Friday."""
    clock, store = Clock(utc("2026-03-03T20:30:00")), MemoryStore()  # Tuesday 23:30 Moscow
    first = make_gateway(clock, store, worker=WorkerSlot(0, 2))
    second = make_gateway(clock, store, worker=WorkerSlot(1, 2))
    week = 7 * 86400.0
    m1 = await submit(first, MOSCOW, "collection", validity=week)
    clock.now = utc("2026-03-04T20:30:00")  # Wednesday 23:30: worker 0 missed Wednesday (down, backlog)
    m2 = await submit(second, MOSCOW, "collection", validity=week)
    thursday = datetime(2026, 3, 5).toordinal()
    assert store.cap_ledger[m2.id][2] == thursday
    clock.now = utc("2026-03-05T05:00:00")  # Thursday 08:00 Moscow
    first.sweep()
    second.sweep()
    await _commits(store)
    assert m2.state is State.QUEUED
    assert m1.state is State.HELD and m1.id not in queued(first)
    assert store.cap_ledger[m1.id][2] == thursday + 1  # Friday, confirmed by the store
    clock.now = utc("2026-03-06T05:00:00")  # Friday 08:00
    first.sweep()
    assert m1.state is State.QUEUED


async def test_a_part_held_with_several_workers_does_not_send_its_message_again() -> None:
    """A part of a message in flight comes back after its window closed: its cap day moves (confirmed by the store)
    and only that part goes on the next day; the message is not queued again as a whole."""
    clock, store = Clock(utc("2026-03-03T18:59:58")), MemoryStore()  # Tuesday 21:59:58 Moscow
    gateway = make_gateway(clock, store, worker=WorkerSlot(0, 2))
    message = await submit(gateway, MOSCOW, "collection")
    connector = gateway.connectors["sim"]
    for lane in connector.lanes:
        lane.clear()
    connector.queued = 0
    message.wire_parts = connector._build_parts(message)
    message.state = State.SUBMITTING
    clock.now = utc("2026-03-03T19:00:05")  # 22:00:05: the window has closed
    connector._requeue_part(message, 0)
    connector.link = FreeLink()  # type: ignore[assignment]
    connector._send_what_we_can()  # the part is held for tomorrow; its cap day moves (to be confirmed)
    await _commits(store)
    assert message.state is State.SUBMITTING and not gateway._scheduled
    clock.now = utc("2026-03-04T05:00:00")  # Wednesday 08:00
    gateway.sweep()
    assert message.state is State.SUBMITTING
    assert message.id not in queued(gateway)
    assert store.cap_ledger[message.id][2] == datetime(2026, 3, 4).toordinal()


async def _refused_move() -> tuple[Clock, MemoryStore, Gateway, Gateway, Message, Message]:
    """Worker 0's m1 (Wednesday) must move on Thursday, which worker 1's m2 already holds (1 a day)."""
    clock, store = Clock(utc("2026-03-03T20:30:00")), MemoryStore()
    first = make_gateway(clock, store, worker=WorkerSlot(0, 2))
    second = make_gateway(clock, store, worker=WorkerSlot(1, 2))
    m1 = await submit(first, MOSCOW, "collection", validity=7 * 86400.0)
    clock.now = utc("2026-03-04T20:30:00")
    m2 = await submit(second, MOSCOW, "collection", validity=7 * 86400.0)
    clock.now = utc("2026-03-05T05:00:00")  # Thursday 08:00
    return clock, store, first, second, m1, m2


async def test_a_message_cancelled_while_its_move_is_unconfirmed_keeps_no_reservation() -> None:
    _, store, first, _, m1, _ = await _refused_move()
    first.sweep()
    assert m1.id in first._unconfirmed_moves
    assert first.cancel_owned(m1.id, "acme")
    await _commits(store)
    assert m1.state is State.DELETED and m1.id not in store.cap_ledger
    assert first.policies.ledger.day_of(m1.id) is None


async def test_days_learned_from_another_worker_are_a_hint_that_expires() -> None:
    """What a refused move showed of worker 1's reservations never enters worker 0's ledger: once worker 1 frees
    Thursday, worker 0 may take it for a new message at once, and for a move after the hint expired."""
    clock, store, first, second, m1, m2 = await _refused_move()
    first.sweep()
    second.sweep()
    await _commits(store)
    assert first.policies.ledger.day_of(m2.id) is None
    assert second.cancel_owned(m2.id, "acme")
    await _commits(store)
    clock.now = utc("2026-03-05T06:00:00")  # Thursday 09:00: the store has room today
    fresh = await submit(first, MOSCOW, "collection", validity=7 * 86400.0)
    assert fresh.state is State.QUEUED
    assert store.cap_ledger[m1.id][2] == datetime(2026, 3, 6).toordinal()  # m1 still goes on Friday
