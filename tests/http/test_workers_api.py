"""The HTTP API with two workers on one store: an idempotency key gives one message whichever worker each request
reaches and however they interleave (the store decides at commit; a twin waiting on a refused message is answered
with the stored one)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smppgw.core.workers import WorkerSlot

from .api_helpers import ACME, make_config, message, request, running_app, store_rows


async def test_one_message_per_key_across_workers(tmp_path: Path) -> None:
    config = make_config(tmp_path / "gw.sqlite3")
    async with (
        running_app(config, worker=WorkerSlot(0, 2)) as first,
        running_app(config, worker=WorkerSlot(1, 2)) as second,
    ):
        ports = (first.http_port, second.http_port, first.http_port)  # two requests on worker 0, one on worker 1
        keys = [f"key-{i}" for i in range(30)]

        async def post(port: int, key: str) -> tuple[str, int, str]:
            reply = await request(port, "POST", "/v1/messages", message(client_ref=key), token=ACME)
            assert reply.status == 202, (reply.status, reply.body)
            return key, reply.status, reply.json()["id"]

        replies = await asyncio.gather(*(post(port, key) for key in keys for port in ports))
        batch = [message(client_ref=key) for key in keys[:10]]
        batch_reply = await request(second.http_port, "POST", "/v1/messages/batch", {"messages": batch}, token=ACME)
    assert {status for _, status, _ in replies} == {202}
    ids: dict[str, set[str]] = {}
    for key, _, message_id in replies:
        ids.setdefault(key, set()).add(message_id)
    assert all(len(found) == 1 for found in ids.values()), ids
    assert batch_reply.status == 200
    assert [item["accepted"]["id"] for item in batch_reply.json()["results"]] == [ids[k].pop() for k in keys[:10]]
    stored = store_rows(tmp_path / "gw.sqlite3", "SELECT client_ref, count(*) FROM messages GROUP BY client_ref")
    assert sorted(stored) == sorted((key, 1) for key in keys)
