"""Helpers of the store suites."""

from __future__ import annotations

import asyncio

from smppgw.store.base import Store


async def committed(store: Store) -> bool:
    """Wait (at most 5 s) for everything queued so far; True once durable."""
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.after_commit(done.set_result)
    return await asyncio.wait_for(done, 5)
