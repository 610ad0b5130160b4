"""Composition root: build the gateway from its config, run it under one TaskGroup, shut down in order.

Start: open the store → recover → start connectors (and in-process simulators) → listen. Stop (SIGINT/SIGTERM):
stop accepting → let connectors drain what is in flight (bounded) → unbind upstream sessions and operators →
flush the store. Every task has an owner (the TaskGroup); nothing is fire-and-forget.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from smppgw.config import ConnectorConfig, GatewayConfig, parse_listen
from smppgw.core.numbering import NumberingPlan, OperatorResolver, PortedNumbers
from smppgw.core.routing import RoutingRule, RoutingTable
from smppgw.core.workers import SOLE_WORKER, WorkerSlot
from smppgw.http.api import Api
from smppgw.http.server import HttpServer
from smppgw.net.connection import PDU_COUNTS
from smppgw.net.server import SmppServer
from smppgw.obs.logging import get_logger
from smppgw.obs.merge import MetricsShare, merge_expositions, share_dir
from smppgw.obs.metrics import SCRAPE_TIME, CounterSource, exposition
from smppgw.service.connector import Connector
from smppgw.service.exchange import WorkerExchange
from smppgw.service.gateway import Gateway
from smppgw.service.upstream import UpstreamHandler
from smppgw.sim.config import SimConfig
from smppgw.sim.simulator import Simulator
from smppgw.smpp.constants import CommandId, CommandStatus
from smppgw.smpp.session import Role, SessionConfig
from smppgw.store.sqlite import SqliteStore

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we ship for
    uvloop = None  # type: ignore[assignment]

log = get_logger("smppgw.app")


def build_router(config: GatewayConfig, plan: NumberingPlan | None = None) -> RoutingTable:
    ported = PortedNumbers.load(config.routing.ported_numbers) if config.routing.ported_numbers else None
    resolver = OperatorResolver(plan or NumberingPlan.load(), ported)
    rules = [
        RoutingRule(
            connector=r.connector,
            operator=r.operator,
            traffic_class=r.traffic_class,
            account=r.account,
            prefix=r.prefix,
            fallbacks=r.fallbacks,
        )
        for r in config.routing.rules
    ]
    return RoutingTable(rules, config.routing.default, resolver=resolver)


class GatewayApp:
    """The running daemon. ``run`` returns after an orderly shutdown (``request_stop`` or a signal)."""

    def __init__(self, config: GatewayConfig, *, drain_timeout: float = 10.0, worker: WorkerSlot = SOLE_WORKER) -> None:
        self.config = config
        self.worker = worker
        self.drain_timeout = drain_timeout
        self.store = SqliteStore(
            config.store.path,
            synchronous=config.store.synchronous,
            commit_interval=config.store.commit_interval_ms / 1000.0,
            max_batch=config.store.max_batch,
            shared=worker.shared,
        )
        self.gateway = Gateway(config, self.store, build_router(config), worker=worker)
        self.exchange = WorkerExchange(self.gateway, self.store) if worker.shared else None
        self.metrics_share = MetricsShare(share_dir(config.store.path), worker.index) if worker.shared else None
        self.handler = UpstreamHandler(self.gateway)
        self.server = SmppServer(
            self.handler,
            SessionConfig(
                role=Role.SMSC,
                window_size=max((a.window for a in config.accounts), default=100),
                response_timeout=config.smpp_server.response_timeout,
                enquire_link_interval=config.smpp_server.enquire_link_interval,
                session_init_timeout=config.smpp_server.session_init_timeout,
                inactivity_timeout=config.smpp_server.inactivity_timeout,
            ),
            max_connections=config.smpp_server.max_connections,
        )
        self.simulators: list[Simulator] = []
        self.started = asyncio.Event()
        self.http_port = 0
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        with self._worker_lock():
            await self._run()

    @contextlib.contextmanager
    def _worker_lock(self) -> Iterator[None]:
        """With several workers, one process per index: a second worker i (an orphan of a killed supervisor beside a
        new one) would resume and send the same messages."""
        if not self.worker.shared:
            yield
            return
        fd = os.open(f"{self.config.store.path}.worker-{self.worker.index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + WORKER_LOCK_WAIT  # an orphan of a killed supervisor may still be draining
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RuntimeError(f"worker {self.worker.index} of this store is already running") from None
                    time.sleep(0.2)  # before the loop serves anything: nothing waits on it yet
            yield
        finally:
            os.close(fd)

    async def _run(self) -> None:
        await self.store.open()
        for connector_config in self.config.connectors:  # before recovery: recovered messages need their connector
            await self._add_connector(connector_config)
        if self.exchange is not None:
            await self.exchange.start()  # cursors first: nothing another worker commits after recovery is missed
        counts = self.gateway.recover(await self.store.recover())
        log.info("recovered", worker=self.worker.index, **counts)
        host, port = parse_listen(self.config.smpp_server.listen)
        self._register_metrics()
        http_server: HttpServer | None = None
        try:
            async with asyncio.TaskGroup() as group:
                for connector in self.gateway.connectors.values():
                    group.create_task(connector.run(), name=f"connector-{connector.name}")
                sweeper = group.create_task(self.gateway.run_sweeper(), name="sweeper")
                callbacks = group.create_task(self.gateway.callbacks.run(), name="callbacks")
                retired = group.create_task(self.gateway.retired.run(), name="retired")
                background = [sweeper, callbacks, retired]
                if self.exchange is not None:
                    background.append(group.create_task(self.exchange.run(), name="exchange"))
                if self.worker.shared:
                    background.append(group.create_task(self._stop_if_store_fails(), name="store-watch"))
                if self.metrics_share is not None:
                    background.append(group.create_task(self.metrics_share.run(exposition), name="metrics-share"))
                await self.server.start(host, port, reuse_port=self._reuse_port)
                http_server = await self._start_http()
                log.info(
                    "listening",
                    smpp=f"{host}:{self.server.port}",
                    connectors=len(self.gateway.connectors),
                    worker=f"{self.worker.index + 1}/{self.worker.count}",
                )
                self.started.set()
                await self._stop.wait()
                if http_server is not None:
                    await http_server.close(timeout=5.0)
                await self._shutdown()
                for task in background:
                    task.cancel()
        finally:
            if http_server is not None:
                await http_server.close(timeout=1.0)
            await self.server.close(unbind_timeout=1.0)
            await self.store.close()
            for simulator in self.simulators:
                await simulator.close()

    async def _stop_if_store_fails(self) -> None:
        """A worker whose store failed refuses everything; with SO_REUSEPORT it would still get its share of the
        connections. It stops instead (the failure ends the run with an error) and the supervisor starts it again."""
        while self.store.healthy:
            await asyncio.sleep(0.5)
        log.error("store_failed_stopping", worker=self.worker.index)
        self.request_stop()

    def _metrics_text(self) -> bytes:
        """This process's metrics, or with several workers every worker's, labelled ``worker``."""
        own = exposition()
        if self.metrics_share is None:
            return own
        return merge_expositions(self.metrics_share.read_all(self.worker.index, own.decode())).encode()

    @property
    def _reuse_port(self) -> bool:
        return self.config.smpp_server.reuse_port or self.worker.shared

    async def _add_connector(self, config: ConnectorConfig) -> None:
        if self.worker.shared:  # each worker opens its share of the binds and sends at its share of the rate
            config = msgspec.structs.replace(
                config,
                binds=self.worker.share_of_binds(config.binds),
                rate=self.worker.share_of_rate(config.rate),
                burst=self.worker.share_of_rate(config.burst),
            )
        host, port = config.host, config.port
        if config.simulator:
            simulator = Simulator(SimConfig())
            await simulator.start("127.0.0.1", 0)
            self.simulators.append(simulator)
            host, port = "127.0.0.1", simulator.port
        self.gateway.add_connector(Connector(config, self.gateway, host=host, port=port))

    async def _shutdown(self) -> None:
        log.info("stopping")
        started = time.monotonic()
        if self.server._server is not None:
            self.server._server.close()  # stop accepting new connections; sessions stay until unbound
        deadline = started + self.drain_timeout
        while time.monotonic() < deadline and any(
            conn.in_flight for c in self.gateway.connectors.values() for conn in c.link.connections
        ):
            await asyncio.sleep(0.05)
        await self.server.close(unbind_timeout=2.0)
        await self.handler.stop_answering()
        for connector in self.gateway.connectors.values():
            await connector.stop()
        log.info("stopped", seconds=round(time.monotonic() - started, 3))

    async def _start_http(self) -> HttpServer | None:
        """The HTTP API (and /metrics) on ``[http] listen``."""
        if not self.config.http.enabled:
            return None
        host, port = parse_listen(self.config.http.listen)
        api = Api(self.gateway, metrics_text=self._metrics_text)
        server = HttpServer(api.router, max_body=16 << 20)  # a 1,000-message batch of long texts
        await server.start(host, port, reuse_port=self._reuse_port)
        self.http_port = server.port
        return server

    @property
    def smpp_port(self) -> int:
        return self.server.port

    def _register_metrics(self) -> None:
        gateway = self.gateway
        sources = [
            CounterSource("smppgw_messages_accepted", "Messages accepted", (), lambda: {(): gateway.stats.accepted}),
            CounterSource(
                "smppgw_segments_accepted", "Segments accepted", (), lambda: {(): gateway.stats.segments_accepted}
            ),
            CounterSource(
                "smppgw_messages_rejected",
                "Submits refused, by reason",
                ("reason",),
                lambda: {(k,): v for k, v in dict(gateway.stats.rejected).items()},
            ),
            CounterSource(
                "smppgw_messages_final",
                "Messages that reached a final state",
                ("state",),
                lambda: {(k,): v for k, v in dict(gateway.stats.final).items()},
            ),
            CounterSource(
                "smppgw_receipts_in", "Receipts received from operators", (), lambda: {(): gateway.stats.receipts_in}
            ),
            CounterSource(
                "smppgw_messages_held",
                "Times a message was held for its recipient's sending window or a full cap day",
                (),
                lambda: {(): gateway.stats.held},
            ),
            CounterSource(
                "smppgw_messages_waiting",
                "Messages held or scheduled, waiting for their time",
                (),
                lambda: {(): gateway.waiting},
                kind="gauge",
            ),
            CounterSource(
                "smppgw_stoplist_numbers",
                "Numbers on stop lists, by scope",
                ("scope",),
                lambda: {(scope,): count for scope, count in gateway.policies.stoplist.scopes()},
                kind="gauge",
            ),
            CounterSource(
                "smppgw_mo",
                "Mobile-originated messages from operators, and those that were stop requests",
                ("kind",),
                lambda: {("all",): gateway.stats.mo_received, ("stop",): gateway.stats.mo_stops},
            ),
            CounterSource(
                "smppgw_receipts_unmatched",
                "Receipts that did not match on arrival (parked)",
                (),
                lambda: {(): gateway.stats.receipts_unmatched},
            ),
            CounterSource(
                "smppgw_receipts_upstream",
                "Receipts delivered to upstream sessions and acknowledged",
                (),
                lambda: {(): gateway.upstream.acknowledged},
            ),
            CounterSource(
                "smppgw_connector_segments",
                "Segments sent to operators",
                ("connector",),
                lambda: {(c.name,): c.stats.parts_sent for c in gateway.connectors.values()},
            ),
            CounterSource(
                "smppgw_connector_throttled",
                "Operator throttling responses (0x58/0x14)",
                ("connector",),
                lambda: {(c.name,): c.stats.throttled for c in gateway.connectors.values()},
            ),
            CounterSource(
                "smppgw_connector_queue",
                "Messages queued per connector",
                ("connector",),
                lambda: {(c.name,): c.queued for c in gateway.connectors.values()},
                kind="gauge",
            ),
            CounterSource(
                "smppgw_connector_binds_up",
                "Operator binds up",
                ("connector",),
                lambda: {(c.name,): len(c.link.bound) for c in gateway.connectors.values()},
                kind="gauge",
            ),
            CounterSource(
                "smppgw_window_in_flight",
                "Requests in flight to operators",
                ("connector",),
                lambda: {
                    (c.name,): sum(x.in_flight for x in list(c.link.connections))
                    for c in list(gateway.connectors.values())
                },
                kind="gauge",
            ),
            CounterSource(
                "smppgw_pdus",
                "SMPP PDUs by side (upstream = our SMSC role, operator = our ESME role), direction, command, status",
                ("side", "direction", "command", "status"),
                _pdu_counts,
            ),
            CounterSource(
                "smppgw_receipts_by_state",
                "Receipts received from operators, by the state they report",
                ("state",),
                lambda: {(k,): v for k, v in dict(gateway.stats.receipts_by_state).items()},
            ),
            CounterSource("smppgw_store_batches", "Store transactions", (), lambda: {(): self.store.stats.batches}),
            CounterSource("smppgw_store_rows", "Store rows written", (), lambda: {(): self.store.stats.rows}),
            CounterSource(
                "smppgw_store_commit_seconds",
                "Time spent in store transactions",
                (),
                lambda: {(): self.store.stats.commit_seconds},
            ),
            CounterSource(
                "smppgw_upstream_sessions",
                "Bound upstream sessions",
                (),
                lambda: {(): len(self.server.connections)},
                kind="gauge",
            ),
        ]
        retired = gateway.retired
        sources.append(
            CounterSource(
                "smppgw_messages_retired",
                "Messages that left memory while awaiting receipts, and those read back (a receipt or a deadline)",
                ("event",),
                lambda: {("retired",): retired.count, ("restored",): retired.restored},
            )
        )
        sources.append(
            CounterSource(
                "smppgw_retired_keys",
                "Compact receipt references of messages out of memory",
                (),
                lambda: {(): sum(c.correlator.retired for c in gateway.connectors.values())},
                kind="gauge",
            )
        )
        exchange = self.exchange
        if exchange is not None:
            sources.append(
                CounterSource(
                    "smppgw_worker_handoffs",
                    "Hand-offs between worker processes: receipts matched for another worker, receipts owed upstream "
                    "left for another worker and taken from one",
                    ("kind",),
                    lambda: {
                        ("receipt_matched",): exchange.receipts_matched,
                        ("delivery_left",): gateway.upstream.handed_off,
                        ("delivery_taken",): exchange.deliveries_claimed,
                    },
                )
            )
        for source in sources:
            with contextlib.suppress(ValueError):  # a second app in one process (tests) reuses the names
                SCRAPE_TIME.add(source)


_SIDE = {"smsc": "upstream", "esme": "operator"}


def _name(enum: type[CommandId] | type[CommandStatus], value: int) -> str:
    try:
        return enum(value).name.lower()
    except ValueError:
        return f"0x{value:08x}"


def _pdu_counts() -> dict[tuple[str, ...], float]:
    return {
        (_SIDE.get(role, role), direction, _name(CommandId, command), _name(CommandStatus, status)): count
        for (role, direction, command, status), count in dict(PDU_COUNTS).items()
    }


def install_signal_handlers(app: GatewayApp) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, app.request_stop)


async def serve(config: GatewayConfig, worker: WorkerSlot = SOLE_WORKER) -> None:
    app = GatewayApp(config, worker=worker)
    gc.collect()
    gc.freeze()  # the numbering plan, config and code objects: never traversed by a collection again
    install_signal_handlers(app)
    await app.run()


WORKER_LOCK_WAIT = 20.0
"""Seconds a worker waits for its index's lock: a previous process of that index may be draining (up to 15 s)."""


SWITCH_INTERVAL = 0.0001
"""The GIL switch interval of the daemon (Python's default: 5 ms). Under load the event loop drops and re-takes the
GIL at every I/O poll, and a thread waiting for it then only gets it after a full interval without such a switch:
with 5 ms the store's writer thread starved for seconds (measured: bench/store_bench.py, 20,000 messages did not
commit within 120 s; with 0.1 ms, 277k rows/s). Every acknowledgement waits for that writer."""


GC_THRESHOLDS = (50_000, 50, 1_000)
"""Cyclic GC generations of the daemon (Python's default: 700, 10, 10). The hot path makes few cycles, but with the
default thresholds a full collection over every live message ran every few seconds under load and was the p99
(measured by `smppgw bench --rate 2400`: submit→resp p99 49 ms → 8.4 ms with these thresholds, p50 unchanged)."""


def run_forever(config: GatewayConfig, *, loop: str = "auto", worker: WorkerSlot = SOLE_WORKER) -> None:
    """Run the daemon on uvloop when available."""
    runner: Any = asyncio.run
    if loop in ("auto", "uvloop") and uvloop is not None:
        runner = uvloop.run
    elif loop == "uvloop":
        raise RuntimeError("uvloop is not installed")
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    runner(serve(config, worker))
