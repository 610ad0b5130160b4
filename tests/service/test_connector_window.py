"""The connector never takes more parts from its queue than its windows have free slots, counting the parts that
wait for their SUBMITTING commit (otherwise every pump wakeup takes another window's worth, the pile is bounded only
by the token rate, and the overflow later jumps ahead of OTP through the retry queue)."""

from __future__ import annotations

import asyncio

from smppgw.app import build_router
from smppgw.config import AccountConfig, ConnectorConfig, GatewayConfig, RoutingConfig
from smppgw.core.message import State
from smppgw.service.connector import Connector
from smppgw.service.gateway import Gateway, TextSubmit
from smppgw.store.memory import MemoryStore

from .fakes import FreeLink


async def test_parts_awaiting_their_commit_hold_window_slots() -> None:
    config = GatewayConfig(
        accounts=(AccountConfig(system_id="acme", rate=1e6),),
        connectors=(ConnectorConfig(name="sim", rate=1e6),),
        routing=RoutingConfig(default="sim"),
    )
    store = MemoryStore()
    gateway = Gateway(config, store, build_router(config))
    connector = Connector(config.connectors[0], gateway)
    gateway.add_connector(connector)
    request = TextSubmit(to="79161234567", sender="Shop", text="hi", traffic_class="otp")
    messages = [gateway.accept_text(gateway.accounts["acme"], request) for _ in range(50)]
    for message in messages:
        gateway.persist(message, lambda ok: None)
    await asyncio.sleep(0)  # commit: all 50 queued
    connector.link = FreeLink(10)  # type: ignore[assignment]
    connector._send_what_we_can()
    connector._send_what_we_can()  # before the SUBMITTING commit: nothing more may be taken
    assert sum(m.state is State.SUBMITTING for m in messages) == 10
    assert connector.queued == 40
