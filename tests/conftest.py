"""Shared test configuration: every asyncio test runs on both event loops the daemon supports.

pytest-asyncio (1.x) parametrises each async test over the loop factories returned by the
``pytest_asyncio_loop_factories`` hook; the test id gets ``[asyncio]`` / ``[uvloop]``. A test that only makes
sense on one loop selects it with ``@pytest.mark.asyncio(loop_factories=["asyncio"])``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

from smppgw.app import SWITCH_INTERVAL
from smppgw.store.base import Store
from smppgw.store.memory import MemoryStore
from smppgw.store.sqlite import SqliteStore

sys.setswitchinterval(SWITCH_INTERVAL)  # as the daemon runs: the store's writer thread must not starve


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each test that asks for ``store`` runs against both stores (SQLite in the test's temporary directory)."""
    instance: Store = MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "gw.sqlite3"))
    await instance.open()
    yield instance
    await instance.close()
