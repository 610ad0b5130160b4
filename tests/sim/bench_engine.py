"""CPU cost of the simulator per submit_sm with its receipt, without sockets: a fake transport feeds batches of
submit_sm frames into one SMSC connection and answers every deliver_sm. Run: python -m tests.sim.bench_engine [N]."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from smppgw.sim import SimConfig, Simulator, config_from_dict
from smppgw.smpp.codec import decode_header, encode
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import BindTransceiver, DeliverSmResp

from .helpers import SIMPLE


class FakeTransport:
    def __init__(self) -> None:
        self.framer = Framer()
        self.frames: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.frames += self.framer.feed(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def run(total: int, batch: int, config: SimConfig) -> float:
    sim = Simulator(config)
    await sim.start("127.0.0.1", 0)
    assert sim._server is not None
    conn: Any = sim._server._make_protocol()
    transport = FakeTransport()
    conn.connection_made(transport)
    conn.data_received(encode(BindTransceiver(sequence=1, system_id="bench", password="x")))
    transport.frames.clear()
    submits = b"".join(encode(SIMPLE.__class__(**{**_fields(SIMPLE), "sequence": i + 2})) for i in range(batch))
    loop = asyncio.get_running_loop()
    started = time.process_time()
    done = 0
    while done < total:
        conn.data_received(submits)
        done += batch
        await asyncio.sleep(0)
        sim._on_tick() if sim._tick_handle is None else None
        await asyncio.sleep(0.0025)  # let the wheel tick
        acks = [
            encode(DeliverSmResp(sequence=decode_header(frame)[3]))
            for frame in transport.frames
            if decode_header(frame)[1] == 0x00000005
        ]
        transport.frames.clear()
        if acks:
            conn.data_received(b"".join(acks))
    await asyncio.sleep(0.05)
    sim._on_tick()
    acks = [encode(DeliverSmResp(sequence=decode_header(f)[3])) for f in transport.frames if decode_header(f)[1] == 5]
    conn.data_received(b"".join(acks))
    cpu = time.process_time() - started
    stats = sim.stats
    assert stats.receipts_acked == total, (stats.receipts_acked, total)
    del loop
    await sim.close(0.1)
    return cpu


def _fields(pdu: Any) -> dict[str, Any]:
    return {name: getattr(pdu, name) for name in pdu.__struct_fields__}


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    config = config_from_dict({"seed": 1, "receipts": {"delay_ms": 0}, "tick_ms": 1})
    import uvloop  # noqa: PLC0415

    cpu = uvloop.run(run(total, 200, config))
    print(f"{total} submit_sm + receipts: {cpu:.2f} s CPU = {1e6 * cpu / total:.1f} us per message")


if __name__ == "__main__":
    main()
