"""The WAL stays bounded under continuous writes: the background checkpoints cannot finish while the writer keeps
committing, so past the limit the writer checkpoints itself and the WAL starts over."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from smppgw.core.message import Message, State, TrafficClass
from smppgw.store import sqlite as sqlite_store
from smppgw.store.sqlite import SqliteStore


async def test_wal_stays_near_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_BYTES", 256 << 10)
    store = SqliteStore(str(tmp_path / "gw.sqlite3"), commit_interval=0.0005)
    await store.open()
    try:
        wal = tmp_path / "gw.sqlite3-wal"
        biggest = 0
        for batch in range(150):
            for i in range(40):
                now = time.time()
                message = Message(
                    id=f"{batch * 100 + i:016x}", account="a", origin="smpp", source_addr="Shop", source_ton=5,
                    source_npi=0, dest="79161234567", traffic_class=TrafficClass.OTP, text="x" * 100,
                    connector="sim", created_at=now, expires_at=now + 60,
                )  # fmt: skip
                store.add_message(message)
                store.set_state(message.id, State.DELIVERED, now)
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            store.after_commit(done.set_result)
            assert await done
            biggest = max(biggest, os.stat(wal).st_size if wal.exists() else 0)
        assert store.stats.wal_checkpoints > 0
        assert biggest < 4 * (256 << 10)  # bounded near the limit, not growing with the data written
    finally:
        await store.close()
