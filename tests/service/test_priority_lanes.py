"""Priority lanes of a connector, through its own sending loop: OTP and transactional (lane 0) before service and
collection (lane 1) before marketing (lane 2), FIFO within a lane. A not-running connector over a fake link; the
batches it would send are recorded instead of sent. Deterministic: an injected clock, no sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from smppgw.app import build_router
from smppgw.config import AccountConfig, ConnectorConfig, GatewayConfig, RoutingConfig
from smppgw.core.message import Message, State
from smppgw.service.connector import Connector
from smppgw.service.gateway import Gateway, TextSubmit
from smppgw.smpp.concat import Part
from smppgw.store.memory import MemoryStore

from .fakes import FreeLink

NOON_MOSCOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC).timestamp()  # Tuesday 12:00 Moscow: every window is open


class _RecordingConnector(Connector):
    """Records each batch the sending loop would commit and send, in order, instead of sending it."""

    def __init__(self, config: ConnectorConfig, gateway: Gateway) -> None:
        super().__init__(config, gateway)
        self.batches: list[list[Message]] = []

    def _flush(self, batch: list[tuple[Message, list[Part] | None, int]]) -> None:
        if batch:
            self.batches.append([message for message, _, _ in batch])
            for message, _, _ in batch:
                message.state = State.SUBMITTING

    @property
    def sent(self) -> list[Message]:
        return [message for batch in self.batches for message in batch]


def _gateway(free: int) -> tuple[Gateway, _RecordingConnector]:
    config = GatewayConfig(
        accounts=(AccountConfig(system_id="acme", password="pw", rate=1e9),),
        connectors=(ConnectorConfig(name="sim", rate=1e9),),
        routing=RoutingConfig(default="sim"),
    )
    gateway = Gateway(config, MemoryStore(), build_router(config), clock=lambda: NOON_MOSCOW)
    connector = _RecordingConnector(config.connectors[0], gateway)
    connector.clock = lambda: NOON_MOSCOW
    connector.link = FreeLink(free)  # type: ignore[assignment]
    gateway.add_connector(connector)
    return gateway, connector


def _accept(gateway: Gateway, klass: str, count: int, first_number: int) -> list[Message]:
    """``count`` messages of ``klass`` to distinct Moscow numbers, persisted (queued once the commit runs)."""
    messages = []
    for i in range(count):
        request = TextSubmit(to=f"7916{first_number + i:07d}", sender="Lender", text="Hi", traffic_class=klass)
        message = gateway.accept_text(gateway.accounts["acme"], request)
        gateway.persist(message, lambda ok: None)
        messages.append(message)
    return messages


async def _queued(gateway: Gateway, *groups: list[Message]) -> None:
    await asyncio.sleep(0)  # the MemoryStore commits: persisted messages are dispatched to their lanes
    assert all(m.state is State.QUEUED for group in groups for m in group)


def _ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


async def test_otp_then_collection_then_marketing_fifo_within_each_class() -> None:
    gateway, connector = _gateway(free=10_000)
    marketing = _accept(gateway, "marketing", 1000, 0)
    otp = _accept(gateway, "otp", 10, 10_000)
    collection = _accept(gateway, "collection", 10, 20_000)
    await _queued(gateway, marketing, otp, collection)
    assert connector.queued == 1020
    assert connector._send_what_we_can() is None
    assert _ids(connector.sent) == _ids(otp) + _ids(collection) + _ids(marketing)
    assert connector.queued == 0 and connector._peek() is None


async def test_priority_holds_pass_by_pass_with_a_small_window() -> None:
    gateway, connector = _gateway(free=7)
    marketing = _accept(gateway, "marketing", 1000, 0)
    await _queued(gateway, marketing)
    connector._send_what_we_can()
    assert _ids(connector.sent) == _ids(marketing[:7])
    collection, otp = [], []
    for i in range(10):  # arriving interleaved, behind 993 marketing messages
        collection += _accept(gateway, "collection", 1, 20_000 + i)
        otp += _accept(gateway, "otp", 1, 10_000 + i)
    await _queued(gateway, collection, otp)
    for _ in range(3):
        connector._send_what_we_can()
    assert [len(batch) for batch in connector.batches] == [7, 7, 7, 7]
    assert _ids(connector.sent[7:]) == _ids(otp) + _ids(collection) + _ids(marketing[7:8])


async def test_classes_sharing_a_lane_keep_their_arrival_order() -> None:
    gateway, connector = _gateway(free=100)
    arrivals: list[Message] = []
    for i in range(5):
        arrivals += _accept(gateway, "service", 1, 30_000 + i)
        arrivals += _accept(gateway, "transactional", 1, 40_000 + i)
        arrivals += _accept(gateway, "otp", 1, 10_000 + i)
        arrivals += _accept(gateway, "collection", 1, 20_000 + i)
    await _queued(gateway, arrivals)
    connector._send_what_we_can()
    lane0 = [m for m in arrivals if m.traffic_class in ("otp", "transactional")]
    lane1 = [m for m in arrivals if m.traffic_class in ("service", "collection")]
    assert _ids(connector.sent) == _ids(lane0) + _ids(lane1)
