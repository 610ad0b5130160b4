"""Fixtures of the store suites: every test runs against both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smppgw.store.base import Store
from smppgw.store.memory import MemoryStore
from smppgw.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    instance: Store = MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "gw.sqlite3"))
    await instance.open()
    yield instance
    await instance.close()
