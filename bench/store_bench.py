"""SQLite store throughput with the event loop busy: the writer thread against the GIL.

Each message writes its whole life (insert, open row, SUBMITTING, segment, final state, receipt owed, receipt
delivered: 9 rows) through ``SqliteStore``; a spinner task keeps the loop busy (``--busy-ms`` of CPU, then a 0.2 ms
sleep), as a gateway under load does. Shows why the daemon lowers the GIL switch interval and writes multi-row
statements: with Python's 5 ms default, a thread waiting for the GIL is starved while the loop keeps dropping and
re-taking it for I/O polls.

    python bench/store_bench.py --messages 20000 --busy-ms 1 --switch-interval 0.0001
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from smppgw.core.message import Message, State, TrafficClass
from smppgw.store.base import SegmentRow
from smppgw.store.sqlite import SqliteStore


async def run(messages: int, busy_ms: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(str(Path(directory) / "bench.sqlite3"))
        await store.open()
        stop = asyncio.Event()

        async def spinner() -> None:
            while not stop.is_set():
                until = time.perf_counter() + busy_ms / 1000
                while time.perf_counter() < until:
                    pass
                await asyncio.sleep(0.0002)

        task = asyncio.create_task(spinner()) if busy_ms > 0 else None
        started = time.perf_counter()
        for i in range(messages):
            now = time.time()
            message = Message(
                id=f"{i:016x}", account="a", origin="smpp", source_addr="Shop", source_ton=5, source_npi=0,
                dest="79161234567", traffic_class=TrafficClass.OTP, text="hello", connector="sim",
                created_at=now, expires_at=now + 100,
            )  # fmt: skip
            store.add_message(message)
            store.set_state(message.id, State.SUBMITTING, now)
            store.add_segment(
                SegmentRow(message_id=message.id, part=0, connector="sim", smsc_id=str(i), submitted_at=now)
            )
            store.set_state(message.id, State.DELIVERED, now, receipt_due=True)
            store.receipt_delivered(message.id, now)
            if i % 500 == 0:
                await asyncio.sleep(0)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        store.after_commit(done.set_result)
        await asyncio.wait_for(done, timeout=120)
        wall = time.perf_counter() - started
        stop.set()
        if task is not None:
            await task
        rows = store.stats.rows
        batches = store.stats.batches
        await store.close()
    return {"rows": rows, "batches": batches, "seconds": wall, "rows_per_s": rows / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--busy-ms", type=float, default=1.0, help="CPU per loop turn of the spinner (0: idle loop)")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (default: Python's)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    result = uvloop.run(run(args.messages, args.busy_ms))
    print(
        f"switch interval {sys.getswitchinterval() * 1000:g} ms, busy {args.busy_ms:g} ms/turn: "
        f"{result['rows']:,.0f} rows in {result['batches']:.0f} commits, {result['seconds']:.2f} s, "
        f"{result['rows_per_s']:,.0f} rows/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
