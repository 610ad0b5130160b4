"""A test ESME built on ``smppgw.net.client``: binds, submits, collects and acknowledges deliver_sm.

Also runnable as a load generator against a running simulator (``python -m tests.sim.helpers HOST:PORT ...``):
it keeps a window of submit_sm in flight per bind with the callback API and reports submit_sm/s and receipts/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from smppgw.net.client import BIND_TYPES_BY_MODE, connect
from smppgw.net.connection import SmppConnection
from smppgw.smpp.concat import ConcatMode, split_message
from smppgw.smpp.constants import is_delivery_receipt
from smppgw.smpp.pdu import DeliverSm, DeliverSmResp, Pdu, SubmitSm, _Bind, response_type_for
from smppgw.smpp.receipt import Receipt, read_receipt
from smppgw.smpp.session import Role, SessionConfig
from smppgw.smpp.text import data_coding_for


class Esme:
    """ConnectionHandler of a test ESME. Receipts are answered with ``deliver_status`` (or not at all when
    ``answer`` is False) and kept in ``deliveries``; ``on_delivery`` is called for each."""

    def __init__(self, *, deliver_status: int = 0, answer: bool = True, keep: bool = True) -> None:
        self.deliver_status = deliver_status
        self.answer = answer
        self.keep = keep
        self.deliveries: list[DeliverSm] = []
        self.delivery_count = 0
        self.closed: list[str] = []
        self.changed = asyncio.Event()
        self.on_delivery: Callable[[DeliverSm], None] | None = None

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        raise AssertionError("an ESME receives no bind")

    def on_bound(self, conn: SmppConnection) -> None:
        pass

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm):
            self.delivery_count += 1
            if self.keep:
                self.deliveries.append(pdu)
            if self.on_delivery is not None:
                self.on_delivery(pdu)
            if self.answer:
                conn.send_response(DeliverSmResp(sequence=pdu.sequence, status=self.deliver_status))
            self.changed.set()
        else:
            conn.send_response(response_type_for(pdu.command_id)(sequence=pdu.sequence, status=0x03))

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.closed.append(reason)
        self.changed.set()

    def receipts(self) -> list[Receipt]:
        return [
            read_receipt(pdu.short_message, pdu.tlvs, data_coding=pdu.data_coding)
            for pdu in self.deliveries
            if is_delivery_receipt(pdu.esm_class)
        ]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def bind(
    port: int,
    *,
    mode: str = "trx",
    system_id: str = "test",
    password: str = "secret",
    handler: Esme | None = None,
    window: int = 100,
    host: str = "127.0.0.1",
) -> tuple[SmppConnection, Esme]:
    handler = handler or Esme()
    config = SessionConfig(role=Role.ESME, window_size=window, enquire_link_interval=None)
    conn = await connect(host, port, config, handler, timeout=5.0)
    await conn.bind(BIND_TYPES_BY_MODE[mode](system_id=system_id, password=password), timeout=5.0)
    return conn, handler


def long_message_parts(text: str, *, mode: ConcatMode = ConcatMode.UDH8, reference: int = 42) -> list[SubmitSm]:
    """The submit_sm parts of ``text`` (receipts requested)."""
    split = split_message(text, reference=reference, mode=mode)
    return [
        SubmitSm(
            source_addr_ton=5,
            source_addr="SMPPGW",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="79161234567",
            esm_class=part.esm_class_bits,
            registered_delivery=1,
            data_coding=data_coding_for(split.encoding),
            short_message=part.short_message,
            tlvs=part.tlvs,
        )
        for part in split.parts
    ]


SIMPLE = SubmitSm(
    source_addr="SMPPGW",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="79161234567",
    registered_delivery=1,
    short_message=b"hello",
)


async def submit_many(
    conn: SmppConnection, count: int, pdu: Pdu = SIMPLE, *, timeout: float = 2.0
) -> list[Pdu | BaseException]:
    """Submit ``count`` copies (window permitting) and return every response or error, in completion order."""
    results: list[Pdu | BaseException] = []
    done = asyncio.Event()

    def on_done(response: Pdu | None, error: BaseException | None) -> None:
        results.append(response if response is not None else error or RuntimeError("no response"))
        if len(results) == count:
            done.set()

    for _ in range(count):
        if not conn.has_free_slot:
            await conn.wait_for_slot(5.0)
        conn.send_request(pdu, on_done, timeout=timeout)
    async with asyncio.timeout(10.0):
        await done.wait()
    return results


# ---------------------------------------------------------------------------------------------------- load generator


async def _load(host: str, port: int, binds: int, window: int, duration: float) -> None:
    submitted = responded = 0
    handler = Esme(keep=False)
    conns = [(await bind(port, host=host, handler=handler, window=window, system_id="load"))[0] for _ in range(binds)]
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + duration
    wakeup = asyncio.Event()

    def on_done(response: Pdu | None, error: BaseException | None) -> None:
        nonlocal responded
        responded += 1
        wakeup.set()

    started = time.perf_counter()
    cpu_started = time.process_time()
    while loop.time() < stop_at:
        for conn in conns:
            while conn.has_free_slot:
                conn.send_request(SIMPLE, on_done, timeout=30.0)
                submitted += 1
        wakeup.clear()
        await wakeup.wait()
    async with asyncio.timeout(30.0):
        while responded < submitted or handler.delivery_count < submitted:
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    for conn in conns:
        await conn.unbind(2.0)
    print(
        f"load: {submitted} submit_sm in {elapsed:.2f} s = {submitted / elapsed:.0f}/s, "
        f"receipts {handler.delivery_count} = {handler.delivery_count / elapsed:.0f}/s, "
        f"client CPU {100 * cpu / elapsed:.0f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="submit_sm load against a simulator (window per bind)")
    parser.add_argument("listen", help="HOST:PORT")
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    import uvloop  # noqa: PLC0415

    uvloop.run(_load(host, int(port), args.binds, args.window, args.duration))


if __name__ == "__main__":
    main()
