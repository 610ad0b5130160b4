"""The orchestration of ``smppgw bench``.

One ``BenchEnvironment`` owns a temporary directory, the simulator process and the gateway process (its config:
SQLite file in that directory, durability on, metrics on, one account with a very high rate limit, one connector to
the simulator; ``--workers N`` runs it as ``smppgw run --workers N``: a supervisor and N worker processes sharing the
ports through SO_REUSEPORT and the SQLite file, each opening its share of the connector's binds). Each round runs the
same load twice, as a fresh ``smppgw loadtest`` process each time: once straight at the simulator (the baseline) and
once through the gateway, alternating which goes first so drift of a shared box hits both. CPU time of the gateway
(its whole process tree) and the simulator is read from /proc around each pass; the window runs from the load
generator's start to its exit plus the time the gateway (and simulator) take to go idle, so deferred work such as
group commits of the store is counted.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import json
import math
import os
import platform
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import msgspec

from smppgw.core.workers import WorkerSlot
from smppgw.loadtest.config import LoadConfig, parse_mix
from smppgw.loadtest.histogram import LatencySummary
from smppgw.loadtest.mix import build_templates
from smppgw.loadtest.report import LoadReport
from smppgw.loadtest.report import from_json as loadtest_from_json

from . import procfs
from .process import (
    BenchProcessError,
    ManagedProcess,
    free_ports,
    smppgw_command,
    wait_for_listeners,
    wait_for_port,
)
from .report import (
    BenchReport,
    BenchSettings,
    HostInfo,
    PassFigures,
    PassLatency,
    Percentiles,
    ProcessFigures,
    RoundResult,
    SweepPoint,
    SweepReport,
    Timeline,
    TimelinePoint,
    aggregate,
    matched_pct,
    median,
    throughput_ratio,
)

PassKind = Literal["gateway", "baseline"]
HOST: Final = "127.0.0.1"
ACCOUNT: Final = ("bench", "bench")
IDLE_CPU_FRACTION: Final = 0.03  # "idle": below this share of a core over one probe
IDLE_PROBE_S: Final = 0.2
IDLE_TIMEOUT_S: Final = 5.0
RECEIPT_TIMEOUT_S: Final = 15.0
BIND_TIMEOUT_S: Final = 10.0
MAX_SWEEP_POINTS: Final = 12
MAX_WORKERS: Final = 32
METRICS_SETTLE_S: Final = 5.0
"""Seconds to wait for the workers' counters to show a pass (with several workers /metrics merges files that each
worker rewrites every second)."""
ASSUMED_MIN_RATE: Final = 200.0
"""Messages/s a closed-loop pass is assumed to reach at least, for its hard time limit."""


class BenchError(RuntimeError):
    """The bench could not run (bad options, a process that failed or never became ready)."""


@dataclass(frozen=True)
class BenchOptions:
    segments: int = 20_000
    duration: float | None = None
    binds: int = 2  # of the load generator, and of the gateway's connector in all (spread over its workers)
    window: int = 500
    workers: int = 1  # gateway processes: smppgw run --workers N
    mix: str = "latin=40,cyrillic=40,long=15,emoji=5"
    rate: float = 0.0  # offered segments/s; 0 = closed loop
    repeat: int = 1
    warmup: int = 1000  # segments per path before the first round, not reported
    receipt_delay_ms: str | None = None  # the simulator's default when None
    ready_timeout: float = 20.0
    max_seconds: float | None = None  # hard limit of each pass's submit phase (default from the load)
    keep_dir: bool = False
    timeline: bool = True
    log: Callable[[str], None] | None = None  # one line per pass (the CLI prints them on stderr)

    def validate(self) -> None:
        problems = []
        if self.segments < 1:
            problems.append("--segments must be >= 1")
        if self.duration is not None and (self.duration <= 0 or self.rate <= 0):
            problems.append("--duration needs --rate > 0 (a closed loop is bounded by --segments)")
        if self.binds < 1 or self.window < 1:
            problems.append("--binds and --window must be >= 1")
        if not 1 <= self.workers <= MAX_WORKERS:
            problems.append(f"--workers must be 1..{MAX_WORKERS}")
        if self.rate < 0 or not math.isfinite(self.rate):
            problems.append("--rate must be >= 0")
        if not 1 <= self.repeat <= 50:
            problems.append("--repeat must be 1..50")
        if self.warmup < 0:
            problems.append("--warmup must be >= 0")
        try:
            parse_mix(self.mix)
        except ValueError as exc:
            problems.append(f"--mix: {exc}")
        if problems:
            raise BenchError("; ".join(problems))


def segments_per_message(mix: str) -> float:
    """Mean segments of one message of ``mix`` (the load generator's own texts, split as it splits them)."""
    config = LoadConfig(mix=parse_mix(mix), count=1)
    templates = build_templates(config)
    total_weight = 0.0
    total = 0.0
    for kind, weight in config.mix:
        variants = templates.get(kind, ())
        if not weight or not variants:
            continue
        total_weight += weight
        total += weight * sum(t.segments for t in variants) / len(variants)
    return total / total_weight if total_weight else 1.0


def plan_messages(options: BenchOptions, per_message: float) -> int:
    """Messages per pass: ``rate x duration`` when a duration is given, else enough for ``segments``."""
    if options.duration is not None and options.rate > 0:
        return max(1, math.ceil(options.rate / per_message * options.duration))
    return max(1, math.ceil(options.segments / per_message))


def gateway_toml(*, smpp_port: int, http_port: int, sim_port: int, directory: Path, binds: int, window: int) -> str:
    """The gateway's configuration for a bench run."""
    q = json.dumps  # TOML basic strings accept JSON's escapes for what we put in them
    return f"""# written by smppgw bench
[smpp_server]
listen = {q(f"{HOST}:{smpp_port}")}
max_connections = 200

[http]
enabled = true
listen = {q(f"{HOST}:{http_port}")}

[store]
path = {q(str(directory / "gateway.sqlite3"))}
synchronous = "normal"

[log]
level = "warning"
format = "json"

[[accounts]]
system_id = {q(ACCOUNT[0])}
password = {q(ACCOUNT[1])}
max_binds = {binds * 2 + 8}
rate = 10000000.0
window = {max(window, 1000)}
max_parts = 10

[[connectors]]
name = "sim"
host = {q(HOST)}
port = {sim_port}
system_id = "gateway"
password = "gateway"
binds = {binds}
window = {window}
rate = 10000000.0

[routing]
default = "sim"
"""


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_WORKER_LABEL = re.compile(r'(?:^|,)\s*worker="(?P<index>\d+)"')


def metric_by_worker(text: str, name: str) -> dict[int, float]:
    """The sum of metric ``name``'s samples per ``worker`` label in a Prometheus exposition (worker 0 for samples
    without that label: a gateway of one process)."""
    sums: dict[int, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m["name"] != name:
            continue
        worker = _WORKER_LABEL.search(m["labels"] or "")
        index = int(worker["index"]) if worker else 0
        with contextlib.suppress(ValueError):
            sums[index] = sums.get(index, 0.0) + float(m["value"])
    return sums


def binds_per_worker(binds: int, workers: int) -> list[int]:
    """The binds to the simulator each gateway worker opens for a connector of ``binds`` (the gateway's own rule)."""
    return [WorkerSlot(index=i, count=workers).share_of_binds(binds) for i in range(workers)]


def host_info(loadavg_start: Sequence[float]) -> HostInfo:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        memory_kb = procfs.parse_status_kb(Path("/proc/meminfo").read_text(encoding="ascii"), "MemTotal") or 0
    try:
        uvloop_version: str | None = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop_version = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return HostInfo(
        cpu_model=model,
        cpus=os.cpu_count() or 1,
        cpus_usable=usable,
        memory_mb=memory_kb // 1024,
        platform=platform.platform(),
        python=platform.python_version(),
        uvloop=uvloop_version,
        loadavg_start=[round(x, 2) for x in loadavg_start],
        loadavg_end=[round(x, 2) for x in os.getloadavg()],
    )


_PROGRESS = re.compile(
    r"\[\s*(?P<t>[\d.]+)s\]\s+(?P<phase>\w+)\s+sent.*?in flight\s+(?P<in_flight>[\d,]+).*?"
    r"acked\s+(?P<acked>[\d,]+).*?matched (?P<matched>[\d,]+)"
)


def parse_progress(text: str) -> list[tuple[float, int, int, int]]:
    """(elapsed s, in flight, acknowledged, matched receipts) from the load generator's progress lines."""
    points = []
    for line in text.splitlines():
        m = _PROGRESS.search(line)
        if m:
            n = {k: int(m.group(k).replace(",", "")) for k in ("in_flight", "acked", "matched")}
            points.append((float(m.group("t")), n["in_flight"], n["acked"], n["matched"]))
    return points


def build_timeline(
    progress: Sequence[tuple[float, int, int, int]], samples: Sequence[procfs.Sample], offset: float
) -> list[TimelinePoint]:
    """Per-interval rates from progress lines, with CPU utilisation from the sampler (``offset``: sampler time at
    the load generator's time 0)."""

    def cpu_at(name: str, t: float) -> float | None:
        known = [(s.t, s.cpu_s[name]) for s in samples if name in s.cpu_s]
        if not known:
            return None
        if t <= known[0][0]:
            return known[0][1]
        for (t0, c0), (t1, c1) in itertools.pairwise(known):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return known[-1][1]

    def utilisation(name: str, t0: float, t1: float) -> float | None:
        a, b = cpu_at(name, t0 + offset), cpu_at(name, t1 + offset)
        return None if a is None or b is None or t1 <= t0 else round((b - a) / (t1 - t0), 3)

    points = []
    previous = (0.0, 0, 0, 0)
    for current in progress:
        t0, _, acked0, matched0 = previous
        t1, in_flight, acked1, matched1 = current
        dt = t1 - t0
        if dt <= 0:
            continue
        acked_rate = (acked1 - acked0) / dt
        points.append(
            TimelinePoint(
                t=round(t1, 3),
                acked_per_s=round(acked_rate, 1),
                receipts_per_s=round((matched1 - matched0) / dt, 1),
                in_flight=in_flight,
                latency_est_ms=round(1000.0 * in_flight / acked_rate, 2) if acked_rate > 0 else 0.0,
                gateway_cpu=utilisation("gateway", t0, t1),
                sim_cpu=utilisation("sim", t0, t1) or 0.0,
            )
        )
        previous = current
    return points


@dataclass
class PassResult:
    figures: PassFigures
    failures: list[str]
    timeline: list[TimelinePoint]


@dataclass
class BenchEnvironment:
    """The temporary directory, the simulator and the gateway; ``close()`` stops them whatever happened."""

    options: BenchOptions
    directory: Path = field(init=False)
    sim: ManagedProcess | None = None
    gateway: ManagedProcess | None = None
    sim_port: int = 0
    gateway_port: int = 0
    http_port: int = 0
    failures: list[str] = field(default_factory=list)
    _pass_number: int = 0
    _worker_segments: dict[int, float] = field(default_factory=dict)  # last read of each worker's counter

    def __post_init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="smppgw-bench-"))

    def start(self) -> None:
        o = self.options
        self.sim_port, self.gateway_port, self.http_port = free_ports(3, HOST)
        sim_args = ["sim", "--listen", f"{HOST}:{self.sim_port}", "--quiet"]
        if o.receipt_delay_ms is not None:
            sim_args += ["--receipt-delay-ms", o.receipt_delay_ms]
        self.sim = ManagedProcess("sim", smppgw_command(*sim_args), self.directory).start()
        wait_for_port(HOST, self.sim_port, o.ready_timeout, self.sim)
        config_path = self.directory / "gateway.toml"
        config_path.write_text(
            gateway_toml(
                smpp_port=self.gateway_port,
                http_port=self.http_port,
                sim_port=self.sim_port,
                directory=self.directory,
                binds=o.binds,
                window=o.window,
            ),
            encoding="utf-8",
        )
        argv = smppgw_command("run", "--config", str(config_path), "--workers", str(o.workers))
        self.gateway = ManagedProcess("gateway", argv, self.directory).start()
        deadline = time.monotonic() + o.ready_timeout
        wait_for_port(HOST, self.gateway_port, o.ready_timeout, self.gateway)
        # with SO_REUSEPORT the first worker up makes the ports answer: wait for every worker's listeners too
        for port in (self.gateway_port, self.http_port):
            wait_for_listeners(port, o.workers, max(0.0, deadline - time.monotonic()), self.gateway)
        self._wait_for_connector(max(0.0, deadline - time.monotonic()))
        self._worker_segments = self._read_worker_segments() or {}

    def _metrics(self) -> str | None:
        """The gateway's Prometheus exposition (every worker's, labelled ``worker``, when there are several)."""
        url = f"http://{HOST}:{self.http_port}/metrics"
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=2.0) as response:
            return str(response.read().decode("utf-8", errors="replace"))
        return None

    def _wait_for_connector(self, timeout: float) -> None:
        """Until the gateway's Prometheus endpoint shows every bind to the simulator up: each worker's share of
        ``--binds`` (at least one each), every worker present."""
        assert self.gateway is not None
        deadline = time.monotonic() + timeout
        need = binds_per_worker(self.options.binds, self.options.workers)
        up: dict[int, float] = {}
        while True:
            if not self.gateway.alive():
                raise BenchProcessError(f"gateway exited with status {self.gateway.poll()}:\n{self.gateway.tail()}")
            text = self._metrics()
            if text is not None:
                up = metric_by_worker(text, "smppgw_connector_binds_up")
                if all(up.get(i, 0.0) >= n for i, n in enumerate(need)):
                    return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        seen = ", ".join(f"worker {i}: {up.get(i, 0.0):g} of {n}" for i, n in enumerate(need))
        raise BenchProcessError(f"the gateway's binds to the simulator were not up within {timeout:.0f} s ({seen})")

    def _read_worker_segments(self) -> dict[int, float] | None:
        text = self._metrics()
        return None if text is None else metric_by_worker(text, "smppgw_segments_accepted_total")

    def _worker_split(self, accepted: int) -> list[int] | None:
        """Segments each gateway worker accepted since the last call, which saw ``accepted`` more in all (waits up
        to METRICS_SETTLE_S for every worker's counter to show them); None when /metrics did not answer."""
        deadline = time.monotonic() + METRICS_SETTLE_S
        before = self._worker_segments
        while True:
            now = self._read_worker_segments()
            if now is not None and sum(now.values()) >= sum(before.values()) + accepted:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if now is None:
            return None
        self._worker_segments = now
        split = []
        for i in range(self.options.workers):
            was, count = before.get(i, 0.0), now.get(i, 0.0)
            split.append(round(count - was if count >= was else count))  # a restarted worker counts from 0 again
        return split

    def close(self) -> None:
        """Stop the gateway (it unbinds from the simulator), then the simulator; remove the directory unless kept."""
        if self.gateway is not None and self.options.workers > 1:
            exits = _WORKER_EXIT.findall(self.gateway.errors())  # the supervisor restarted them: receipts may be lost
            if exits:
                self.failures.append(f"gateway workers exited during the run: {'; '.join(exits)}")
        for process in (self.gateway, self.sim):
            if process is None:
                continue
            was_alive = process.alive()
            status = process.stop()
            if process.killed:
                self.failures.append(f"{process.name} did not stop on SIGTERM (killed)")
            elif was_alive and status not in (0, None):
                self.failures.append(f"{process.name} exited with status {status} on SIGTERM:\n{process.tail()}")
            elif not was_alive:
                self.failures.append(f"{process.name} had exited with status {status}:\n{process.tail()}")
        if not self.options.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _pids(self, kind: PassKind) -> dict[str, int]:
        assert self.sim is not None and self.gateway is not None
        pids = {"sim": self.sim.pid}
        if kind == "gateway":
            pids["gateway"] = self.gateway.pid
        return pids

    def _check_alive(self) -> None:
        for process in (self.sim, self.gateway):
            if process is not None and not process.alive():
                raise BenchProcessError(f"{process.name} exited with status {process.poll()}:\n{process.tail()}")

    def _wait_idle(self, pids: dict[str, int]) -> None:
        """Until the processes use less than IDLE_CPU_FRACTION of a core over one probe (bounded)."""
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        before = _total_cpu(pids)
        while time.monotonic() < deadline:
            time.sleep(IDLE_PROBE_S)
            after = _total_cpu(pids)
            if after - before < IDLE_CPU_FRACTION * IDLE_PROBE_S:
                return
            before = after

    def run_pass(self, kind: PassKind, *, messages: int, rate_msgs: float, mix: str, label: str) -> PassResult:
        """One load generator run straight at the simulator (baseline) or through the gateway."""
        o = self.options
        self._check_alive()
        self._pass_number += 1
        # measure the idle processes of the whole setup, then only those on the load's path
        all_pids = self._pids("gateway")
        pids = self._pids(kind)
        self._wait_idle(all_pids)
        port = self.gateway_port if kind == "gateway" else self.sim_port
        max_seconds = o.max_seconds or (messages / (rate_msgs or ASSUMED_MIN_RATE) + 30.0)
        argv = smppgw_command(
            "loadtest",
            "--target", f"{HOST}:{port}",
            "--system-id", ACCOUNT[0],
            "--password", ACCOUNT[1],
            "--binds", str(o.binds),
            "--window", str(o.window),
            "--rate", f"{rate_msgs:.3f}",
            "--count", str(messages),
            "--mix", mix,
            "--max-seconds", f"{max_seconds:.1f}",
            "--receipt-timeout", str(RECEIPT_TIMEOUT_S),
            "--bind-timeout", str(BIND_TIMEOUT_S),
            "--require-receipts",
            "--json",
        )  # fmt: skip
        loadtest = ManagedProcess(f"loadtest-{self._pass_number:02d}-{kind}", argv, self.directory)
        sampler = procfs.Sampler(pids, interval=0.25) if o.timeline else None
        cpu0 = {name: procfs.tree_cpu_seconds(pid) for name, pid in pids.items()}  # supervisor + workers
        t0 = time.monotonic()
        try:
            loadtest.start()  # before the sampler thread starts: preexec_fn is only safe without threads
            if sampler is not None:
                sampler.start()
            status = loadtest.wait(BIND_TIMEOUT_S + max_seconds + RECEIPT_TIMEOUT_S + 30.0)
            wall = time.monotonic() - t0
            self._check_alive()
            self._wait_idle(pids)
            cpu1 = {name: procfs.tree_cpu_seconds(pid) for name, pid in pids.items()}
            window = time.monotonic() - t0
            # the sum of each gateway process's own peak: an upper bound with several workers (see tree_memory_kb)
            rss_peak_kb = procfs.tree_memory_kb(pids["gateway"])[1] if kind == "gateway" else None
        finally:
            samples = sampler.stop() if sampler is not None else []
            loadtest.stop(term_timeout=2.0)
        try:
            report = loadtest_from_json(loadtest.output().strip().splitlines()[-1])
        except (IndexError, msgspec.DecodeError, msgspec.ValidationError):
            raise BenchProcessError(
                f"{label}: the load generator exited with status {status} and no report:\n{loadtest.tail()}"
            ) from None
        failures = _pass_failures(label, status, report)
        cpu = {name: cpu1[name] - cpu0[name] for name in pids}
        split = self._worker_split(report.submits.acknowledged) if kind == "gateway" else None
        figures = _figures(report, cpu, window, rss_peak_kb, split)
        timeline = (
            build_timeline(parse_progress(loadtest.errors()), samples, offset=max(0.0, wall - report.elapsed_s))
            if o.timeline
            else []
        )
        if o.log is not None:
            o.log(
                f"{label}: {figures.segments_per_s:,.0f} segments/s, receipts {figures.receipts_matched:,}/"
                f"{figures.receipts_expected:,}, p99 resp {figures.latency_ms.submit_resp.p99:.1f} ms, CPU-µs/segment "
                + (f"gateway {us.gateway:.1f} " if (us := figures.cpu_us_per_segment).gateway is not None else "")
                + f"sim {us.sim:.1f} loadtest {us.loadtest:.1f}"
                + (f", segments per worker {_split_text(split)}" if split is not None and len(split) > 1 else "")
                + (f"  [{'; '.join(failures)}]" if failures else "")
            )
        return PassResult(figures, failures, timeline)


_WORKER_EXIT: Final = re.compile(r"smppgw supervisor: (worker \d+ exited \([^)]*\))")


def _total_cpu(pids: dict[str, int]) -> float:
    total = 0.0
    for pid in pids.values():
        with contextlib.suppress(procfs.ProcError, ValueError):
            total += procfs.tree_cpu_seconds(pid)
    return total


def _split_text(split: Sequence[int]) -> str:
    return "/".join(f"{n:,}" for n in split)


def _pass_failures(label: str, status: int, report: LoadReport) -> list[str]:
    failures = [f"{label}: {text}" for text in report.failures]
    sub, rc = report.submits, report.receipts
    if status != 0 and not failures:
        failures.append(f"{label}: the load generator exited with status {status}")
    if sub.errors or sub.messages_not_sent:
        failures.append(f"{label}: {sub.errors} submit errors, {sub.messages_not_sent} messages not sent")
    if rc.matched < rc.expected or rc.expected < sub.acknowledged:
        failures.append(f"{label}: receipts matched {rc.matched} of {rc.expected} expected ({rc.missing} missing)")
    return list(dict.fromkeys(failures))


def _percentiles(summary: LatencySummary) -> Percentiles:
    return Percentiles(p50=summary.p50, p95=summary.p95, p99=summary.p99)


def _figures(
    report: LoadReport,
    cpu: dict[str, float],
    window: float,
    rss_peak_kb: int | None,
    worker_segments: list[int] | None = None,
) -> PassFigures:
    sub, rc, tp = report.submits, report.receipts, report.throughput
    completed = rc.matched if rc.expected else sub.acknowledged

    def per_segment(seconds: float | None) -> float | None:
        return None if seconds is None else round(1e6 * seconds / completed, 2) if completed else 0.0

    gateway_cpu = cpu.get("gateway")
    cpu_s = ProcessFigures(
        gateway=None if gateway_cpu is None else round(gateway_cpu, 3),
        sim=round(cpu["sim"], 3),
        loadtest=round(report.cpu.process_s, 3),
    )
    ratio = sub.segments / sub.submit_sm if sub.submit_sm else 1.0  # > 1 only in payload mode
    return PassFigures(
        messages=sub.messages_sent,
        segments=sub.segments,
        accepted=sub.acknowledged,
        errors=sub.errors + sub.messages_not_sent,
        receipts_expected=rc.expected,
        receipts_received=rc.received,
        receipts_matched=rc.matched,
        receipts_matched_pct=matched_pct(rc.matched, rc.expected),
        messages_per_s=tp.messages_per_s,
        segments_per_s=round(tp.acknowledged_per_s * ratio, 1),
        latency_ms=PassLatency(
            submit_resp=_percentiles(report.latency_ms.resp_from_sent),
            submit_receipt=_percentiles(report.latency_ms.receipt_from_sent),
            submit_resp_p99_scheduled=report.latency_ms.resp_from_scheduled.p99,
        ),
        cpu_s=cpu_s,
        cpu_us_per_segment=ProcessFigures(
            gateway=per_segment(cpu_s.gateway),
            sim=per_segment(cpu_s.sim) or 0.0,
            loadtest=per_segment(cpu_s.loadtest) or 0.0,
        ),
        window_s=round(window, 3),
        gateway_peak_rss_mb=None if rss_peak_kb is None else round(rss_peak_kb / 1024, 1),
        gateway_worker_segments=worker_segments,
    )


def _settings(options: BenchOptions, per_message: float, messages: int) -> BenchSettings:
    return BenchSettings(
        segments=round(messages * per_message),
        messages=messages,
        segments_per_message=round(per_message, 3),
        duration_s=options.duration,
        rate=options.rate,
        binds=options.binds,
        window=options.window,
        workers=options.workers,
        mix=options.mix,
        repeat=options.repeat,
        warmup_segments=options.warmup,
        receipt_delay_ms=options.receipt_delay_ms,
        store='sqlite (WAL, synchronous "normal": survives kill -9)',
        metrics=True,
    )


@dataclass
class _Rounds:
    rounds: list[RoundResult]
    failures: list[str]
    timeline: Timeline | None


def _run_rounds(
    env: BenchEnvironment, *, messages: int, rate: float, mix: str, per_message: float, tag: str = ""
) -> _Rounds:
    rate_msgs = rate / per_message if rate > 0 else 0.0
    rounds: list[RoundResult] = []
    failures: list[str] = []
    timeline: Timeline | None = None
    for number in range(1, env.options.repeat + 1):
        order: tuple[PassKind, PassKind] = ("baseline", "gateway") if number % 2 else ("gateway", "baseline")
        results: dict[str, PassResult] = {}
        for kind in order:
            label = f"{tag}round {number} {kind}"
            results[kind] = env.run_pass(kind, messages=messages, rate_msgs=rate_msgs, mix=mix, label=label)
            failures += results[kind].failures
        g, b = results["gateway"].figures, results["baseline"].figures
        rounds.append(
            RoundResult(round=number, order=",".join(order), gateway=g, baseline=b, ratio=throughput_ratio(g, b))
        )
        timeline = Timeline(gateway=results["gateway"].timeline, baseline=results["baseline"].timeline)
    return _Rounds(rounds, failures, timeline)


def _warm_up(env: BenchEnvironment, mix: str, per_message: float) -> list[str]:
    if env.options.warmup <= 0:
        return []
    messages = max(1, math.ceil(env.options.warmup / per_message))
    failures: list[str] = []
    kinds: tuple[PassKind, PassKind] = ("baseline", "gateway")
    for kind in kinds:
        result = env.run_pass(kind, messages=messages, rate_msgs=0.0, mix=mix, label=f"warm-up {kind}")
        failures += result.failures
    return failures


def run_bench(options: BenchOptions) -> BenchReport:
    """Start everything, run the rounds, stop everything; raises BenchError / BenchProcessError when it cannot run."""
    options.validate()
    if not procfs.available():
        raise BenchError("smppgw bench reads process CPU time from /proc (Linux)")
    started = time.monotonic()
    loadavg = os.getloadavg()
    per_message = segments_per_message(options.mix)
    messages = plan_messages(options, per_message)
    env = BenchEnvironment(options)
    try:
        env.start()
        failures = _warm_up(env, options.mix, per_message)
        result = _run_rounds(env, messages=messages, rate=options.rate, mix=options.mix, per_message=per_message)
        failures += result.failures
    finally:
        env.close()
    failures += env.failures
    gateway = aggregate([r.gateway for r in result.rounds])
    baseline = aggregate([r.baseline for r in result.rounds])
    return BenchReport(
        ok=not failures,
        failures=failures,
        settings=_settings(options, per_message, messages),
        host=host_info(loadavg),
        gateway=gateway,
        baseline=baseline,
        ratio=round(median([r.ratio for r in result.rounds]), 3),
        rounds=result.rounds,
        timeline=result.timeline,
        elapsed_s=round(time.monotonic() - started, 2),
        run_dir=str(env.directory) if options.keep_dir else None,
    )


def parse_sweep(specs: Sequence[str]) -> tuple[list[float], list[str]]:
    """``rates=2000,5000`` and/or ``mixes=latin,cyrillic,long`` → (offered segments/s, mixes); a mix entry without
    ``=`` is one message kind alone, with ``=`` a full mix (``latin=1+cyrillic=1``: ``+`` between kinds)."""
    rates: list[float] = []
    mixes: list[str] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not items:
            raise BenchError(f"--sweep {spec!r}: use rates=R1,R2,... or mixes=M1,M2,...")
        if key.strip() == "rates":
            try:
                rates += [float(v) for v in items]
            except ValueError:
                raise BenchError(f"--sweep {spec!r}: rates must be numbers (segments/s, 0 = closed loop)") from None
            if any(r < 0 or not math.isfinite(r) for r in rates):
                raise BenchError("--sweep rates must be >= 0")
        elif key.strip() == "mixes":
            for item in items:
                mix = item.replace("+", ",") if "=" in item else f"{item}=1"
                try:
                    parse_mix(mix)
                except ValueError as exc:
                    raise BenchError(f"--sweep mixes: {exc}") from None
                mixes.append(mix)
        else:
            raise BenchError(f"--sweep {spec!r}: the key must be rates or mixes")
    return rates, mixes


def run_sweep(options: BenchOptions, specs: Sequence[str]) -> SweepReport:
    """One point per (rate, mix): the same rounds as ``run_bench``; one simulator and gateway for the whole sweep."""
    options.validate()
    if not procfs.available():
        raise BenchError("smppgw bench reads process CPU time from /proc (Linux)")
    rates, mixes = parse_sweep(specs)
    rates = rates or [options.rate]
    mixes = mixes or [options.mix]
    if len(rates) * len(mixes) > MAX_SWEEP_POINTS:
        raise BenchError(f"a sweep has at most {MAX_SWEEP_POINTS} points ({len(rates)} rates x {len(mixes)} mixes)")
    started = time.monotonic()
    loadavg = os.getloadavg()
    points: list[SweepPoint] = []
    failures: list[str] = []
    env = BenchEnvironment(options)
    try:
        env.start()
        failures += _warm_up(env, mixes[0], segments_per_message(mixes[0]))
        for mix in mixes:
            per_message = segments_per_message(mix)
            for rate in rates:
                point_options = BenchOptions(**{**options.__dict__, "rate": rate, "mix": mix})
                messages = plan_messages(point_options, per_message)
                tag = f"{'closed loop' if not rate else f'{rate:g}/s'} {mix}: "
                result = _run_rounds(env, messages=messages, rate=rate, mix=mix, per_message=per_message, tag=tag)
                failures += result.failures
                gateway = aggregate([r.gateway for r in result.rounds])
                baseline = aggregate([r.baseline for r in result.rounds])
                points.append(
                    SweepPoint(
                        rate=rate,
                        mix=mix,
                        ok=not result.failures,
                        gateway=gateway,
                        baseline=baseline,
                        ratio=round(median([r.ratio for r in result.rounds]), 3),
                    )
                )
    finally:
        env.close()
    failures += env.failures
    per_message = segments_per_message(options.mix)
    return SweepReport(
        ok=not failures,
        failures=failures,
        settings=_settings(options, per_message, plan_messages(options, per_message)),
        host=host_info(loadavg),
        points=points,
        elapsed_s=round(time.monotonic() - started, 2),
        run_dir=str(env.directory) if options.keep_dir else None,
    )
