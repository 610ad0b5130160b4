"""An independent upstream client (aiosmpplib, written by nobody here) binds to the gateway, sends to all four
operators — short GSM-7, short Cyrillic, a long Cyrillic text in message_payload and one it splits itself with a
UDH — and gets every receipt correlated to its own messages."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiosmpplib import ESME, NPI, TON, PhoneNumber, SubmitSm
from aiosmpplib import DeliverSm as AioDeliverSm
from aiosmpplib.broker import SimpleBroker

from smppgw.smpp.codec import decode
from smppgw.smpp.constants import Tag, is_delivery_receipt
from smppgw.smpp.pdu import DeliverSm, get_tlv
from smppgw.smpp.pdu import SubmitSmResp as OurSubmitSmResp
from tests.aiosmpplib_hook import RecordingHook

from .helpers import ACCOUNT, PASSWORD, eventually, gateway_config, number, running_gateway, running_operators
from .test_long_messages import TEXT


def outgoing() -> list[SubmitSm]:
    def message(log_id: str, dest: str, text: str, **kwargs: object) -> SubmitSm:
        return SubmitSm(
            short_message=text,
            source=PhoneNumber("SMPPGW", TON.ALPHANUMERIC),
            destination=PhoneNumber(dest, TON.INTERNATIONAL, NPI.ISDN),
            log_id=log_id,
            **kwargs,
        )

    return [
        message("latin-mts", number("mts", 11), "Your code is 123456"),
        message("cyr-beeline", number("beeline", 22), "Ваш код: 654321"),
        message("long-megafon", number("megafon", 33), TEXT),  # UCS-2 in message_payload: the gateway splits
        message("udh-tele2", number("tele2", 44), TEXT, esm_class=0x40, auto_message_payload=False),
    ]


async def test_aiosmpplib_upstream_gets_every_receipt(tmp_path: Path) -> None:
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app:
            hook, broker = RecordingHook(), SimpleBroker()
            esme = ESME(
                smsc_host="127.0.0.1",
                smsc_port=app.smpp_port,
                system_id=ACCOUNT,
                password=PASSWORD,
                hook=hook,
                broker=broker,
                log_level=logging.CRITICAL,
                socket_timeout=5.0,
            )
            runner = asyncio.create_task(esme.start())
            try:
                for message in outgoing():
                    await broker.enqueue(message)
                # aiosmpplib split the UDH message itself: 5 submits of its own, each a gateway message
                await eventually(lambda: len(_receipts(hook)) == 3 + 5, what="8 receipts upstream")
                await eventually(lambda: sum(len(op.arrived) for op in ops.values()) == 4, what="4 handset texts")
                responses = [p for p in map(decode, hook.raw) if isinstance(p, OurSubmitSmResp)]
                assert len(responses) == 8
                assert all(r.status == 0 for r in responses)
                ids = {r.message_id for r in responses}
                assert {_receipted_id(pdu) for pdu in _receipts(hook)} == ids
                correlated = {m.log_id for m in hook.messages if isinstance(m, AioDeliverSm) and m.is_receipt()}
                assert correlated == {"latin-mts", "cyr-beeline", "long-megafon", "udh-tele2"}
                assert hook.errors == []
            finally:
                writer = esme._writer  # aiosmpplib 0.7.4 drops its StreamWriter after unbind without closing it
                await esme.stop()
                async with asyncio.timeout(5.0):
                    await runner
                if writer is not None:
                    writer.close()
                    await writer.wait_closed()
    assert [m.text for m in ops["mts"].arrived] == ["Your code is 123456"]
    assert [m.text for m in ops["beeline"].arrived] == ["Ваш код: 654321"]
    assert [(m.text, m.parts) for m in ops["megafon"].arrived] == [(TEXT, 5)]
    assert [(m.text, m.parts) for m in ops["tele2"].arrived] == [(TEXT, 5)]


def _receipts(hook: RecordingHook) -> list[DeliverSm]:
    pdus = [decode(raw) for raw in hook.raw]
    return [p for p in pdus if isinstance(p, DeliverSm) and is_delivery_receipt(p.esm_class)]


def _receipted_id(pdu: DeliverSm) -> str:
    value = get_tlv(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
    assert value is not None
    return value.rstrip(b"\0").decode()
