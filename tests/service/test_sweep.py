"""The sweeper: expiry of queued messages, UNKNOWN after validity + grace, bounded bookkeeping."""

from __future__ import annotations

import time

from smppgw.config import ConnectorConfig, default_config
from smppgw.core.message import Message, State, TrafficClass
from smppgw.service.connector import Connector
from smppgw.service.gateway import Gateway
from smppgw.store.memory import MemoryStore


class _NoRoutes:
    def route(self, *args: object) -> None:  # pragma: no cover - never called here
        raise AssertionError


def live_message(gateway: Gateway, i: int, *, state: State, expires_at: float, parts: list[str | None]) -> Message:
    message = Message(
        id=f"{i:016x}",
        account="local",
        origin="smpp",
        source_addr="MFO",
        source_ton=5,
        source_npi=0,
        dest="79161234567",
        traffic_class=TrafficClass.OTP,
        text="x",
        connector="sim",
        segments=len(parts),
        state=state,
        expires_at=expires_at,
        smsc_ids=["id"] * len(parts),
        part_states=list(parts),
    )
    gateway.live[message.id] = message
    gateway._track(message, message.expires_at)
    return message


async def test_queued_expire_and_submitted_wait_for_the_grace_then_end_unknown_or_aggregated() -> None:
    gateway = Gateway(default_config(), MemoryStore(), _NoRoutes())  # type: ignore[arg-type]
    gateway.add_connector(Connector(ConnectorConfig(name="sim", receipt_timeout=100.0), gateway))
    now = time.time()
    queued = live_message(gateway, 1, state=State.QUEUED, expires_at=now - 1, parts=[None])
    waiting = live_message(gateway, 2, state=State.SUBMITTED, expires_at=now - 1, parts=[None])
    overdue = live_message(gateway, 3, state=State.SUBMITTED, expires_at=now - 200, parts=[None, "delivered"])
    silent = live_message(gateway, 4, state=State.SUBMITTED, expires_at=now - 200, parts=[None])
    gateway.sweep()
    assert queued.state is State.EXPIRED
    assert waiting.state is State.SUBMITTED  # validity over, but the receipt may still come within the grace
    assert overdue.state is State.DELIVERED  # the parts that reported decide
    assert silent.state is State.UNKNOWN
    assert set(gateway.live) == {waiting.id}


async def test_deadline_heap_stays_bounded_by_live_messages() -> None:
    gateway = Gateway(default_config(), MemoryStore(), _NoRoutes())  # type: ignore[arg-type]
    gateway.add_connector(Connector(ConnectorConfig(name="sim"), gateway))
    far = time.time() + 3600
    for i in range(30_000):
        message = live_message(gateway, i, state=State.SUBMITTED, expires_at=far, parts=[None])
        del gateway.live[message.id]  # finished long before its deadline
    gateway.sweep()
    assert len(gateway._deadlines) <= 2 * len(gateway.live) + 10_000
