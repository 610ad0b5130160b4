"""The durable callback outbox: a POST to the client's ``callback_url`` on every final state.

Retries with exponential backoff and jitter for at most ``max_age`` seconds; success is any 2xx. At most
``per_host`` callbacks are in flight to one host, so one slow receiver never delays the others. Every callback is in
the store until it succeeds or is given up, so it survives a restart."""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec

from smppgw.core.backoff import Backoff
from smppgw.core.message import Message
from smppgw.http.client import CallbackError, post_json, split_url
from smppgw.obs.logging import get_logger
from smppgw.store.base import PendingCallback, Store

log = get_logger("smppgw.callbacks")

Poster = Callable[[str, bytes], Awaitable[int]]


class CallbackPart(msgspec.Struct, kw_only=True):
    smsc_id: str | None
    state: str | None


class CallbackPayload(msgspec.Struct, kw_only=True):
    """The JSON body POSTed to ``callback_url``."""

    id: str
    client_ref: str | None
    to: str
    state: str
    status: int
    segments: int
    accepted_at: str
    done_at: str | None
    parts: list[CallbackPart]


_ENCODE = msgspec.json.Encoder()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def payload_of(message: Message) -> bytes:
    return _ENCODE.encode(
        CallbackPayload(
            id=message.id,
            client_ref=message.client_ref,
            to=message.dest,
            state=message.state.value,
            status=message.status,
            segments=message.segments,
            accepted_at=_iso(message.created_at) or "",
            done_at=_iso(message.done_at),
            parts=[
                CallbackPart(smsc_id=i, state=s) for i, s in zip(message.smsc_ids, message.part_states, strict=False)
            ],
        )
    )


class CallbackStats:
    __slots__ = ("attempts", "delivered", "failed_attempts", "given_up")

    def __init__(self) -> None:
        self.attempts = 0
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0


class CallbackOutbox:
    """Owns the pending callbacks; ``run`` delivers them until cancelled."""

    def __init__(
        self,
        store: Store,
        *,
        post: Poster | None = None,
        per_host: int = 4,
        max_in_flight: int = 256,
        max_age: float = 86_400.0,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.per_host = per_host
        self.max_in_flight = max_in_flight
        self.max_age = max_age
        self.timeout = timeout
        self.backoff = backoff or Backoff(initial=1.0, maximum=600.0, jitter=0.2)
        self.stats = CallbackStats()
        self._post = post or (lambda url, body: post_json(url, body, timeout=self.timeout))
        self._rng = rng or random.Random()
        self._due: list[tuple[float, int, PendingCallback]] = []  # heap by next_at
        self._waiting: dict[str, deque[PendingCallback]] = {}  # per host, over its limit
        self._host_in_flight: dict[str, int] = {}
        self._in_flight = 0
        self._counter = 0
        self._wakeup = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._due) + sum(len(q) for q in self._waiting.values()) + self._in_flight

    def enqueue(self, message: Message) -> None:
        """Persist and schedule the callback for ``message`` (which has a ``callback_url``)."""
        assert message.callback_url is not None
        now = time.time()
        pending = PendingCallback(
            message_id=message.id, url=message.callback_url, payload=payload_of(message), attempts=0, next_at=now,
            created_at=now,
        )  # fmt: skip
        self.store.add_callback(pending)
        self._schedule(pending)

    def restore(self, pending: list[PendingCallback]) -> None:
        for item in pending:
            self._schedule(item)

    def _schedule(self, item: PendingCallback) -> None:
        self._counter += 1
        heapq.heappush(self._due, (item.next_at, self._counter, item))
        self._wakeup.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                self._wakeup.clear()
                now = time.time()
                while self._due and self._due[0][0] <= now and self._in_flight < self.max_in_flight:
                    _, _, item = heapq.heappop(self._due)
                    self._start(group, item)
                delay = None if not self._due else max(0.0, self._due[0][0] - now)
                try:
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass

    def _start(self, group: asyncio.TaskGroup, item: PendingCallback) -> None:
        try:
            host = split_url(item.url)[0]
        except CallbackError:
            host = ""
        if self._host_in_flight.get(host, 0) >= self.per_host:
            self._waiting.setdefault(host, deque()).append(item)
            return
        self._host_in_flight[host] = self._host_in_flight.get(host, 0) + 1
        self._in_flight += 1
        group.create_task(self._deliver(group, host, item))

    async def _deliver(self, group: asyncio.TaskGroup, host: str, item: PendingCallback) -> None:
        self.stats.attempts += 1
        status = 0
        try:
            status = await self._post(item.url, item.payload)
        except CallbackError as exc:
            log.debug("callback_failed", message_id=item.message_id, error=str(exc))
        except Exception as exc:  # a bad row must never stop the outbox (it would stop the gateway)
            log.warning("callback_error", message_id=item.message_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._host_in_flight[host] -= 1
            self._in_flight -= 1
        now = time.time()
        if 200 <= status < 300:
            self.stats.delivered += 1
            self.store.callback_done(item.message_id, status, now)
        elif now - item.created_at >= self.max_age:
            self.stats.given_up += 1
            log.info("callback_given_up", message_id=item.message_id, attempts=item.attempts + 1, http_status=status)
            self.store.callback_done(item.message_id, status, now)
        else:
            self.stats.failed_attempts += 1
            item.attempts += 1
            item.next_at = now + self.backoff.delay(item.attempts, self._rng)
            self.store.callback_retry(item.message_id, item.attempts, item.next_at)
            self._schedule(item)
        waiting = self._waiting.get(host)
        if waiting:
            self._start(group, waiting.popleft())
        self._wakeup.set()
