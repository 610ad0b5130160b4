"""The bench's results: immutable values with stable JSON keys, medians over rounds, and a text rendering.

JSON keys are the field names below, in this order; ``schema`` changes when a key is renamed or removed (adding keys
is compatible). Latencies are milliseconds (measured by the load generator, from the moment a submit_sm was handed
to its connection); rates are per second over the load generator's submit phase; CPU is user + system time of the
whole process (every thread; for the gateway its whole tree: with ``--workers N`` the supervisor and every worker)
over the pass's measurement window, divided by the segments whose final receipt came back to the load generator.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import msgspec

SCHEMA: Final = "smppgw.bench/1"
SWEEP_SCHEMA: Final = "smppgw.bench.sweep/1"

T = TypeVar("T")


class Percentiles(msgspec.Struct, frozen=True, kw_only=True):
    p50: float
    p95: float
    p99: float


class PassLatency(msgspec.Struct, frozen=True, kw_only=True):
    submit_resp: Percentiles  # submit_sm handed to the connection → its submit_sm_resp
    submit_receipt: Percentiles  # submit_sm handed to the connection → its final receipt (deliver_sm)
    submit_resp_p99_scheduled: float  # from the scheduled time: includes queueing in the generator (open loop)


class ProcessFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One number per process; ``gateway`` is None in the baseline pass (there is no gateway)."""

    gateway: float | None
    sim: float
    loadtest: float


class PassFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One load pass (or the median of several): the gateway path or the direct baseline."""

    messages: int  # messages sent by the load generator
    segments: int  # segments (submit_sm) sent by the load generator
    accepted: int  # submit_sm answered ESME_ROK
    errors: int  # rejected, unanswered or not sent
    receipts_expected: int  # accepted segments that asked for a receipt
    receipts_received: int  # receipt PDUs that reached the load generator
    receipts_matched: int  # segments with a final receipt, matched by message id
    receipts_matched_pct: float
    messages_per_s: float  # accepted messages per second
    segments_per_s: float  # accepted segments per second
    latency_ms: PassLatency
    cpu_s: ProcessFigures  # CPU seconds over the window (the load generator's: its own run)
    cpu_us_per_segment: ProcessFigures  # cpu_s / receipts_matched, in µs
    window_s: float  # the CPU measurement window: load generator start → its exit + the gateway/sim going idle
    gateway_peak_rss_mb: float | None  # VmHWM of the gateway process so far (None in the baseline); with several
    # workers the sum of each process's VmHWM: an upper bound, the processes need not have peaked together
    gateway_worker_segments: list[int] | None = None  # segments each gateway worker accepted (None in the baseline)


class RoundResult(msgspec.Struct, frozen=True, kw_only=True):
    round: int
    order: str  # which pass ran first: "baseline,gateway" or "gateway,baseline"
    gateway: PassFigures
    baseline: PassFigures
    ratio: float  # gateway ÷ baseline segments/s


class TimelinePoint(msgspec.Struct, frozen=True, kw_only=True, array_like=False):
    t: float  # seconds since the load generator started
    acked_per_s: float  # segments acknowledged per second over the last interval
    receipts_per_s: float  # final receipts matched per second over the last interval
    in_flight: int  # submit_sm awaiting their response
    latency_est_ms: float  # in flight ÷ acked per second (Little's law): a live estimate, not a measurement
    gateway_cpu: float | None  # gateway CPU utilisation over the interval (1.0 = one core busy)
    sim_cpu: float


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """Per-second points of the last round (for the plot)."""

    gateway: list[TimelinePoint]
    baseline: list[TimelinePoint]


class HostInfo(msgspec.Struct, frozen=True, kw_only=True):
    cpu_model: str
    cpus: int  # logical CPUs of the machine
    cpus_usable: int  # in this process's affinity mask
    memory_mb: int
    platform: str
    python: str
    uvloop: str | None
    loadavg_start: list[float]
    loadavg_end: list[float]


class BenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    segments: int  # target segments per pass
    messages: int  # messages per pass (segments ÷ mean segments per message of the mix)
    segments_per_message: float
    duration_s: float | None
    rate: float  # offered segments/s (0 = closed loop: as fast as the windows allow)
    binds: int  # of the load generator, and of the gateway's connector in all (each worker opens its share, >= 1)
    window: int
    workers: int = 1  # gateway processes (smppgw run --workers N)
    mix: str
    repeat: int
    warmup_segments: int
    receipt_delay_ms: str | None  # the simulator's submit → receipt delay (None: the simulator's default, 100 ms)
    store: str
    metrics: bool


class BenchReport(msgspec.Struct, frozen=True, kw_only=True):
    schema: str = SCHEMA
    ok: bool
    failures: list[str]
    settings: BenchSettings
    host: HostInfo
    gateway: PassFigures  # medians over the rounds (counts summed, peak RSS the largest)
    baseline: PassFigures
    ratio: float  # median over the rounds of gateway ÷ baseline segments/s
    rounds: list[RoundResult]
    timeline: Timeline | None
    elapsed_s: float
    run_dir: str | None  # kept with --keep-dir: configs, logs, load generator reports


class SweepPoint(msgspec.Struct, frozen=True, kw_only=True):
    rate: float  # offered segments/s (0 = closed loop)
    mix: str
    ok: bool
    gateway: PassFigures
    baseline: PassFigures
    ratio: float


class SweepReport(msgspec.Struct, frozen=True, kw_only=True):
    schema: str = SWEEP_SCHEMA
    ok: bool
    failures: list[str]
    settings: BenchSettings
    host: HostInfo
    points: list[SweepPoint]
    elapsed_s: float
    run_dir: str | None


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count); 0.0 for no values."""
    if not values:
        return 0.0
    return float(statistics.median(values))


def _median_of(passes: Sequence[PassFigures], get: Callable[[PassFigures], float]) -> float:
    return round(median([get(p) for p in passes]), 3)


def _median_optional(passes: Sequence[PassFigures], get: Callable[[PassFigures], float | None]) -> float | None:
    values = [v for v in (get(p) for p in passes) if v is not None]
    return round(median(values), 3) if values else None


def _percentiles(passes: Sequence[PassFigures], get: Callable[[PassFigures], Percentiles]) -> Percentiles:
    return Percentiles(
        p50=_median_of(passes, lambda p: get(p).p50),
        p95=_median_of(passes, lambda p: get(p).p95),
        p99=_median_of(passes, lambda p: get(p).p99),
    )


def _processes(passes: Sequence[PassFigures], get: Callable[[PassFigures], ProcessFigures]) -> ProcessFigures:
    return ProcessFigures(
        gateway=_median_optional(passes, lambda p: get(p).gateway),
        sim=_median_of(passes, lambda p: get(p).sim),
        loadtest=_median_of(passes, lambda p: get(p).loadtest),
    )


def matched_pct(matched: int, expected: int) -> float:
    return round(100.0 * matched / expected, 3) if expected else 0.0


def aggregate(passes: Sequence[PassFigures]) -> PassFigures:
    """Medians of rates, latencies and CPU; sums of counts (so 100 % means every round had every receipt, and the
    segments per worker are sums too); the largest peak RSS."""
    if not passes:
        raise ValueError("no passes to aggregate")
    expected = sum(p.receipts_expected for p in passes)
    matched = sum(p.receipts_matched for p in passes)
    peaks = [p.gateway_peak_rss_mb for p in passes if p.gateway_peak_rss_mb is not None]
    splits = [p.gateway_worker_segments for p in passes]
    worker_segments = (
        [sum(column) for column in zip(*splits, strict=True)]
        if splits and all(s is not None and len(s) == len(splits[0] or ()) for s in splits)
        else None
    )
    return PassFigures(
        messages=sum(p.messages for p in passes),
        segments=sum(p.segments for p in passes),
        accepted=sum(p.accepted for p in passes),
        errors=sum(p.errors for p in passes),
        receipts_expected=expected,
        receipts_received=sum(p.receipts_received for p in passes),
        receipts_matched=matched,
        receipts_matched_pct=matched_pct(matched, expected),
        messages_per_s=_median_of(passes, lambda p: p.messages_per_s),
        segments_per_s=_median_of(passes, lambda p: p.segments_per_s),
        latency_ms=PassLatency(
            submit_resp=_percentiles(passes, lambda p: p.latency_ms.submit_resp),
            submit_receipt=_percentiles(passes, lambda p: p.latency_ms.submit_receipt),
            submit_resp_p99_scheduled=_median_of(passes, lambda p: p.latency_ms.submit_resp_p99_scheduled),
        ),
        cpu_s=_processes(passes, lambda p: p.cpu_s),
        cpu_us_per_segment=_processes(passes, lambda p: p.cpu_us_per_segment),
        window_s=_median_of(passes, lambda p: p.window_s),
        gateway_peak_rss_mb=max(peaks) if peaks else None,
        gateway_worker_segments=worker_segments,
    )


def throughput_ratio(gateway: PassFigures, baseline: PassFigures) -> float:
    return round(gateway.segments_per_s / baseline.segments_per_s, 3) if baseline.segments_per_s > 0 else 0.0


def to_json(report: BenchReport | SweepReport) -> bytes:
    return msgspec.json.encode(report)


def from_json(data: bytes | str) -> BenchReport:
    return msgspec.json.decode(data, type=BenchReport)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(label: str, gateway: str, baseline: str, note: str = "") -> str:
    return f"  {label:<36} {gateway:>16} {baseline:>16}  {note}".rstrip()


def format_text(report: BenchReport) -> str:
    """The human-readable table (no trailing newline)."""
    s, g, b, h = report.settings, report.gateway, report.baseline, report.host
    rate = "closed loop" if not s.rate else f"{s.rate:,.0f} segments/s offered"
    lines = [
        f"smppgw bench: {s.messages:,} messages ({s.segments:,} segments, {s.segments_per_message:.2f}/message) "
        f"per pass, {s.repeat} round(s), {s.binds} bind(s) x window {s.window}, {rate}, mix {s.mix}",
        f"  gateway: {_workers(s.workers)}",
        f"  store {s.store}, metrics {'on' if s.metrics else 'off'}, simulator receipt delay "
        + (f"{s.receipt_delay_ms} ms" if s.receipt_delay_ms else "default (100 ms)"),
        f"  host: {h.cpu_model}, {h.cpus_usable}/{h.cpus} CPUs, {h.memory_mb:,} MB, Python {h.python}, "
        f"uvloop {h.uvloop or '-'}, load average {h.loadavg_start[0]:.2f} → {h.loadavg_end[0]:.2f}",
        f"result: {'OK' if report.ok else 'FAILED'}" + ("" if report.ok else " (" + "; ".join(report.failures) + ")"),
        "",
        _row("medians of rounds", "gateway", "baseline", "(baseline: load generator → simulator directly)"),
        _row("accepted messages/s", _num(g.messages_per_s, 0), _num(b.messages_per_s, 0)),
        _row("accepted segments/s", _num(g.segments_per_s, 0), _num(b.segments_per_s, 0)),
        _row(
            "receipts matched / expected (sums)",
            f"{g.receipts_matched:,}/{g.receipts_expected:,}",
            f"{b.receipts_matched:,}/{b.receipts_expected:,}",
        ),
        _row("receipts matched %", _num(g.receipts_matched_pct, 2), _num(b.receipts_matched_pct, 2)),
        _row("errors", f"{g.errors:,}", f"{b.errors:,}"),
    ]
    lines += [
        _row(f"{name} {pct} ms", _num(getattr(get(g), pct), 2), _num(getattr(get(b), pct), 2))
        for name, get in (("submit→resp", _resp), ("submit→receipt", _receipt))
        for pct in ("p50", "p95", "p99")
    ]
    lines += [
        _row(
            "submit→resp p99 from schedule ms",
            _num(g.latency_ms.submit_resp_p99_scheduled, 2),
            _num(b.latency_ms.submit_resp_p99_scheduled, 2),
        ),
        _row("gateway CPU-µs per segment", _num(g.cpu_us_per_segment.gateway), "-"),
        _row("simulator CPU-µs per segment", _num(g.cpu_us_per_segment.sim), _num(b.cpu_us_per_segment.sim)),
        _row(
            "load generator CPU-µs per segment",
            _num(g.cpu_us_per_segment.loadtest),
            _num(b.cpu_us_per_segment.loadtest),
        ),
        _row("gateway peak RSS MB" + (" (sum)" if s.workers > 1 else ""), _num(g.gateway_peak_rss_mb), "-"),
    ]
    if s.workers > 1:
        split = g.gateway_worker_segments
        lines.append(_row("segments per worker (sums)", "/".join(f"{n:,}" for n in split) if split else "-", "-"))
    lines += [
        _row("measurement window s", _num(g.window_s, 2), _num(b.window_s, 2)),
        "",
        f"gateway ÷ baseline throughput: {report.ratio:.3f}"
        + ("   rounds: " + ", ".join(f"{r.ratio:.3f}" for r in report.rounds) if len(report.rounds) > 1 else ""),
        f"elapsed {report.elapsed_s:.1f} s" + (f"; run directory kept: {report.run_dir}" if report.run_dir else ""),
    ]
    return "\n".join(lines)


def _workers(count: int) -> str:
    if count == 1:
        return "1 worker (one process)"
    return f"{count} workers (smppgw run --workers {count}: a supervisor and {count} processes; CPU and RSS summed)"


def _resp(p: PassFigures) -> Percentiles:
    return p.latency_ms.submit_resp


def _receipt(p: PassFigures) -> Percentiles:
    return p.latency_ms.submit_receipt


def format_sweep(report: SweepReport) -> str:
    """Throughput and p99 latency per sweep point (no trailing newline)."""
    s, h = report.settings, report.host
    per_pass = f"{s.duration_s:g} s of load" if s.duration_s else f"{s.segments:,} segments"
    header = (
        f"{'offered seg/s':>13} {'mix':<16} {'segments':>9} {'gw seg/s':>9} {'gw p99 resp':>11} {'gw p99 rcpt':>11} "
        f"{'gw CPU-µs':>9} {'base seg/s':>10} {'base p99 resp':>13} {'ratio':>6} {'receipts':>8}"
    )
    lines = [
        f"smppgw bench sweep: {per_pass} per pass, {s.repeat} round(s) per point, {s.binds} bind(s) x window "
        f"{s.window}, gateway {s.workers} worker(s); host {h.cpu_model}, {h.cpus_usable}/{h.cpus} CPUs; latencies in "
        "ms (medians of rounds)",
        f"result: {'OK' if report.ok else 'FAILED'}" + ("" if report.ok else " (" + "; ".join(report.failures) + ")"),
        header,
    ]
    for p in report.points:
        g, b = p.gateway, p.baseline
        mix = p.mix if len(p.mix) <= 16 else "default" if p.mix == s.mix else p.mix
        lines.append(
            f"{'closed loop' if not p.rate else f'{p.rate:,.0f}':>13} {mix:<16} {g.segments // s.repeat:>9,} "
            f"{g.segments_per_s:>9,.0f} {g.latency_ms.submit_resp.p99:>11.2f} {g.latency_ms.submit_receipt.p99:>11.2f} "
            f"{_num(g.cpu_us_per_segment.gateway):>9} {b.segments_per_s:>10,.0f} "
            f"{b.latency_ms.submit_resp.p99:>13.2f} {p.ratio:>6.3f} {g.receipts_matched_pct:>7.2f}%"
        )
    lines.append(
        f"elapsed {report.elapsed_s:.1f} s" + (f"; run directory kept: {report.run_dir}" if report.run_dir else "")
    )
    return "\n".join(lines)
