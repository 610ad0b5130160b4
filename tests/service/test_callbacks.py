"""The callback outbox: durable, retried with backoff, bounded per host, given up after max_age."""

from __future__ import annotations

import asyncio
import json
import random

from smppgw.core.backoff import Backoff
from smppgw.core.message import Message, State, TrafficClass
from smppgw.http.client import CallbackError
from smppgw.service.callbacks import CallbackOutbox
from smppgw.store.memory import MemoryStore


def final_message(i: int, url: str) -> Message:
    return Message(
        id=f"{i:016x}",
        account="acme",
        origin="http",
        source_addr="MFO",
        source_ton=5,
        source_npi=0,
        dest="79161234567",
        traffic_class=TrafficClass.OTP,
        text="x",
        state=State.DELIVERED,
        created_at=1.0,
        done_at=2.0,
        callback_url=url,
        client_ref=f"ref-{i}",
        smsc_ids=["abc"],
        part_states=["delivered"],
    )


FAST = Backoff(initial=0.01, maximum=0.02, jitter=0.0)


async def run_until(outbox: CallbackOutbox, condition: object, timeout: float = 3.0) -> None:
    task = asyncio.create_task(outbox.run())
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # type: ignore[operator]
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_delivered_once_with_the_payload_and_removed_from_the_outbox() -> None:
    store = MemoryStore()
    posted: list[tuple[str, bytes]] = []

    async def post(url: str, body: bytes) -> int:
        posted.append((url, body))
        return 204

    outbox = CallbackOutbox(store, post=post, backoff=FAST)
    outbox.enqueue(final_message(1, "http://crm.example/dlr"))
    await run_until(outbox, lambda: outbox.stats.delivered == 1)
    await asyncio.sleep(0)
    assert len(posted) == 1
    body = json.loads(posted[0][1])
    assert body["id"] == f"{1:016x}" and body["state"] == "delivered" and body["client_ref"] == "ref-1"
    assert body["parts"] == [{"smsc_id": "abc", "state": "delivered"}]
    assert store.callbacks == {}
    assert store.callback_outcomes[0][1] == 204


async def test_failures_are_retried_then_succeed() -> None:
    store = MemoryStore()
    answers = iter([500, 0, 503, 200])

    async def post(url: str, body: bytes) -> int:
        status = next(answers)
        if status == 0:
            raise CallbackError("connection refused")
        return status

    outbox = CallbackOutbox(store, post=post, backoff=FAST, rng=random.Random(1))
    outbox.enqueue(final_message(2, "http://crm.example/dlr"))
    await run_until(outbox, lambda: outbox.stats.delivered == 1)
    assert outbox.stats.failed_attempts == 3
    assert outbox.stats.attempts == 4


async def test_a_slow_host_does_not_block_others() -> None:
    store = MemoryStore()
    release = asyncio.Event()
    fast_done: list[str] = []

    async def post(url: str, body: bytes) -> int:
        if "slow" in url:
            await release.wait()
        else:
            fast_done.append(url)
        return 200

    outbox = CallbackOutbox(store, post=post, per_host=2, backoff=FAST)
    for i in range(10):
        outbox.enqueue(final_message(i, "http://slow.example/dlr"))
    for i in range(10, 15):
        outbox.enqueue(final_message(i, "http://fast.example/dlr"))
    await run_until(outbox, lambda: len(fast_done) == 5)
    assert outbox.stats.delivered == 5  # the slow host holds only its own 2 slots
    release.set()


async def test_given_up_after_max_age() -> None:
    store = MemoryStore()

    async def post(url: str, body: bytes) -> int:
        return 500

    outbox = CallbackOutbox(store, post=post, backoff=FAST, max_age=0.05)
    outbox.enqueue(final_message(3, "http://down.example/dlr"))
    await run_until(outbox, lambda: outbox.stats.given_up == 1)
    await asyncio.sleep(0)
    assert store.callbacks == {}
    assert store.callback_outcomes[-1][1] == 500


async def test_pending_callbacks_survive_a_restart() -> None:
    store = MemoryStore()

    async def never(url: str, body: bytes) -> int:
        return 503

    first = CallbackOutbox(store, post=never, backoff=Backoff(initial=60.0, jitter=0.0))
    first.enqueue(final_message(4, "http://crm.example/dlr"))
    await run_until(first, lambda: first.stats.failed_attempts == 1)
    await asyncio.sleep(0)
    recovered = (await store.recover()).callbacks
    assert [c.message_id for c in recovered] == [f"{4:016x}"]
    assert recovered[0].attempts == 1
    delivered: list[str] = []

    async def ok(url: str, body: bytes) -> int:
        delivered.append(url)
        return 200

    second = CallbackOutbox(store, post=ok, backoff=FAST)
    for item in recovered:
        item.next_at = 0.0  # due now (the test does not wait a minute)
    second.restore(recovered)
    await run_until(second, lambda: second.stats.delivered == 1)
    assert delivered == ["http://crm.example/dlr"]
