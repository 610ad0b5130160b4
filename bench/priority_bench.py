"""OTP queue wait under a marketing flood: do priority lanes keep OTP out of a backlog?

    python bench/priority_bench.py [--flood 30000] [--rate 2000] [--otp-rate 50] [--otp-seconds 10]
                                   [--binds 2] [--window 200] [--json]

The whole daemon runs in this process (``smppgw.app.GatewayApp``: SQLite in a temporary directory, one in-process
simulator connector limited to ``--rate`` segments/s so a queue builds; marketing quiet hours switched off so the
flood may go at any hour). Each run: submit ``--flood`` one-part marketing messages straight into the gateway
(``accept_text`` + ``persist``, 1,000 per group commit), then, while that backlog drains, ``--otp-rate`` probe
messages per second for ``--otp-seconds``. Two runs, each with a fresh daemon and database: the probes as ``otp``
(lane 0), then as ``marketing`` (the control: lane 2, behind the flood).

Queue wait = the first segment's ``submitted_at`` − the message's ``created_at``, read from the SQLite ``segments``
and ``messages`` tables after the daemon stopped (the durable record; ``submitted_at`` is when submit_sm_resp came
back, so it includes one simulator round trip and the SUBMITTING group commit). Reported per run for the probes and
the flood: p50 / p95 / p99 / max in ms, plus the connector's backlog (messages queued) when each probe was
accepted. Every wait is bounded (start, bind, drain, stop); a run that does not drain in ``--drain-timeout`` is
reported as incomplete and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from smppgw.app import SWITCH_INTERVAL, GatewayApp
from smppgw.config import (
    AccountConfig,
    ConnectorConfig,
    GatewayConfig,
    HttpConfig,
    PolicyConfig,
    QuietHoursConfig,
    RoutingConfig,
    SmppServerConfig,
    StoreConfig,
)
from smppgw.core.message import Message
from smppgw.obs.logging import configure_logging
from smppgw.service.connector import Connector
from smppgw.service.gateway import Gateway, TextSubmit

FLOOD_SENDER = "Shop"
PROBE_SENDER = "Bank"
ACCOUNT = "bench"
CHUNK = 1000  # flood messages accepted between two yields to the loop
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


@dataclass
class Options:
    flood: int = 15_000
    rate: float = 2000.0
    otp_rate: float = 50.0
    otp_seconds: float = 10.0
    binds: int = 2
    window: int = 200
    drain_timeout: float = 25.0


def gateway_config(options: Options, store: Path) -> GatewayConfig:
    always = QuietHoursConfig(working_days="00:00-24:00", weekends="00:00-24:00")
    return GatewayConfig(
        http=HttpConfig(enabled=False),
        smpp_server=SmppServerConfig(listen="127.0.0.1:0"),
        store=StoreConfig(path=str(store)),
        accounts=(AccountConfig(system_id=ACCOUNT, password="bench", rate=1e6),),
        connectors=(
            ConnectorConfig(name="sim", simulator=True, rate=options.rate, binds=options.binds, window=options.window),
        ),
        routing=RoutingConfig(default="sim"),
        policy=PolicyConfig(quiet_hours={"marketing": always}),
    )


# ---------------------------------------------------------------------------------------------------- one run


async def _until(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def _submit(
    gateway: Gateway, klass: str, sender: str, to: str, text: str, committed: list[float] | None = None
) -> Message:
    """Accept and persist one message; ``committed`` gets the wall-clock time its insert became durable."""
    account = gateway.accounts[ACCOUNT]
    message = gateway.accept_text(account, TextSubmit(to=to, sender=sender, text=text, traffic_class=klass))
    if committed is None:
        gateway.persist(message, lambda ok: None)
    else:
        gateway.persist(message, lambda ok: committed.append(time.time() - message.created_at))
    return message


async def _committed(gateway: Gateway) -> bool:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    gateway.store.after_commit(done.set_result)
    return await done


async def _flood(gateway: Gateway, count: int) -> list[Message]:
    """Accept ``count`` marketing messages as fast as the gateway takes them (a yield to the loop per chunk)."""
    messages: list[Message] = []
    for start in range(0, count, CHUNK):
        for i in range(start, min(start + CHUNK, count)):
            to = f"7916{i % 10_000_000:07d}"
            messages.append(_submit(gateway, "marketing", FLOOD_SENDER, to, f"Sale -{i % 50}% today only"))
        await asyncio.sleep(0)
    if not await _committed(gateway):
        raise RuntimeError("the store refused the flood")
    return messages


async def _probes(
    gateway: Gateway, connector: Connector, klass: str, options: Options
) -> tuple[list[Message], list[int], list[float]]:
    """Submit the probes at a steady rate; them, the connector's backlog (messages queued) at each one, and how
    long each waited for its insert to commit (it is queued on the connector only then)."""
    probes: list[Message] = []
    backlog: list[int] = []
    commit_waits: list[float] = []
    count = round(options.otp_rate * options.otp_seconds)
    started = time.monotonic()
    for i in range(count):
        delay = started + i / options.otp_rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        backlog.append(connector.queued)
        to, text = f"7903{i:07d}", f"Your code {100000 + i}"
        probes.append(_submit(gateway, klass, PROBE_SENDER, to, text, commit_waits))
    await _committed(gateway)
    return probes, backlog, commit_waits


async def run_once(options: Options, probe_class: str, workdir: Path) -> dict[str, Any]:
    """One daemon, one flood, one probe series; the figures read back from its SQLite file."""
    store = workdir / f"{probe_class}.sqlite3"
    app = GatewayApp(gateway_config(options, store), drain_timeout=2.0)
    task = asyncio.create_task(app.run())
    began = time.monotonic()
    drained = False
    try:
        if not await _until(lambda: app.started.is_set() or task.done(), START_TIMEOUT) or task.done():
            raise RuntimeError("the gateway did not start")
        connector = app.gateway.connectors["sim"]
        if not await _until(lambda: len(connector.link.bound) == options.binds, START_TIMEOUT):
            raise RuntimeError("the simulator binds did not come up")
        flood_started = time.monotonic()
        flood = await _flood(app.gateway, options.flood)
        flood_seconds = time.monotonic() - flood_started
        probes, backlog, commit_waits = await _probes(app.gateway, connector, probe_class, options)
        drained = await _until(
            lambda: all(m.submitted_at is not None for m in (*flood[-100:], *probes)),
            options.drain_timeout,
            0.1,
        )
    finally:
        app.request_stop()
        async with asyncio.timeout(STOP_TIMEOUT):
            await task
    stats = app.store.stats
    figures = read_figures(store)
    figures.update(
        probe_class=probe_class,
        drained=drained,
        flood_accept_s=round(flood_seconds, 2),
        backlog_at_probe=_spread(backlog),
        probe_insert_commit_ms=_waits(commit_waits),
        store={
            "commits": stats.batches,
            "rows": stats.rows,
            "commit_s": round(stats.commit_seconds, 2),
            "rows_per_commit_s": round(stats.rows / stats.commit_seconds) if stats.commit_seconds else None,
        },
        run_s=round(time.monotonic() - began, 1),
    )
    return figures


# ---------------------------------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _waits(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    out: dict[str, float | int] = {"n": len(ms)}
    for q in (50, 95, 99):
        out[f"p{q}"] = round(percentile(ms, q), 1)
    out["max"] = round(max(ms), 1)
    return out


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def read_figures(store: Path) -> dict[str, Any]:
    """Queue waits per sender (probe / flood) and the drain rate, from the stopped daemon's database."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute(
            """SELECT m.source_addr, m.traffic_class, m.created_at, MIN(s.submitted_at)
               FROM messages m LEFT JOIN segments s ON s.message_id = m.id GROUP BY m.id"""
        ).fetchall()
        first, last, segments = db.execute(
            "SELECT MIN(submitted_at), MAX(submitted_at), COUNT(*) FROM segments"
        ).fetchone()
    finally:
        db.close()
    waits: dict[str, list[float]] = {FLOOD_SENDER: [], PROBE_SENDER: []}
    classes: dict[str, str] = {}
    unsent = {FLOOD_SENDER: 0, PROBE_SENDER: 0}
    for sender, klass, created, submitted in rows:
        classes[sender] = klass
        if submitted is None:
            unsent[sender] += 1
        else:
            waits[sender].append(submitted - created)
    span = (last - first) if segments and last > first else 0.0
    return {
        "probe": {"class": classes.get(PROBE_SENDER), "unsent": unsent[PROBE_SENDER], **_waits(waits[PROBE_SENDER])},
        "flood": {"class": classes.get(FLOOD_SENDER), "unsent": unsent[FLOOD_SENDER], **_waits(waits[FLOOD_SENDER])},
        "segments": segments,
        "segments_per_s": round(segments / span) if span else None,
    }


# ---------------------------------------------------------------------------------------------------- report


async def bench(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smppgw-priority-") as tmp:
        runs = [await run_once(options, klass, Path(tmp)) for klass in ("otp", "marketing")]
    problems = [f"run with {r['probe_class']} probes did not drain" for r in runs if not r["drained"]]
    problems += [
        f"run with {r['probe_class']} probes left {r['probe']['unsent'] + r['flood']['unsent']} messages unsent"
        for r in runs
        if r["probe"]["unsent"] or r["flood"]["unsent"]
    ]
    return {
        "settings": vars(options),
        "runs": runs,
        "problems": problems,
        "ok": not problems,
        "seconds": round(time.monotonic() - started, 1),
    }


def format_text(report: dict[str, Any]) -> str:
    headers = ("run", "messages", "class", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "backlog min/med/max")
    rows = []
    for run in report["runs"]:
        name = "otp probes" if run["probe_class"] == "otp" else "control"
        b = run["backlog_at_probe"]
        spread = f"{b['min']}/{b['median']:g}/{b['max']}" if b else "-"
        for what in ("probe", "flood"):
            w = run[what]
            cells = [str(w.get(k, "-")) for k in ("n", "p50", "p95", "p99", "max")]
            rows.append([name, what, str(w["class"]), *cells, spread if what == "probe" else ""])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(str(c).rjust(w) if i > 2 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [headers, *rows]
    ]
    for run in report["runs"]:
        c, st = run["probe_insert_commit_ms"], run["store"]
        lines += [
            f"{run['probe_class']} run: flood accepted in {run['flood_accept_s']} s, {run['segments']} segments "
            f"sent at {run['segments_per_s']} segments/s, run {run['run_s']} s",
            f"  probes' insert commit wait (in process) ms: p50 {c.get('p50')} p95 {c.get('p95')} max {c.get('max')}; "
            f"store: {st['commits']} commits, {st['rows']} rows, {st['commit_s']} s committing "
            f"({st['rows_per_commit_s']} rows/s)",
        ]
    lines += [f"PROBLEM {p}" for p in report["problems"]]
    lines.append(f"{'OK' if report['ok'] else 'FAILED'} in {report['seconds']} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description="OTP queue wait under a marketing flood")
    parser.add_argument("--flood", type=int, default=15_000, help="marketing messages submitted first")
    parser.add_argument("--rate", type=float, default=2000.0, help="the connector's rate, segments/s")
    parser.add_argument("--otp-rate", type=float, default=50.0, help="probe messages per second")
    parser.add_argument("--otp-seconds", type=float, default=10.0, help="how long probes are sent")
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=25.0, help="seconds a run may take to drain")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.flood <= 200_000 or args.rate <= 0 or not 0 < args.otp_rate <= 1000:
        parser.error("--flood 1..200000, --rate > 0, --otp-rate in (0, 1000]")
    if not 0 < args.otp_seconds <= 30 or not 0 < args.drain_timeout <= 60:
        parser.error("--otp-seconds in (0, 30], --drain-timeout in (0, 60]")
    return Options(args.flood, args.rate, args.otp_rate, args.otp_seconds, args.binds, args.window, args.drain_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    configure_logging("warning")
    sys.setswitchinterval(SWITCH_INTERVAL)  # as the daemon runs (smppgw run)
    report = uvloop.run(bench(options))
    report["command"] = shlex.join(["python", "bench/priority_bench.py", *arguments])
    if "--json" in arguments:
        print(json.dumps(report, indent=2))
    else:
        print(f"$ {report['command']}")
        print(format_text(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
