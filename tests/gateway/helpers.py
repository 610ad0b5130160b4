"""Shared pieces of the end-to-end gateway suite: four simulated operators, a gateway config routing to them by
operator, the gateway running in-process, and an upstream ESME (our own client) that records what comes back.

Numbers (checked against ``smppgw/data/def9xx.csv`` in ``test_numbers_match_the_numbering_plan``):
7916… MTS (INN 7740000076), 7903… Beeline (7713076301), 7921… MegaFon (7812014560), 7900… Tele2 (7743895280);
7907… is in no range of the plan (unallocated).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from smppgw.app import GatewayApp
from smppgw.config import (
    AccountConfig,
    ConnectorConfig,
    GatewayConfig,
    HttpConfig,
    LogConfig,
    RoutingConfig,
    RoutingRuleConfig,
    SmppServerConfig,
    StoreConfig,
)
from smppgw.core.workers import SOLE_WORKER, WorkerSlot
from smppgw.net.client import connect
from smppgw.net.connection import SmppConnection
from smppgw.sim import HandsetMessage, SimConfig, Simulator, config_from_dict
from smppgw.smpp.constants import CommandStatus, MessageState, Tag, is_delivery_receipt
from smppgw.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    _Bind,
    get_tlv,
)
from smppgw.smpp.receipt import read_receipt
from smppgw.smpp.session import Role, SessionConfig

HOST = "127.0.0.1"
SEED = 4242
OPERATORS = ("mts", "beeline", "megafon", "tele2")
PREFIX = {"mts": "7916", "beeline": "7903", "megafon": "7921", "tele2": "7900"}
INN = {"mts": "7740000076", "beeline": "7713076301", "megafon": "7812014560", "tele2": "7743895280"}
UNALLOCATED = "79070000001"  # DEF 907: no range in the plan
ACCOUNT = "crm"
PASSWORD = "secret"
STEP = 5.0  # bound of every single await on the network


def number(operator: str, n: int) -> str:
    """A subscriber of ``operator``: the DEF prefix then 7 digits."""
    return f"{PREFIX[operator]}{n:07d}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; AssertionError after ``timeout`` seconds (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------------------- simulators


def sim_config(seed: int, **overrides: Any) -> SimConfig:
    """A fast simulator: synchronous responses, receipts after 1-20 ms, handset recording on."""
    data: dict[str, Any] = {
        "seed": seed,
        "handset_record": True,
        "tick_ms": 1.0,
        "enquire_link_s": None,
        "receipts": {"delay_ms": "uniform:1-20", "retry_delay_ms": 50.0, "max_attempts": 50},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return config_from_dict(data)


class Operator:
    """One simulated SMSC plus what reached its handsets, by (destination, text), in arrival order."""

    def __init__(self, name: str, config: SimConfig) -> None:
        self.name = name
        self.arrived: list[HandsetMessage] = []
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sim = Simulator(config, on_handset_message=self.record)

    def record(self, message: HandsetMessage) -> None:
        self.arrived.append(message)
        self.counts[(message.destination_addr, message.text)] += 1

    def texts(self) -> list[tuple[str, str]]:
        return [(m.destination_addr, m.text) for m in self.arrived]


@contextlib.asynccontextmanager
async def running_operators(
    configs: dict[str, SimConfig] | None = None, *, ports: dict[str, int] | None = None
) -> AsyncIterator[dict[str, Operator]]:
    configs = configs or {}
    operators = {name: Operator(name, configs.get(name) or sim_config(SEED + i)) for i, name in enumerate(OPERATORS)}
    try:
        for name, op in operators.items():
            await op.sim.start(HOST, (ports or {}).get(name, 0))
        yield operators
    finally:
        for op in operators.values():
            await op.sim.close(unbind_timeout=1.0)


# ---------------------------------------------------------------------------------------------------- gateway


def gateway_config(
    db: Path,
    ports: dict[str, int],
    *,
    account: dict[str, Any] | None = None,
    connector: dict[str, Any] | None = None,
    per_connector: dict[str, dict[str, Any]] | None = None,
    listen: str = f"{HOST}:0",
) -> GatewayConfig:
    """Four connectors (one per operator simulator) and one routing rule per operator; no default route."""
    connector_options: dict[str, Any] = {
        "binds": 1,
        "window": 50,
        "rate": 100_000.0,
        "response_timeout": 5.0,
        "enquire_link_interval": 30.0,
        **(connector or {}),
    }
    connectors = tuple(
        ConnectorConfig(
            name=name,
            host=HOST,
            port=ports[name],
            system_id=f"gw-{name}",
            password="pw",
            **{**connector_options, **(per_connector or {}).get(name, {})},
        )
        for name in OPERATORS
    )
    account_options: dict[str, Any] = {"rate": 1_000_000.0, "window": 200, **(account or {})}
    return GatewayConfig(
        smpp_server=SmppServerConfig(listen=listen, enquire_link_interval=30.0, session_init_timeout=10.0),
        http=HttpConfig(enabled=False),
        store=StoreConfig(path=str(db)),
        log=LogConfig(level="warning"),
        accounts=(AccountConfig(system_id=ACCOUNT, password=PASSWORD, **account_options),),
        connectors=connectors,
        routing=RoutingConfig(rules=tuple(RoutingRuleConfig(connector=n, operator=n) for n in OPERATORS)),
    )


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig, *, stop_timeout: float = 10.0, wait_bound: bool = True, worker: WorkerSlot = SOLE_WORKER
) -> AsyncIterator[GatewayApp]:
    """GatewayApp.run() as a task owned here; started (and bound to every operator: ``wait_bound``) before the body
    runs; stopped with request_stop() and awaited (bounded) after it."""
    app = GatewayApp(config, drain_timeout=2.0, worker=worker)
    task = asyncio.get_running_loop().create_task(app.run(), name="gateway")
    try:
        async with asyncio.timeout(STEP):
            started = asyncio.ensure_future(app.started.wait())
            done, _ = await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                started.cancel()
                task.result()  # raises the failure
                raise AssertionError("gateway stopped before it started")
        if wait_bound:
            await eventually(
                lambda: all(c.link.bound for c in app.gateway.connectors.values()), STEP, "every operator bind up"
            )
        yield app
    finally:
        app.request_stop()
        done, _ = await asyncio.wait({task}, timeout=stop_timeout)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise AssertionError("GatewayApp.run did not return after request_stop()")
        task.result()  # a failure of the gateway itself propagates


# ---------------------------------------------------------------------------------------------------- upstream ESME


class Upstream:
    """The upstream ESME: records every deliver_sm, answers it with ``answer`` (ESME_ROK by default)."""

    def __init__(self) -> None:
        self.deliveries: list[DeliverSm] = []
        self.closed: list[str] = []
        self.answer = CommandStatus.ESME_ROK
        self.conn: SmppConnection | None = None

    # ConnectionHandler
    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:  # pragma: no cover - ESME role
        pass

    def on_bound(self, conn: SmppConnection) -> None:
        pass

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm):
            self.deliveries.append(pdu)
            conn.send_response(DeliverSmResp(sequence=pdu.sequence, status=self.answer))

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.closed.append(reason)

    # use
    async def submit(self, dest: str, text: str = "", **fields: Any) -> SubmitSmResp:
        assert self.conn is not None
        pdu = submit_pdu(dest, text, **fields)
        response = await self.conn.request(pdu, slot_timeout=STEP, timeout=STEP)
        assert isinstance(response, SubmitSmResp)
        return response

    async def submit_many(self, items: Iterable[tuple[str, str]], **fields: Any) -> list[SubmitSmResp]:
        """Pipelined within the window; responses in the order of ``items``."""
        assert self.conn is not None
        conn = self.conn
        futures = []
        loop = asyncio.get_running_loop()
        for dest, text in items:
            await conn.wait_for_slot(STEP)
            future: asyncio.Future[Pdu] = loop.create_future()
            conn.send_request(submit_pdu(dest, text, **fields), future, STEP)
            futures.append(future)
        async with asyncio.timeout(STEP * 2):
            responses = await asyncio.gather(*futures)
        assert all(isinstance(r, SubmitSmResp) for r in responses)
        return responses  # type: ignore[return-value]

    async def query(self, message_id: str) -> QuerySmResp:
        assert self.conn is not None
        response = await self.conn.request(
            QuerySm(message_id=message_id, source_addr="SMPPGW"), slot_timeout=STEP, timeout=STEP
        )
        assert isinstance(response, QuerySmResp)
        return response

    def receipts(self) -> list[tuple[str, str, MessageState, DeliverSm]]:
        """(receipted_message_id TLV, id in the text, message_state, pdu) of every receipt received."""
        out = []
        for pdu in self.deliveries:
            if not is_delivery_receipt(pdu.esm_class):
                continue
            tlv = get_tlv(pdu.tlvs, Tag.RECEIPTED_MESSAGE_ID)
            tlv_id = tlv.rstrip(b"\0").decode() if tlv is not None else ""
            text_only = read_receipt(pdu.short_message, ())
            out.append((tlv_id, text_only.message_id, read_receipt(pdu.short_message, pdu.tlvs).state, pdu))
        return out

    def receipt_ids(self) -> list[str]:
        return [tlv_id for tlv_id, _, _, _ in self.receipts()]

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.unbind(timeout=2.0)


def submit_pdu(dest: str, text: str = "", **fields: Any) -> SubmitSm:
    """UCS-2 when the text is not ASCII; texts over 140 octets go in message_payload."""
    data: dict[str, Any] = {
        "source_addr": "SMPPGW",
        "source_addr_ton": 5,
        "source_addr_npi": 0,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": dest,
        "registered_delivery": 1,
    }
    if text.isascii():
        body, coding = text.encode("ascii"), 0x01
    else:
        body, coding = text.encode("utf-16-be"), 0x08
    data["data_coding"] = coding
    if len(body) > 140:
        data["tlvs"] = ((int(Tag.MESSAGE_PAYLOAD), body),)
    else:
        data["short_message"] = body
    data.update(fields)
    return SubmitSm(**data)


BIND_TYPES = {"trx": BindTransceiver, "tx": BindTransmitter, "rx": BindReceiver}


async def bind_upstream(
    port: int, *, system_id: str = ACCOUNT, password: str = PASSWORD, mode: str = "trx", window: int = 100
) -> Upstream:
    """Connect and bind; raises ``BindError`` (with ``status``) when the gateway refuses."""
    upstream = Upstream()
    config = SessionConfig(
        role=Role.ESME, window_size=window, response_timeout=STEP, enquire_link_interval=None, session_init_timeout=STEP
    )
    conn = await connect(HOST, port, config, upstream, timeout=STEP)
    upstream.conn = conn
    try:
        await conn.bind(BIND_TYPES[mode](system_id=system_id, password=password), timeout=STEP)
    except BaseException:
        conn.abort("bind failed")
        raise
    return upstream


@contextlib.asynccontextmanager
async def upstream_session(port: int, **kwargs: Any) -> AsyncIterator[Upstream]:
    upstream = await bind_upstream(port, **kwargs)
    try:
        yield upstream
    finally:
        await upstream.close()
