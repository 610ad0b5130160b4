"""Interop: aiosmpplib (an SMPP client nobody here wrote) binds to the simulator, submits a long Cyrillic message
split by itself (UDH), and receives one receipt per part."""

from __future__ import annotations

import asyncio
import logging

from aiosmpplib import ESME, NPI, TON, PhoneNumber, SmppMessage, SubmitSm, SubmitSmResp
from aiosmpplib.broker import SimpleBroker

from smppgw.sim import Simulator, config_from_dict
from smppgw.smpp.codec import decode
from smppgw.smpp.constants import MessageState, is_delivery_receipt
from smppgw.smpp.pdu import DeliverSm
from smppgw.smpp.receipt import read_receipt
from tests.aiosmpplib_hook import RecordingHook

TEXT = (
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация южных губерний даст мощный "
    "толчок подъёму сельского хозяйства. В чащах юга жил бы цитрус? Да, но фальшивый экземпляр! Эх, чужак, общий "
    "съём цен шляп (юфть) — вдрызг! Любя, съешь щипцы, — вздохнёт мэр, — кайф жгуч. Ёж! "
) * 2
TEXT = TEXT[:300]


async def test_aiosmpplib_long_cyrillic_message_gets_every_receipt() -> None:
    assert len(TEXT) == 300
    sim = Simulator(config_from_dict({"seed": 3, "handset_record": True, "receipts": {"delay_ms": "uniform:1-30"}}))
    await sim.start("127.0.0.1", 0)
    hook, broker = RecordingHook(), SimpleBroker()
    esme = ESME(
        smsc_host="127.0.0.1",
        smsc_port=sim.port,
        system_id="aiosmpp",
        password="pw",
        hook=hook,
        broker=broker,
        log_level=logging.CRITICAL,
        socket_timeout=5.0,
    )
    runner = asyncio.create_task(esme.start())
    try:
        message = SubmitSm(
            short_message=TEXT,
            source=PhoneNumber("SMPPGW", TON.ALPHANUMERIC),
            destination=PhoneNumber("79161234567", TON.INTERNATIONAL, NPI.ISDN),
            esm_class=0x40,  # let aiosmpplib split with a UDH
            auto_message_payload=False,
            log_id="order-1",
        )
        await broker.enqueue(message)
        async with asyncio.timeout(10.0):
            while sim.stats.receipts_acked < 5 or not any(isinstance(m, DeliverSm) for m in _decoded(hook)):
                await asyncio.sleep(0.01)
        responses = [m for m in hook.messages if isinstance(m, SubmitSmResp)]
        deliveries = [pdu for pdu in _decoded(hook) if isinstance(pdu, DeliverSm)]
        assert sim.handset is not None
        (handset,) = sim.handset.messages
        assert handset.text == TEXT and handset.parts == 5
        receipts = [read_receipt(d.short_message, d.tlvs) for d in deliveries if is_delivery_receipt(d.esm_class)]
        assert sorted(r.message_id for r in receipts) == sorted(handset.message_ids)
        assert all(r.state is MessageState.DELIVERED for r in receipts)
        # aiosmpplib correlated the receipts to its own message
        assert responses and responses[-1].log_id == "order-1"
        assert any(getattr(m, "log_id", "") == "order-1" and m.is_receipt() for m in hook.messages if _is_dlr(m))
        assert hook.errors == []
        assert sim.stats.submit_sm == 5 and sim.stats.segments == 5 and sim.stats.receipts_acked == 5
    finally:
        writer = esme._writer  # aiosmpplib 0.7.4 drops its StreamWriter after unbind without closing it
        await esme.stop()
        async with asyncio.timeout(5.0):
            await runner
        if writer is not None:
            writer.close()
            await writer.wait_closed()
        await sim.close(unbind_timeout=1.0)


def _decoded(hook: RecordingHook) -> list[object]:
    return [decode(raw) for raw in hook.raw]


def _is_dlr(message: SmppMessage) -> bool:
    from aiosmpplib import DeliverSm as AioDeliverSm  # noqa: PLC0415

    return isinstance(message, AioDeliverSm)
