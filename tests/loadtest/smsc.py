"""A tiny, fast SMSC for the load tool's tests (and, run as a module, for measurements in another process).

Built on ``smppgw.net.server.SmppServer``: accepts every bind, answers every submit_sm (optionally after a delay, or
with an error every Nth), sends one delivery receipt per acknowledged submit_sm on a receiving bind, and counts every
PDU it sees so tests can compare the load tool's numbers with the server's own.

    python -m tests.loadtest.smsc --port 2776 [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from smppgw.net.connection import SmppConnection
from smppgw.net.server import SmppServer
from smppgw.smpp.constants import CommandStatus, EsmClass, MessageState, Tag
from smppgw.smpp.pdu import DeliverSm, Pdu, SubmitSm, SubmitSmResp, _Bind, tlv_cstr, tlv_int
from smppgw.smpp.receipt import format_receipt_text
from smppgw.smpp.session import Role, SessionConfig, State


def format_id(n: int, style: str) -> str:
    """The SMSC's message id ``n`` written in ``style``."""
    if style == "dec":
        return str(n)
    if style == "dec0":
        return f"{n:020d}"
    if style == "hex":
        return f"{n:X}"
    if style == "hex0":
        return f"{n:016x}"
    if style == "uuid":
        return str(uuid.UUID(int=n))
    if style == "uuidhex":
        return uuid.UUID(int=n).hex.upper()
    raise ValueError(style)


@dataclass
class SmscOptions:
    resp_delay: float = 0.0  # seconds before each submit_sm_resp (responses stay in order)
    resp_id: str = "dec"
    receipt_id: str = "dec"
    first_id: int = 0x5A5A_0000  # large ids: few all-digit hex ids, no tiny ambiguous numbers
    receipts: bool = True
    receipt_before_resp: bool = False  # receipt queued ahead of the submit_sm_resp (same write in trx mode)
    receipt_style: str = "both"  # text | tlv | both
    reject_every: int = 0  # every Nth submit_sm gets reject_status
    reject_status: int = CommandStatus.ESME_RTHROTTLED
    drop_receipt_every: int = 0  # every Nth acknowledged part gets no receipt
    duplicate_receipt_every: int = 0  # every Nth receipt is sent twice
    window: int = 1000


@dataclass
class SmscCounters:
    binds: collections.Counter[str] = field(default_factory=collections.Counter)
    submit_sm: int = 0
    submit_udhi: int = 0
    submit_sar: int = 0
    submit_payload: int = 0
    resp_ok: int = 0
    resp_error: int = 0
    deliver_sm_sent: int = 0
    deliver_sm_resp: int = 0
    deliver_sm_failed: int = 0
    receipts_dropped: int = 0
    destinations: set[str] = field(default_factory=set)
    data_codings: collections.Counter[int] = field(default_factory=collections.Counter)


class FastSmsc:
    """The ConnectionHandler of the test SMSC."""

    def __init__(self, options: SmscOptions | None = None) -> None:
        self.options = options or SmscOptions()
        self.counters = SmscCounters()
        self.server = SmppServer(self, SessionConfig(role=Role.SMSC, window_size=self.options.window))
        self._next_id = self.options.first_id
        self._receivers: list[SmppConnection] = []
        self._rr = 0
        self._queue: collections.deque[DeliverSm] = collections.deque()
        self._date = datetime.now().replace(second=0, microsecond=0)
        self._on_deliver_done = self._deliver_done

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.server.start(host, port)
        return self.server.port

    async def close(self) -> None:
        await self.server.close(1.0)

    # ConnectionHandler
    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        conn.accept_bind("fastsmsc")

    def on_bound(self, conn: SmppConnection) -> None:
        state = conn.session.state
        self.counters.binds[state.name] += 1
        if state in (State.BOUND_RX, State.BOUND_TRX):
            self._receivers.append(conn)

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        if conn in self._receivers:
            self._receivers.remove(conn)

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if not isinstance(pdu, SubmitSm):
            return
        c, o = self.counters, self.options
        c.submit_sm += 1
        c.destinations.add(pdu.destination_addr)
        c.data_codings[pdu.data_coding] += 1
        if pdu.esm_class & EsmClass.UDHI:
            c.submit_udhi += 1
        if any(tag == Tag.SAR_MSG_REF_NUM for tag, _ in pdu.tlvs):
            c.submit_sar += 1
        if any(tag == Tag.MESSAGE_PAYLOAD for tag, _ in pdu.tlvs):
            c.submit_payload += 1
        if o.reject_every and c.submit_sm % o.reject_every == 0:
            c.resp_error += 1
            self._respond(conn, SubmitSmResp(sequence=pdu.sequence, status=o.reject_status))
            return
        n = self._next_id
        self._next_id += 1
        c.resp_ok += 1
        resp = SubmitSmResp(sequence=pdu.sequence, message_id=format_id(n, o.resp_id))
        if o.receipt_before_resp:
            self._receipt(pdu, n)
            self._respond(conn, resp)
        else:
            self._respond(conn, resp)
            self._receipt(pdu, n)

    def _respond(self, conn: SmppConnection, resp: SubmitSmResp) -> None:
        delay = self.options.resp_delay
        if delay:
            asyncio.get_running_loop().call_later(delay, conn.send_response, resp)
        else:
            conn.send_response(resp)

    def _receipt(self, pdu: SubmitSm, n: int) -> None:
        o, c = self.options, self.counters
        if not o.receipts or not pdu.registered_delivery & 0x03:
            return
        if o.drop_receipt_every and (n - o.first_id + 1) % o.drop_receipt_every == 0:
            c.receipts_dropped += 1
            return
        rid = format_id(n, o.receipt_id)
        text = b""
        tlvs: tuple[tuple[int, bytes], ...] = ()
        if o.receipt_style in ("text", "both"):
            text = format_receipt_text(
                rid, MessageState.DELIVERED, submit_date=self._date, done_date=self._date
            ).encode()
        if o.receipt_style in ("tlv", "both"):
            tlvs = (tlv_cstr(Tag.RECEIPTED_MESSAGE_ID, rid), tlv_int(Tag.MESSAGE_STATE, MessageState.DELIVERED, 1))
        receipt = DeliverSm(
            source_addr=pdu.destination_addr,
            dest_addr_ton=pdu.source_addr_ton,
            dest_addr_npi=pdu.source_addr_npi,
            destination_addr=pdu.source_addr,
            esm_class=EsmClass.TYPE_SMSC_DELIVERY_RECEIPT,
            short_message=text,
            tlvs=tlvs,
        )
        self._queue.append(receipt)
        if o.duplicate_receipt_every and (n - o.first_id + 1) % o.duplicate_receipt_every == 0:
            self._queue.append(receipt)
        self._drain()

    def _drain(self) -> None:
        queue, receivers = self._queue, self._receivers
        while queue and receivers:
            for _ in range(len(receivers)):
                self._rr = (self._rr + 1) % len(receivers)
                conn = receivers[self._rr]
                if conn.has_free_slot:
                    break
            else:
                return
            conn.send_request(queue.popleft(), self._on_deliver_done)
            self.counters.deliver_sm_sent += 1

    def _deliver_done(self, response: Pdu | None, error: BaseException | None) -> None:
        if response is not None and response.status == 0:
            self.counters.deliver_sm_resp += 1
        else:
            self.counters.deliver_sm_failed += 1
        if self._queue:
            self._drain()


async def _serve(port: int, seconds: float, options: SmscOptions) -> None:
    smsc = FastSmsc(options)
    await smsc.start("127.0.0.1", port)
    print(f"fast SMSC on 127.0.0.1:{smsc.server.port}", flush=True)
    try:
        await asyncio.sleep(seconds)
    finally:
        await smsc.close()
        c = smsc.counters
        print(
            f"submit_sm {c.submit_sm} resp ok {c.resp_ok} error {c.resp_error} deliver_sm {c.deliver_sm_sent} "
            f"deliver_sm_resp {c.deliver_sm_resp}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="a minimal fast SMSC for load-tool measurements")
    parser.add_argument("--port", type=int, default=2776)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--no-receipts", action="store_true")
    args = parser.parse_args()
    import uvloop  # noqa: PLC0415

    uvloop.run(_serve(args.port, args.seconds, SmscOptions(receipts=not args.no_receipts, window=10_000)))


if __name__ == "__main__":
    main()
