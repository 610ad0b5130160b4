"""A deliberately minimal SMSC for measuring the load tool's own ceiling (run it in another process).

It reads only PDU headers and answers from precomputed bytes: bind → bind_resp, enquire_link → resp, unbind → resp and
close, submit_sm → submit_sm_resp with a decimal id plus (unless ``--no-receipts``) a receipt deliver_sm with the
appendix-B text and the receipt TLVs, all in one write per read. It ignores its own window (never waits for
deliver_sm_resp) so that it costs a few µs per PDU and the load tool, not the server, is the bottleneck. Not an SMSC
for anything else: no validation, no state.

    python -m tests.loadtest.rawsmsc --port 2777 [--no-receipts] [--seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
from typing import cast

_HEADER = struct.Struct(">IIII")
_BIND_IDS = {0x01, 0x02, 0x09}
_SUBMIT_SM = 0x04
_ENQUIRE_LINK = 0x15
_UNBIND = 0x06
_DELIVER_SM_RESP = 0x8000_0005
_DELIVER_SM = 0x05
_TEXT_HEAD = b"id:"
_TEXT_TAIL = b" sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:"
_DELIVER_HEAD = b"\x00\x01\x0179000000000\x00\x05\x00MFK-Zaim\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00"


class Counters:
    submit_sm = 0
    deliver_sm = 0
    deliver_sm_resp = 0
    next_id = 1_000_000_000  # shared by every connection: ids are unique per SMSC


class RawSmsc(asyncio.Protocol):
    def __init__(self, receipts: bool, counters: Counters) -> None:
        self.receipts = receipts
        self.counters = counters
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.sequence = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        pos, size = 0, len(buffer)
        close = False
        while size - pos >= 16:
            length, command_id, _, sequence = _HEADER.unpack_from(buffer, pos)
            if size - pos < length:
                break
            pos += length
            if command_id == _SUBMIT_SM:
                self._submit(sequence, out)
            elif command_id == _DELIVER_SM_RESP:
                self.counters.deliver_sm_resp += 1
            elif command_id in _BIND_IDS:
                out.append(_HEADER.pack(24, command_id | 0x8000_0000, 0, sequence) + b"rawsmsc\x00")
            elif command_id == _ENQUIRE_LINK:
                out.append(_HEADER.pack(16, command_id | 0x8000_0000, 0, sequence))
            elif command_id == _UNBIND:
                out.append(_HEADER.pack(16, command_id | 0x8000_0000, 0, sequence))
                close = True
        self.buffer = buffer[pos:]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if close and self.transport is not None:
            self.transport.close()

    def _submit(self, sequence: int, out: list[bytes]) -> None:
        self.counters.submit_sm += 1
        message_id = b"%d" % self.counters.next_id
        self.counters.next_id += 1
        out.append(_HEADER.pack(17 + len(message_id), 0x8000_0004, 0, sequence) + message_id + b"\x00")
        if not self.receipts:
            return
        text = _TEXT_HEAD + message_id + _TEXT_TAIL
        tlvs = b"\x00\x1e\x00%c%b\x04\x27\x00\x01\x02" % (len(message_id) + 1, message_id + b"\x00")
        body = _DELIVER_HEAD + bytes((len(text),)) + text + tlvs
        self.sequence += 1
        out.append(_HEADER.pack(16 + len(body), _DELIVER_SM, 0, self.sequence) + body)
        self.counters.deliver_sm += 1


async def serve(port: int, seconds: float, receipts: bool) -> None:
    counters = Counters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RawSmsc(receipts, counters), "127.0.0.1", port)
    print(f"raw SMSC on 127.0.0.1:{port}", flush=True)
    try:
        await asyncio.sleep(seconds)
    finally:
        server.close()
        print(
            f"submit_sm {counters.submit_sm} deliver_sm {counters.deliver_sm} resp {counters.deliver_sm_resp}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=2777)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--no-receipts", action="store_true")
    args = parser.parse_args()
    import uvloop  # noqa: PLC0415

    uvloop.run(serve(args.port, args.seconds, not args.no_receipts))


if __name__ == "__main__":
    main()
