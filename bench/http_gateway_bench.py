"""The gateway's HTTP submit path end to end: ``POST /v1/messages`` and ``POST /v1/messages/batch`` against a real
``smppgw run`` (SQLite store, one connector to a separate ``smppgw sim``), with durability checked at the end.

    python bench/http_gateway_bench.py --mode single --connections 64 --duration 15
    python bench/http_gateway_bench.py --mode batch --batch-size 1000 --connections 8 --duration 15 --json
    python bench/http_gateway_bench.py --mode single --connections 128 --duration 10 --workers 2

Processes: ``smppgw sim`` and ``smppgw run --config <tmp>/gateway.toml`` are started with this interpreter through
the ``smppgw bench`` helpers (``smppgw.bench.process`` / ``runner.gateway_toml`` / ``procfs``), in a temporary
directory with a fresh SQLite file; the gateway's config is the bench's one plus an ``http_token`` on the account.
``--workers N`` runs ``smppgw run --workers N``: a supervisor and N worker processes sharing both ports through
SO_REUSEPORT (the kernel spreads the client's connections over them) and the SQLite file; ``--binds`` is then the
connector's total, each worker opening its share (at least one). Ready means the simulator and the gateway accept TCP
connections, every worker has its SMPP and HTTP listeners open (one socket each in /proc/net/tcp), the merged
``/metrics`` shows each worker's binds to the simulator up, and ``GET /readyz`` answers 200 (store writable, every
connector bound).

Load: this process, on uvloop, holds ``--connections`` HTTP/1.1 keep-alive connections; each has one request in
flight (``--pipeline P``: P requests written at once), so latency is request written → response parsed. ``single``
posts one OTP (``"class": "otp"``) per request; ``batch`` posts ``--batch-size`` of them. Every message goes to a
distinct number in real Moscow mobile ranges (MTS 915/916, MegaFon 925/926, Beeline 968, Tele2 977). A warm-up
(``--warmup`` seconds, not reported, but counted in the durability check) runs first. The measured phase stops at
``--requests`` requests or ``--duration`` seconds, never later than ``--max-seconds``.

Counted as accepted: a 202 (single) or an item with ``accepted`` in a 200 batch answer. Every other status, item
error code, timeout or connection error is counted by name. CPU: user + system of the whole process (every thread)
from /proc over the measured phase, for the gateway of its whole process tree (with ``--workers``: the supervisor and
every worker, found again at each reading); ``gateway µs per accepted message`` does not depend on the client. With
several workers the SMPP-side figures come from the merged ``/metrics``, where the other workers' counters can lag by
up to a second.

Durability: after the load the gateway gets SIGTERM and must exit 0; then the SQLite ``messages`` table must hold
exactly as many rows as messages were accepted (warm-up included) and every accepted id. Exit status 0 when it does
and every process behaved, 1 otherwise, 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import msgspec

from smppgw.bench import procfs
from smppgw.bench.process import (
    BenchProcessError,
    ManagedProcess,
    free_ports,
    smppgw_command,
    wait_for_listeners,
    wait_for_port,
)
from smppgw.bench.runner import HOST, MAX_WORKERS, binds_per_worker, gateway_toml, host_info, metric_by_worker

SCHEMA: Final = "smppgw.http_gateway_bench/1"
TOKEN: Final = "http-bench-token"
SENDER: Final = "MyBank"
MAX_MESSAGES: Final = 20_000_000  # distinct numbers the generator can give out
RESPONSE_TIMEOUT_S: Final = 30.0
RANGES: Final = (  # (first number, size): whole operator blocks of smppgw/data/def9xx.csv, Moscow region
    (9150000000, 5_000_000),  # MTS
    (9160000000, 10_000_000),  # MTS
    (9250000000, 10_000_000),  # MegaFon
    (9260000000, 10_000_000),  # MegaFon
    (9683100000, 6_900_000),  # Beeline
    (9772500000, 7_500_000),  # Tele2
)
_STRIDE: Final = 7919  # prime, coprime with every size above: j -> (j * stride) % size is a permutation
TEXTS: Final = {
    "cyrillic": "Код подтверждения: {code}. Никому не сообщайте его.",  # 51 characters: one UCS-2 segment
    "latin": "Your code: {code}. Do not share it with anyone.",  # one GSM-7 segment
}


# ------------------------------------------------------------------------------------------------ request bodies


def recipient(index: int) -> str:
    """The ``index``-th distinct number (E.164), spread over the ranges."""
    start, size = RANGES[index % len(RANGES)]
    j = index // len(RANGES)
    return f"+7{start + (j * _STRIDE + 104_729) % size}"


class Bodies:
    """JSON bodies of OTP messages; every message gets the next distinct recipient."""

    def __init__(self, text: str) -> None:
        self.kinds = ["cyrillic", "latin"] if text == "mixed" else [text]
        self.next_index = 0

    def message(self) -> bytes:
        i = self.next_index
        self.next_index += 1
        text = TEXTS[self.kinds[i % len(self.kinds)]].format(code=f"{(i * 389_027 + 517_231) % 1_000_000:06d}")
        return b'{"to":"%s","from":"%s","text":%s,"class":"otp"}' % (
            recipient(i).encode(),
            SENDER.encode(),
            json.dumps(text, ensure_ascii=False).encode(),
        )

    def batch(self, size: int) -> bytes:
        return b'{"messages":[' + b",".join(self.message() for _ in range(size)) + b"]}"


def http_request(path: str, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nhost: %s\r\nauthorization: Bearer %s\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (path.encode(), HOST.encode(), TOKEN.encode(), len(body), body)
    )


# ------------------------------------------------------------------------------------------------ responses


class _Accepted(msgspec.Struct):
    id: str


class _ErrorBody(msgspec.Struct):
    code: str


class _Error(msgspec.Struct):
    error: _ErrorBody


class _Item(msgspec.Struct):
    index: int
    accepted: _Accepted | None = None
    error: _ErrorBody | None = None


class _BatchOut(msgspec.Struct):
    accepted: int
    results: list[_Item]


_DECODE_ACCEPTED = msgspec.json.Decoder(_Accepted)
_DECODE_ERROR = msgspec.json.Decoder(_Error)
_DECODE_BATCH = msgspec.json.Decoder(_BatchOut)


@dataclass
class PhaseStats:
    """What one phase (warm-up or measured) saw."""

    requests: int = 0
    messages_sent: int = 0
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "503 overloaded", "item overloaded", "timeout", ...
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    elapsed: float = 0.0

    def record(self, status: int, body: bytes, batch: int | None, latency: float, ids: list[str]) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.latencies.append(latency)
        try:
            if batch is None and status == 202:
                ids.append(_DECODE_ACCEPTED.decode(body).id)
                self.accepted += 1
                return
            out = _DECODE_BATCH.decode(body) if batch is not None and status == 200 else None
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.errors[f"{status} undecodable body"] += 1
            return
        if out is not None:
            for item in out.results:
                if item.accepted is not None:
                    ids.append(item.accepted.id)
                else:
                    self.errors[f"item {item.error.code if item.error else '?'}"] += 1
            self.accepted += sum(1 for item in out.results if item.accepted is not None)
            return
        try:
            code = _DECODE_ERROR.decode(body).error.code
        except (msgspec.DecodeError, msgspec.ValidationError):
            code = "?"
        self.errors[f"{status} {code}"] += 1


# ------------------------------------------------------------------------------------------------ the client


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: writes requests, parses responses (status line, content-length, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._head_len = -1  # head + CRLFCRLF of the response being read; -1 while its head is incomplete
        self._end = 0
        self._status = 0
        self._answers: list[tuple[int, bytes, float]] = []
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._head_len < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buffer[:end]).lower()
                self._status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                length = 0
                if at >= 0:
                    stop = head.find(b"\r\n", at + 2)
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                self._head_len = end + 4
                self._end = self._head_len + length
            if len(buffer) < self._end:
                break
            self._answers.append((self._status, bytes(buffer[self._head_len : self._end]), time.perf_counter()))
            del buffer[: self._end]
            self._head_len = -1
        waiter = self._waiter
        if waiter is not None and len(self._answers) >= self._want and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc or 'closed by the gateway'}"))

    async def exchange(self, data: bytes, count: int, timeout: float) -> list[tuple[int, bytes, float]]:
        """Write ``data`` (``count`` requests) and wait for their ``count`` answers: (status, body, when parsed)."""
        assert self.transport is not None
        if self.closed:
            raise ConnectionError("connection closed")
        self._want = count
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        finally:
            self._waiter = None
        answers, self._answers = self._answers[:count], self._answers[count:]
        return answers

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class LoadPlan:
    mode: str  # "single" or "batch"
    connections: int
    pipeline: int
    batch_size: int


class Load:
    """The client side: ``plan.connections`` connections to the gateway's HTTP port, driven phase by phase."""

    def __init__(self, plan: LoadPlan, port: int, bodies: Bodies) -> None:
        self.plan = plan
        self.port = port
        self.bodies = bodies
        self.path = "/v1/messages" if plan.mode == "single" else "/v1/messages/batch"
        self.per_request = 1 if plan.mode == "single" else plan.batch_size
        self.ids: list[str] = []  # every accepted message id, all phases
        self.unanswered_messages = 0  # messages of requests that timed out or lost their connection
        self._connections: list[Connection | None] = [None] * plan.connections

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(Connection, HOST, self.port)
        return protocol

    async def open(self) -> None:
        self._connections = list(await asyncio.gather(*(self._connect() for _ in range(self.plan.connections))))

    def close(self) -> None:
        for connection in self._connections:
            if connection is not None:
                connection.close()

    async def phase(self, seconds: float, requests: int | None) -> PhaseStats:
        """Send until ``requests`` requests were sent or ``seconds`` passed, then wait for the answers (each at most
        RESPONSE_TIMEOUT_S)."""
        stats = PhaseStats()
        now = time.monotonic()
        budget = [requests if requests is not None else math.inf]
        started = time.perf_counter()
        workers = (self._worker(i, stats, now + seconds, budget) for i in range(self.plan.connections))
        await asyncio.gather(*workers)
        stats.elapsed = time.perf_counter() - started
        return stats

    async def _worker(self, slot: int, stats: PhaseStats, deadline: float, budget: list[float]) -> None:
        batch = None if self.plan.mode == "single" else self.plan.batch_size
        while budget[0] > 0 and time.monotonic() < deadline:
            count = int(min(self.plan.pipeline, budget[0]))
            if self.bodies.next_index + count * self.per_request > MAX_MESSAGES:
                return
            budget[0] -= count
            connection = self._connections[slot]
            if connection is None or connection.closed:
                try:
                    connection = self._connections[slot] = await self._connect()
                except OSError as exc:
                    stats.errors[f"connect {type(exc).__name__}"] += count
                    await asyncio.sleep(0.05)
                    continue
            if batch is None:
                data = b"".join(http_request(self.path, self.bodies.message()) for _ in range(count))
            else:
                data = b"".join(http_request(self.path, self.bodies.batch(batch)) for _ in range(count))
            stats.messages_sent += count * self.per_request
            sent = time.perf_counter()
            try:
                answers = await connection.exchange(data, count, RESPONSE_TIMEOUT_S)
            except (TimeoutError, ConnectionError, OSError) as exc:
                stats.errors["timeout" if isinstance(exc, TimeoutError) else "connection lost"] += count
                self.unanswered_messages += count * self.per_request
                connection.close()
                self._connections[slot] = None
                continue
            for status, body, parsed in answers:
                stats.record(status, body, batch, parsed - sent, self.ids)


# ------------------------------------------------------------------------------------------------ the processes


def _edit(text: str, section: str, old: str, new: str) -> str:
    """``text`` with the first ``old`` after ``section`` replaced by ``new``."""
    head, found, tail = text.partition(section)
    if not found or old not in tail:
        raise BenchProcessError(f"smppgw bench's gateway config changed: no {old.strip()!r} after {section.strip()}")
    return head + found + tail.replace(old, new, 1)


def gateway_config(*, smpp_port: int, http_port: int, sim_port: int, directory: Path, options: Options) -> str:
    """``smppgw bench``'s gateway config plus the account's HTTP token (and the optional overrides)."""
    text = gateway_toml(
        smpp_port=smpp_port,
        http_port=http_port,
        sim_port=sim_port,
        directory=directory,
        binds=options.binds,
        window=options.window,
    )
    text = _edit(text, "[[accounts]]\n", "system_id = ", f"http_token = {json.dumps(TOKEN)}\nsystem_id = ")
    if options.synchronous != "normal":
        text = _edit(text, "[store]\n", 'synchronous = "normal"', f'synchronous = "{options.synchronous}"')
    if options.connector_rate is not None:
        text = _edit(text, "[[connectors]]\n", "rate = 10000000.0", f"rate = {float(options.connector_rate)!r}")
    return text


_METRIC = re.compile(r"^(?P<name>smppgw_[a-z_]+?)(?:_total)?(?:\{[^}]*\})?\s+(?P<value>[-+0-9.eE]+|NaN)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus exposition → metric name (without ``_total``) → sum over its labels."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            sums[m["name"]] = sums.get(m["name"], 0.0) + float(m["value"])
    return sums


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` and its descendants: ``main`` (the event loop) and ``COMM/TID`` for the
    others; with several processes (``--workers``) each main thread is ``main/PID``."""
    found: dict[str, float] = {}
    members = procfs.tree(pid)
    for member in members:
        with contextlib.suppress(OSError):  # a worker that went away meanwhile
            for task in Path(f"/proc/{member}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    user, system = procfs.parse_stat_cpu((task / "stat").read_text(encoding="ascii", errors="replace"))
                    if task.name != str(member):
                        name = f"{(task / 'comm').read_text().strip()}/{task.name}"
                    else:
                        name = "main" if len(members) == 1 else f"main/{member}"
                    found[name] = user + system
    return found


class Environment:
    """The simulator, the gateway and their temporary directory; ``close()`` stops both whatever happened."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.directory = Path(tempfile.mkdtemp(prefix="smppgw-httpbench-"))
        self.database = self.directory / "gateway.sqlite3"
        self.sim: ManagedProcess | None = None
        self.gateway: ManagedProcess | None = None
        self.http_port = 0
        self.failures: list[str] = []
        self.gateway_status: int | None = None
        self._gateway_stopped = False

    def start(self) -> None:
        timeout = self.options.ready_timeout
        sim_port, smpp_port, self.http_port = free_ports(3, HOST)
        sim_args = ["sim", "--listen", f"{HOST}:{sim_port}", "--account", "gateway:gateway", "--quiet"]
        self.sim = ManagedProcess("sim", smppgw_command(*sim_args), self.directory).start()
        wait_for_port(HOST, sim_port, timeout, self.sim)
        config = self.directory / "gateway.toml"
        config.write_text(
            gateway_config(
                smpp_port=smpp_port,
                http_port=self.http_port,
                sim_port=sim_port,
                directory=self.directory,
                options=self.options,
            ),
            encoding="utf-8",
        )
        workers = self.options.workers
        argv = smppgw_command("run", "--config", str(config), "--workers", str(workers))
        self.gateway = ManagedProcess("gateway", argv, self.directory)
        self.gateway.start()
        deadline = time.monotonic() + timeout
        wait_for_port(HOST, self.http_port, timeout, self.gateway)
        # with SO_REUSEPORT the first worker up makes the ports answer: wait for every worker's listeners too
        for port in (smpp_port, self.http_port):
            wait_for_listeners(port, workers, max(0.0, deadline - time.monotonic()), self.gateway)
        self._wait_ready(max(0.0, deadline - time.monotonic()))

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.http_port}{path}", timeout=5.0) as response:
                return response.status, response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        """Until the merged ``/metrics`` shows each worker's binds to the simulator up and ``GET /readyz`` answers
        200 (store writable, every connector bound; it speaks for the one worker that got the connection)."""
        assert self.gateway is not None
        deadline = time.monotonic() + timeout
        need = binds_per_worker(self.options.binds, self.options.workers)
        answer = "no answer"
        while time.monotonic() < deadline:
            if not self.gateway.alive():
                raise BenchProcessError(f"gateway exited with status {self.gateway.poll()}:\n{self.gateway.tail()}")
            with contextlib.suppress(OSError):
                status, body = self._get("/metrics")
                up = metric_by_worker(body, "smppgw_connector_binds_up") if status == 200 else {}
                if not all(up.get(i, 0.0) >= n for i, n in enumerate(need)):
                    answer = "binds up per worker: " + ", ".join(
                        f"{up.get(i, 0.0):g} of {n}" for i, n in enumerate(need)
                    )
                else:
                    status, body = self._get("/readyz")
                    if status == 200:
                        return
                    answer = f"{status} {body.strip()}"
            time.sleep(0.05)
        raise BenchProcessError(f"the gateway was not ready within {timeout:.0f} s: {answer}")

    def metrics(self) -> dict[str, float]:
        with contextlib.suppress(OSError):
            status, body = self._get("/metrics")
            if status == 200:
                return parse_metrics(body)
        return {}

    def stop_gateway(self) -> None:
        """SIGTERM (SIGKILL after the bench's bound); a clean stop exits 0. Idempotent."""
        if self.gateway is None or self.gateway.popen is None or self._gateway_stopped:
            return
        self._gateway_stopped = True
        was_alive = self.gateway.alive()
        self.gateway_status = self.gateway.stop()
        if self.gateway.killed:
            self.failures.append("gateway did not stop on SIGTERM (killed)")
        elif not was_alive:
            self.failures.append(f"gateway had exited with status {self.gateway_status}:\n{self.gateway.tail()}")
        elif self.gateway_status != 0:
            self.failures.append(f"gateway exited with status {self.gateway_status}:\n{self.gateway.tail()}")

    def close(self) -> None:
        self.stop_gateway()
        if self.sim is not None and self.sim.popen is not None:
            was_alive = self.sim.alive()
            status = self.sim.stop()
            if not was_alive or self.sim.killed:
                self.failures.append(f"simulator exited with status {status} or was killed:\n{self.sim.tail()}")
        if not self.options.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


def durable_ids(database: Path) -> tuple[int, set[str]]:
    """(row count, ids) of the ``messages`` table, read after the gateway stopped."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        count = int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])
        ids = {row[0] for row in connection.execute("SELECT id FROM messages")}
    finally:
        connection.close()
    return count, ids


# ------------------------------------------------------------------------------------------------ profile


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


_LINE = re.compile(r":\d+\)$")


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Top functions of a py-spy ``-f raw`` file (collapsed stacks, line numbers dropped), as shares of all samples
    of every thread: by own samples and by samples with the function on the stack."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100.0 * n / total, 1)} for f, n in counter.most_common(top)] if total else []

    return {"file": str(path), "samples": total, "self": rows(own), "inclusive": rows(under)}


# ------------------------------------------------------------------------------------------------ the run


@dataclass(frozen=True)
class Options:
    mode: str = "single"
    connections: int | None = None  # default: 64 for single, 8 for batch
    pipeline: int = 1
    batch_size: int = 1000
    requests: int | None = None
    duration: float | None = None
    max_seconds: float = 120.0
    warmup: float = 1.0
    text: str = "cyrillic"
    binds: int = 2
    window: int = 500
    connector_rate: float | None = None  # segments/s of the connector; None: the bench's 10M (no limit)
    synchronous: str = "normal"
    ready_timeout: float = 20.0
    keep_dir: bool = False
    profile: str | None = None
    json: bool = False
    workers: int = 1  # gateway processes: smppgw run --workers N

    @property
    def plan(self) -> LoadPlan:
        connections = self.connections or (64 if self.mode == "single" else 8)
        return LoadPlan(self.mode, connections, self.pipeline, self.batch_size if self.mode == "batch" else 1)

    @property
    def seconds(self) -> float:
        """How long the measured phase may last."""
        if self.duration is not None:
            return self.duration
        return self.max_seconds if self.requests is not None else min(15.0, self.max_seconds)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else 0.0


def _cpu(pid: int | None) -> float:
    """CPU seconds of ``pid`` and its descendants (a gateway's supervisor and workers); 0 when it is gone."""
    if pid is None:
        return 0.0
    with contextlib.suppress(procfs.ProcError, ValueError):
        return procfs.tree_cpu_seconds(pid)
    return 0.0


def _client_cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Measured:
    warm: PhaseStats
    stats: PhaseStats
    cpu: dict[str, float]  # CPU seconds over the measured phase: gateway, sim, client, "thread NAME/TID"


async def _drive(
    load: Load, options: Options, probe: Callable[[], dict[str, float]], on_start: Callable[[], None]
) -> Measured:
    await load.open()
    try:
        warm = PhaseStats()
        if options.warmup > 0:
            warm = await load.phase(options.warmup, None)
        on_start()
        before = probe()
        stats = await load.phase(options.seconds, options.requests)
        after = probe()
    finally:
        load.close()
    return Measured(warm, stats, {k: after[k] - before.get(k, 0.0) for k in after})


def _start_profiler(pid: int, seconds: float, out: str, subprocesses: bool = False) -> subprocess.Popen[bytes]:
    tool = py_spy()
    if tool is None:
        raise BenchProcessError("--profile needs py-spy (pip install py-spy)")
    argv = [tool, "record", "-p", str(pid), "-d", str(max(1, math.ceil(seconds))), "-f", "raw", "-o", out]
    if subprocesses:  # a supervisor: sample its workers
        argv.append("--subprocesses")
    return subprocess.Popen([*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(options: Options, argv: list[str]) -> dict[str, Any]:
    """Start everything, load, stop the gateway, check durability; the report as plain data."""
    loadavg = os.getloadavg()
    env = Environment(options)
    spy: subprocess.Popen[bytes] | None = None
    try:
        env.start()
        assert env.gateway is not None and env.sim is not None
        gateway_pid, sim_pid = env.gateway.pid, env.sim.pid
        metrics_before: dict[str, float] = {}
        load = Load(options.plan, env.http_port, Bodies(options.text))

        def probe() -> dict[str, float]:
            found = {"gateway": _cpu(gateway_pid), "sim": _cpu(sim_pid), "client": _client_cpu()}
            with contextlib.suppress(OSError):
                found.update({f"thread {name}": s for name, s in thread_cpu(gateway_pid).items()})
            return found

        def on_start() -> None:
            nonlocal spy, metrics_before
            metrics_before = env.metrics()  # blocking, between the phases: nothing is in flight
            if options.profile is not None:
                spy = _start_profiler(gateway_pid, options.seconds, options.profile, options.workers > 1)

        import uvloop  # noqa: PLC0415 - a dependency of smppgw; only the client needs it

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = runner.run(_drive(load, options, probe, on_start))
        metrics_after = env.metrics()
        profile = _finish_profiler(spy, options)
        env.stop_gateway()
        rows, stored = durable_ids(env.database) if env.database.exists() else (0, set[str]())
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(5.0)
        env.close()
    return _report(
        options=options,
        argv=argv,
        env=env,
        load=load,
        measured=measured,
        metrics=(metrics_before, metrics_after),
        durable=(rows, stored),
        profile=profile,
        loadavg=loadavg,
    )


def _finish_profiler(spy: subprocess.Popen[bytes] | None, options: Options) -> dict[str, Any] | None:
    if spy is None or options.profile is None:
        return None
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)  # the phase is over: py-spy writes what it has and exits
    try:
        _, err = spy.communicate(timeout=15.0)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    out = Path(options.profile)
    if not out.exists():
        return {"file": str(out), "error": err.decode(errors="replace").strip()[-500:]}
    return summarise_profile(out)


def _report(
    *,
    options: Options,
    argv: list[str],
    env: Environment,
    load: Load,
    measured: Measured,
    metrics: tuple[dict[str, float], dict[str, float]],
    durable: tuple[int, set[str]],
    profile: dict[str, Any] | None,
    loadavg: tuple[float, float, float],
) -> dict[str, Any]:
    stats, cpu = measured.stats, measured.cpu
    rows, stored = durable
    failures = list(env.failures)
    accepted_ids = set(load.ids)
    accepted_total = len(load.ids)
    missing = len(accepted_ids - stored)
    duplicates = accepted_total - len(accepted_ids)
    extra = rows - (accepted_total - missing)  # rows the client never heard of
    if missing:
        failures.append(f"{missing} accepted messages are not in the messages table")
    if duplicates:
        failures.append(f"{duplicates} accepted ids were given out twice")
    if extra > load.unanswered_messages:
        failures.append(f"{extra} rows in the messages table were never acknowledged to the client")
    if rows != accepted_total:
        failures.append(f"the messages table has {rows:,} rows; {accepted_total:,} messages were accepted")
    if stats.accepted == 0:
        failures.append("no message was accepted in the measured phase")
    elapsed = stats.elapsed or 1e-9
    ordered = sorted(stats.latencies)
    threads = sorted(
        ((name.removeprefix("thread "), s) for name, s in cpu.items() if name.startswith("thread ")),
        key=lambda item: -item[1],
    )

    def per_message(seconds: float) -> float:
        return round(1e6 * seconds / stats.accepted, 1) if stats.accepted else 0.0

    def delta(name: str) -> float:
        return metrics[1].get(name, 0.0) - metrics[0].get(name, 0.0)

    plan = options.plan
    return {
        "schema": SCHEMA,
        "ok": not failures,
        "failures": failures,
        "command": shlex.join([sys.executable, *argv]),
        "processes": {
            "sim": shlex.join(env.sim.argv) if env.sim else None,
            "gateway": shlex.join(env.gateway.argv) if env.gateway else None,
        },
        "settings": {
            "mode": plan.mode,
            "connections": plan.connections,
            "pipeline": plan.pipeline,
            "batch_size": plan.batch_size,
            "requests": options.requests,
            "duration_s": options.seconds,
            "max_seconds": options.max_seconds,
            "warmup_s": options.warmup,
            "text": options.text,
            "workers": options.workers,
            "binds": options.binds,
            "window": options.window,
            "connector_rate": options.connector_rate,
            "synchronous": options.synchronous,
        },
        "results": {
            "elapsed_s": round(elapsed, 3),
            "requests": stats.requests,
            "messages_sent": stats.messages_sent,
            "accepted": stats.accepted,
            "accepted_per_s": round(stats.accepted / elapsed, 1),
            "requests_per_s": round(stats.requests / elapsed, 1),
            "latency_ms": {
                "p50": round(1e3 * _percentile(ordered, 0.50), 3),
                "p95": round(1e3 * _percentile(ordered, 0.95), 3),
                "p99": round(1e3 * _percentile(ordered, 0.99), 3),
                "max": round(1e3 * (ordered[-1] if ordered else 0.0), 3),
            },
            "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
            "errors": dict(stats.errors.most_common()),
        },
        "cpu": {
            "gateway_s": round(cpu["gateway"], 3),
            "gateway_cores": round(cpu["gateway"] / elapsed, 3),
            "gateway_us_per_accepted": per_message(cpu["gateway"]),
            "gateway_threads_s": {name: round(s, 3) for name, s in threads if s >= 0.005},
            "sim_s": round(cpu["sim"], 3),
            "sim_us_per_accepted": per_message(cpu["sim"]),
            "client_s": round(cpu["client"], 3),
            "client_cores": round(cpu["client"] / elapsed, 3),
            "client_us_per_request": round(1e6 * cpu["client"] / stats.requests, 1) if stats.requests else 0.0,
        },
        "smpp": {
            "segments_sent": int(delta("smppgw_connector_segments")),
            "segments_sent_per_s": round(delta("smppgw_connector_segments") / elapsed, 1),
            "connector_queue_at_end": int(metrics[1].get("smppgw_connector_queue", 0.0)),
            "store_commits": int(delta("smppgw_store_batches")),
        },
        "warmup": {
            "requests": measured.warm.requests,
            "accepted": measured.warm.accepted,
            "errors": dict(measured.warm.errors),
        },
        "durability": {
            "ok": rows == accepted_total and not missing and not duplicates,
            "rows": rows,
            "accepted_total": accepted_total,
            "missing_ids": missing,
            "unacknowledged_rows": max(0, extra),
            "gateway_exit_status": env.gateway_status,
        },
        "profile": profile,
        "host": msgspec.to_builtins(host_info(loadavg)),
        "run_dir": str(env.directory) if options.keep_dir else None,
    }


# ------------------------------------------------------------------------------------------------ output


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.1f}"


def render(report: dict[str, Any]) -> str:
    """The command lines and a small table."""
    s, r, c, m, d = (report[k] for k in ("settings", "results", "cpu", "smpp", "durability"))
    lat = r["latency_ms"]
    shape = f"{s['mode']}" + (f", {s['batch_size']:,} messages per request" if s["mode"] == "batch" else "")
    workers = s.get("workers", 1)
    shape += f"; gateway {workers} worker{'s' if workers > 1 else ''}"
    errors = ", ".join(f"{k}: {v:,}" for k, v in r["errors"].items()) or "none"
    threads = ", ".join(f"{name} {sec:.2f}" for name, sec in list(c["gateway_threads_s"].items())[:4])
    lines = [
        f"command: {report['command']}",
        f"sim:     {report['processes']['sim']}",
        f"gateway: {report['processes']['gateway']}",
        "",
        f"| {shape}; {s['connections']} connections x pipeline {s['pipeline']}; {r['elapsed_s']:.1f} s"
        f" (+{s['warmup_s']:g} s warm-up) | |",
        "|---|---|",
        f"| accepted messages/s | **{_n(r['accepted_per_s'])}** ({r['accepted']:,} of {r['messages_sent']:,} sent) |",
        f"| requests/s | {_n(r['requests_per_s'])} ({r['requests']:,} answered) |",
        f"| latency p50 / p95 / p99 / max ms | {lat['p50']:.2f} / {lat['p95']:.2f} / **{lat['p99']:.2f}**"
        f" / {lat['max']:.2f} |",
        f"| statuses | {', '.join(f'{k}: {v:,}' for k, v in r['statuses'].items()) or '-'} |",
        f"| errors | {errors} |",
        f"| gateway CPU-µs per accepted message | **{c['gateway_us_per_accepted']:.1f}**"
        f" ({c['gateway_s']:.2f} s = {c['gateway_cores']:.2f} cores) |",
        f"| gateway threads, CPU s | {threads or '-'} |",
        f"| sim CPU-µs per accepted message | {c['sim_us_per_accepted']:.1f} ({c['sim_s']:.2f} s) |",
        f"| client CPU | {c['client_s']:.2f} s = {c['client_cores']:.2f} cores, {c['client_us_per_request']:.1f} µs"
        " per request |",
        f"| SMPP side during the phase | {m['segments_sent']:,} segments sent ({_n(m['segments_sent_per_s'])}/s),"
        f" queue at end {m['connector_queue_at_end']:,}, {m['store_commits']:,} store commits |",
        f"| durable (after SIGTERM, exit {d['gateway_exit_status']}) | {'OK' if d['ok'] else 'MISMATCH'}:"
        f" {d['rows']:,} rows, {d['accepted_total']:,} accepted incl. warm-up, {d['missing_ids']} missing |",
    ]
    profile = report.get("profile")
    if profile and profile.get("self"):
        lines += ["", f"py-spy ({profile['samples']:,} samples, {profile['file']}), top own time:"]
        lines += [f"  {row['pct']:5.1f} %  {row['frame']}" for row in profile["self"][:12]]
    if report["failures"]:
        lines += ["", "FAILED:", *(f"  - {f}" for f in report["failures"])]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="http_gateway_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["single", "batch"], default="single")
    parser.add_argument("--connections", type=int, help="keep-alive connections (default 64 single, 8 batch)")
    parser.add_argument("--pipeline", type=int, default=1, help="requests written at once per connection")
    parser.add_argument("--batch-size", type=int, default=1000, help="messages per batch request (1..1000)")
    parser.add_argument("--requests", type=int, help="stop the measured phase after this many requests")
    parser.add_argument("--duration", type=float, help="or after this many seconds (default 15 without --requests)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="hard limit of the measured phase's sending (answers then get at most 30 s)",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring (0: none)")
    parser.add_argument("--text", choices=["cyrillic", "latin", "mixed"], default="cyrillic")
    parser.add_argument("--binds", type=int, default=2, help="binds of the connector to the simulator (in all)")
    parser.add_argument("--window", type=int, default=500, help="window per bind")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway processes: smppgw run --workers N (CPU summed over them)"
    )
    parser.add_argument("--connector-rate", type=float, help="segments/s of the connector (default: unlimited)")
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal", help="the store's setting")
    parser.add_argument("--ready-timeout", type=float, default=20.0)
    parser.add_argument("--profile", metavar="FILE", help="py-spy record -f raw of the gateway over the phase")
    parser.add_argument("--keep-dir", action="store_true", help="keep config, logs and the SQLite file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    a = parser.parse_args(argv)
    problems = []
    if a.connections is not None and not 1 <= a.connections <= 4096:
        problems.append("--connections must be 1..4096")
    if not 1 <= a.pipeline <= 64:
        problems.append("--pipeline must be 1..64")
    if not 1 <= a.batch_size <= 1000:
        problems.append("--batch-size must be 1..1000")
    if a.requests is not None and a.requests < 1:
        problems.append("--requests must be >= 1")
    if not 0 < a.max_seconds <= 600:
        problems.append("--max-seconds must be in (0, 600]")
    if a.duration is not None and not 0 < a.duration <= a.max_seconds:
        problems.append("--duration must be in (0, --max-seconds]")
    if not 0 <= a.warmup <= 60:
        problems.append("--warmup must be 0..60 s")
    if a.binds < 1 or a.window < 1:
        problems.append("--binds and --window must be >= 1")
    if not 1 <= a.workers <= MAX_WORKERS:
        problems.append(f"--workers must be 1..{MAX_WORKERS}")
    if a.connector_rate is not None and a.connector_rate <= 0:
        problems.append("--connector-rate must be > 0")
    if problems:
        parser.error("; ".join(problems))
    return Options(
        mode=a.mode,
        connections=a.connections,
        pipeline=a.pipeline,
        batch_size=a.batch_size,
        requests=a.requests,
        duration=a.duration,
        max_seconds=a.max_seconds,
        warmup=a.warmup,
        text=a.text,
        binds=a.binds,
        window=a.window,
        connector_rate=a.connector_rate,
        synchronous=a.synchronous,
        ready_timeout=a.ready_timeout,
        keep_dir=a.keep_dir,
        profile=a.profile,
        json=a.json,
        workers=a.workers,
    )


def main(argv: list[str] | None = None) -> int:
    """0: ran, every accepted message durable; 1: a failure (printed); 2: bad options."""
    args = sys.argv[1:] if argv is None else argv
    try:
        options = parse_args(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not procfs.available():
        print("this bench reads process CPU time from /proc (Linux)", file=sys.stderr)
        return 2
    try:
        report = run(options, [os.path.relpath(__file__), *args] if argv is None else [__file__, *args])
    except BenchProcessError as exc:
        print(f"http_gateway_bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("http_gateway_bench: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(report, ensure_ascii=False) if options.json else render(report))
    return 0 if report["ok"] else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the children and removes the directory, as Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
