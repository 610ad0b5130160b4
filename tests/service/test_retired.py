"""Messages that leave memory while awaiting receipts (``hot_awaiting``): a late receipt reads the message back from
the store and finishes it; a part's receipt leaves the other parts retired; a deadline ends it; an id that only
collides in the compact index is not taken for the message. Injected clock, both stores (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from smppgw.app import build_router
from smppgw.config import AccountConfig, ConnectorConfig, GatewayConfig, RoutingConfig, StoreConfig
from smppgw.core.message import Message, State
from smppgw.service.connector import Connector
from smppgw.service.gateway import Gateway, TextSubmit
from smppgw.service.retired import BUCKET_SECONDS, reference
from smppgw.smpp.constants import EsmClass, MessageState
from smppgw.smpp.pdu import DeliverSm
from smppgw.smpp.receipt import format_receipt_text
from smppgw.store.base import ReceiptRecord, Store
from tests.store.helpers import committed

from .fakes import Clock, RecordingConn

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC).timestamp()


@contextlib.asynccontextmanager
async def gateway_with(store: Store, clock: Clock, hot: int = 0) -> AsyncIterator[Gateway]:
    config = GatewayConfig(
        store=StoreConfig(hot_awaiting=hot),
        accounts=(AccountConfig(system_id="acme", password="pw", rate=1e6),),
        connectors=(ConnectorConfig(name="sim", receipt_timeout=3600.0),),
        routing=RoutingConfig(default="sim"),
    )
    gateway = Gateway(config, store, build_router(config), clock=clock)
    gateway.add_connector(Connector(config.connectors[0], gateway))
    loader = asyncio.create_task(gateway.retired.run())
    try:
        yield gateway
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader


async def sent(gateway: Gateway, text: str, smsc_ids: list[str]) -> Message:
    """A message accepted, then every part answered by the SMSC with these ids (as the connector would report)."""
    message = gateway.accept_text(gateway.accounts["acme"], TextSubmit(to="79161234567", sender="Bank", text=text))
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    gateway.persist(message, done.set_result)
    assert await done is True
    submitting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    gateway.commit_submitting([message], submitting.set_result)
    assert await submitting
    message.state = State.SUBMITTING
    for part, smsc_id in enumerate(smsc_ids):
        gateway.part_accepted(gateway.connectors["sim"], message, part, smsc_id)
    assert await committed(gateway.store)
    return message


def receipt(smsc_id: str, state: MessageState = MessageState.DELIVERED) -> DeliverSm:
    when = datetime.fromtimestamp(T0, UTC)
    text = format_receipt_text(smsc_id, state, submit_date=when, done_date=when)
    return DeliverSm(sequence=1, esm_class=EsmClass.TYPE_SMSC_DELIVERY_RECEIPT, short_message=text.encode())


async def eventually(predicate: Any, what: str) -> None:
    async with asyncio.timeout(5):
        while not await predicate():
            await asyncio.sleep(0.01)


async def stored_state(store: Store, message_id: str) -> State:
    view = await store.find_message(message_id)
    assert view is not None
    return view.message.state


async def test_a_late_receipt_reads_a_retired_message_back(store: Store) -> None:
    async with gateway_with(store, Clock(T0)) as gateway:
        message = await sent(gateway, "code 1234", ["A1B2C3"])
        connector = gateway.connectors["sim"]
        assert message.id not in gateway.live and connector.correlator.retired == 1
        conn = RecordingConn()
        gateway.receipt_pdu(connector, conn, receipt("a1b2c3"))  # type: ignore[arg-type]

        async def delivered() -> bool:
            return await stored_state(store, message.id) is State.DELIVERED

        await eventually(delivered, "the retired message delivered")
        assert connector.correlator.retired == 0 and gateway.retired.restored == 1
        assert conn.sent and conn.sent[0].status == 0
        view = await store.find_message(message.id)
        assert view is not None and [r.part for r in view.receipts] == [0]  # linked to its message


async def test_one_part_back_leaves_the_others_retired(store: Store) -> None:
    async with gateway_with(store, Clock(T0)) as gateway:
        message = await sent(gateway, "x" * 300, ["P1", "P2"])  # two GSM-7 parts
        assert message.segments == 2
        connector = gateway.connectors["sim"]
        gateway.receipt_pdu(connector, RecordingConn(), receipt("P1"))  # type: ignore[arg-type]

        async def first_counted() -> bool:
            return connector.correlator.retired == 1

        await eventually(first_counted, "the first part's reference gone")
        assert await stored_state(store, message.id) is State.SUBMITTING
        gateway.receipt_pdu(connector, RecordingConn(), receipt("P2", MessageState.UNDELIVERABLE))  # type: ignore[arg-type]

        async def finished() -> bool:
            return await stored_state(store, message.id) is State.UNDELIVERABLE

        await eventually(finished, "the message ended by its second part")
        assert connector.correlator.retired == 0


async def test_a_retired_message_without_receipts_ends_unknown_after_its_grace(store: Store) -> None:
    clock = Clock(T0)
    async with gateway_with(store, clock) as gateway:
        message = await sent(gateway, "no receipt ever", ["Z9"])
        clock.now = message.expires_at + 3600.0 - 1.0
        gateway.sweep()
        await asyncio.sleep(0.05)
        assert await stored_state(store, message.id) is State.SUBMITTING
        clock.now = message.expires_at + 3600.0 + BUCKET_SECONDS
        gateway.sweep()

        async def unknown() -> bool:
            return await stored_state(store, message.id) is State.UNKNOWN

        await eventually(unknown, "ended UNKNOWN")
        assert gateway.connectors["sim"].correlator.retired == 0


async def test_a_reference_whose_id_differs_is_not_taken(store: Store) -> None:
    """What a hash collision would look like: the compact index offers a message whose stored SMSC id is not the
    receipt's; the receipt is parked as unmatched and the message stays as it was."""
    async with gateway_with(store, Clock(T0)) as gateway:
        message = await sent(gateway, "collide", ["C0FFEE"])
        connector = gateway.connectors["sim"]
        record = ReceiptRecord(
            id=999, connector="sim", smsc_id="BADBAD", state="DELIVRD", err=None, done_date=None,
            received_at=T0, raw="id:BADBAD stat:DELIVRD",
        )  # fmt: skip
        gateway.retired._receipts.append((connector, [reference(message.id, 0)], record, MessageState.DELIVERED))
        gateway.retired._wakeup.set()

        async def parked() -> bool:
            return connector.correlator.parked == 1

        await eventually(parked, "parked as unmatched")
        assert await stored_state(store, message.id) is State.SUBMITTING
        assert connector.correlator.retired == 1


async def test_the_hot_limit_keeps_recent_messages_whole(store: Store) -> None:
    async with gateway_with(store, Clock(T0), hot=2) as gateway:
        messages = [await sent(gateway, f"m{i}", [f"ID{i}"]) for i in range(5)]
        assert [m.id in gateway.live for m in messages] == [False, False, False, True, True]
        assert gateway.connectors["sim"].correlator.retired == 3


def test_config_default_keeps_a_hundred_thousand_whole() -> None:
    assert msgspec.convert({}, StoreConfig).hot_awaiting == 100_000


async def settle(gateway: Gateway) -> None:
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert await committed(gateway.store)


@pytest.mark.parametrize("hot", [0, 10])
async def test_an_id_that_reads_two_ways_goes_to_the_message_written_alike(store: Store, hot: int) -> None:
    """Decimal SMSC ids: "100" is also kept under its hex reading, 256. A receipt for "256" finishes the message
    whose id is written "256", in memory (hot) and out of it alike."""
    async with gateway_with(store, Clock(T0), hot=hot) as gateway:
        first = await sent(gateway, "first", ["100"])
        second = await sent(gateway, "second", ["256"])
        gateway.receipt_pdu(gateway.connectors["sim"], RecordingConn(), receipt("256"))  # type: ignore[arg-type]
        await settle(gateway)
        assert await stored_state(store, second.id) is State.DELIVERED
        assert await stored_state(store, first.id) is State.SUBMITTING


def vendor_receipt(smsc_id: str, word: str) -> DeliverSm:
    text = f"id:{smsc_id} sub:001 dlvrd:000 submit date:2603030900 done date:2603030900 stat:{word} err:000 text:"
    return DeliverSm(sequence=1, esm_class=EsmClass.TYPE_SMSC_DELIVERY_RECEIPT, short_message=text.encode())


async def test_an_unrecognised_status_word_is_evidence_only_after_a_read_back(store: Store) -> None:
    async with gateway_with(store, Clock(T0), hot=1) as gateway:
        message = await sent(gateway, "x" * 300, ["P1", "P2"])
        connector = gateway.connectors["sim"]
        gateway.receipt_pdu(connector, RecordingConn(), vendor_receipt("P1", "XYZZY"))  # type: ignore[arg-type]
        assert await committed(store)
        await sent(gateway, "pushes it out of memory", ["Q1"])
        assert message.id not in gateway.live
        gateway.receipt_pdu(connector, RecordingConn(), receipt("P2"))  # type: ignore[arg-type]
        await settle(gateway)
        assert await stored_state(store, message.id) is State.SUBMITTING  # part 1 still waits for a real answer
        view = await store.find_message(message.id)
        assert view is not None and {r.state for r in view.receipts} == {"UNRECOGNISED", "DELIVERED"}


async def test_a_later_intermediate_receipt_does_not_hide_a_final_one(store: Store) -> None:
    async with gateway_with(store, Clock(T0)) as gateway:
        message = await sent(gateway, "x" * 300, ["E1", "E2"])
        connector = gateway.connectors["sim"]
        gateway.receipt_pdu(connector, RecordingConn(), receipt("E1", MessageState.UNDELIVERABLE))  # type: ignore[arg-type]
        gateway.receipt_pdu(connector, RecordingConn(), receipt("E1", MessageState.ENROUTE))  # type: ignore[arg-type]
        await settle(gateway)
        gateway.receipt_pdu(connector, RecordingConn(), receipt("E2"))  # type: ignore[arg-type]
        await settle(gateway)
        assert await stored_state(store, message.id) is State.UNDELIVERABLE


async def test_a_retired_message_never_ends_before_its_grace(store: Store) -> None:
    clock = Clock(T0)
    clock.now = T0 + 50.0  # its deadline falls 50 s into a minute
    async with gateway_with(store, clock) as gateway:
        message = await sent(gateway, "late", ["Z9"])
        due = message.expires_at + 3600.0
        clock.now = (due // BUCKET_SECONDS) * BUCKET_SECONDS + 0.5  # the same minute, before the grace ends
        assert clock.now <= due
        gateway.sweep()
        await settle(gateway)
        assert await stored_state(store, message.id) is State.SUBMITTING


async def test_a_failed_read_back_is_tried_again(store: Store) -> None:
    clock = Clock(T0)
    async with gateway_with(store, clock) as gateway:
        message = await sent(gateway, "x", ["F1"])
        original = store.load_open
        calls = 0

        async def flaky(ids: list[str]) -> list[Message]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise OSError("disk I/O error")
            return await original(ids)

        store.load_open = flaky  # type: ignore[method-assign]
        gateway.receipt_pdu(gateway.connectors["sim"], RecordingConn(), receipt("F1"))  # type: ignore[arg-type]

        async def delivered() -> bool:
            return await stored_state(store, message.id) is State.DELIVERED

        await eventually(delivered, "delivered after the retry")
        assert calls == 2
