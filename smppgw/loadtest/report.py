"""The load test's results: one immutable value with stable keys, rendered as text for people or JSON for machines.

JSON keys are the field names below, in this order; ``schema`` changes when a key is renamed or removed (adding keys
is compatible). Latencies are milliseconds; rates are per second over the submit phase (from the first scheduled
message to the last submit_sm_resp).
"""

from __future__ import annotations

from typing import Final

import msgspec

from .histogram import LatencySummary

SCHEMA: Final = "smppgw.loadtest/1"


class RunSettings(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    system_id: str
    bind_mode: str
    binds: int
    rx_binds: int
    window: int
    rate: float
    count: int
    mix: str
    concat: str
    seed: int
    registered_delivery: int
    max_seconds: float
    receipt_timeout: float


class SubmitStats(msgspec.Struct, frozen=True, kw_only=True):
    messages_planned: int
    messages_sent: int  # every part handed to a connection
    messages_not_sent: int  # the hard time limit stopped the schedule first
    messages_by_kind: dict[str, int]
    submit_sm: int  # PDUs sent
    segments: int  # handset segments of the PDUs sent (more than submit_sm in payload mode)
    acknowledged: int  # submit_sm_resp ESME_ROK
    errors: int  # rejected + fate_unknown + local_errors
    rejected: int  # submit_sm_resp / generic_nack with an error status
    fate_unknown: int  # no response: timeout or disconnect
    local_errors: int  # the connection refused to send (closed between pick and send)
    errors_by_status: dict[str, int]  # constants.describe_status(status) or "fate unknown: <reason>"


class ReceiptStats(msgspec.Struct, frozen=True, kw_only=True):
    expected: int  # acknowledged parts when receipts were requested, else 0
    received: int  # receipt PDUs (deliver_sm / data_sm with the receipt esm_class)
    matched: int  # parts with a final receipt
    unmatched: int  # receipts with no part (unknown id, or evicted from the parking)
    duplicates: int
    intermediate: int  # non-final receipts of known parts
    missing: int  # acknowledged parts without a final receipt
    malformed: int  # receipt PDUs without a readable message id
    guessed: int  # matched across id readings (hex one side, decimal the other)
    parked_peak: int  # receipts that arrived before their submit_sm_resp, most at once
    parked_dropped: int
    by_state: dict[str, int]
    reused_ids: int = 0  # submit_sm_resp ids the SMSC repeated while the earlier one was still on record


class DeliverStats(msgspec.Struct, frozen=True, kw_only=True):
    deliver_sm: int  # every deliver_sm / data_sm received (each answered at once)
    mobile_originated: int  # those that were not receipts


class Throughput(msgspec.Struct, frozen=True, kw_only=True):
    submit_phase_s: float
    messages_per_s: float
    submit_sm_per_s: float
    segments_per_s: float
    acknowledged_per_s: float


class Latencies(msgspec.Struct, frozen=True, kw_only=True):
    """Open loop: ``*_from_scheduled`` starts at the message's scheduled time (includes queueing in the generator);
    ``*_from_sent`` at the moment the submit_sm was handed to the connection."""

    resp_from_scheduled: LatencySummary
    resp_from_sent: LatencySummary
    receipt_from_scheduled: LatencySummary
    receipt_from_sent: LatencySummary


class CpuStats(msgspec.Struct, frozen=True, kw_only=True):
    process_s: float  # user + system CPU of this process during the run
    user_s: float
    system_s: float
    us_per_submit_sm: float
    utilisation: float  # process_s / elapsed_s (1.0 = one core busy)


class LinkStats(msgspec.Struct, frozen=True, kw_only=True):
    connect_failures: int
    bind_failures: int
    disconnects: int


class LoadReport(msgspec.Struct, frozen=True, kw_only=True):
    schema: str = SCHEMA
    ok: bool
    failures: list[str]  # why ``ok`` is False (empty when ok)
    incomplete: bool  # the hard time limit ended the submit phase
    elapsed_s: float
    settings: RunSettings
    submits: SubmitStats
    receipts: ReceiptStats
    deliver: DeliverStats
    throughput: Throughput
    latency_ms: Latencies
    cpu: CpuStats
    links: LinkStats


def to_json(report: LoadReport) -> bytes:
    return msgspec.json.encode(report)


def from_json(data: bytes | str) -> LoadReport:
    return msgspec.json.decode(data, type=LoadReport)


def _latency_line(name: str, s: LatencySummary) -> str:
    if s.count == 0:
        return f"  {name:<24} -"
    return (
        f"  {name:<24} p50 {s.p50:9.3f}  p95 {s.p95:9.3f}  p99 {s.p99:9.3f}  max {s.max:9.3f}  "
        f"mean {s.mean:9.3f}  (n={s.count})"
    )


def format_text(report: LoadReport) -> str:
    """A human-readable report (several lines, no trailing newline)."""
    st, sub, rc, tp, cpu = report.settings, report.submits, report.receipts, report.throughput, report.cpu
    lines = [
        f"smppgw loadtest → {st.target} as {st.system_id!r}: {st.binds} {st.bind_mode} bind(s)"
        + (f" + {st.rx_binds} rx" if st.rx_binds else "")
        + f", window {st.window}, rate {st.rate:g}/s{' (closed loop)' if not st.rate else ''}, mix {st.mix}, "
        f"concat {st.concat}, seed {st.seed}",
        f"result: {'OK' if report.ok else 'FAILED'}" + ("" if report.ok else f" ({'; '.join(report.failures)})"),
        f"messages: {sub.messages_sent}/{sub.messages_planned} sent"
        + (f" ({sub.messages_not_sent} not sent: hard time limit)" if sub.messages_not_sent else "")
        + "  by kind: "
        + ", ".join(f"{k} {v}" for k, v in sub.messages_by_kind.items()),
        f"submit_sm: {sub.submit_sm} sent, {sub.segments} segments, {sub.acknowledged} acknowledged, "
        f"{sub.errors} errors (rejected {sub.rejected}, fate unknown {sub.fate_unknown}, local {sub.local_errors})",
    ]
    lines += [f"  {n:>8}  {status}" for status, n in sub.errors_by_status.items()]
    lines += [
        f"receipts: {rc.received} received, {rc.matched}/{rc.expected} matched, {rc.unmatched} unmatched, "
        f"{rc.duplicates} duplicates, {rc.missing} missing, {rc.intermediate} intermediate, {rc.malformed} malformed"
        f"  (parked peak {rc.parked_peak}, dropped {rc.parked_dropped}, guessed {rc.guessed}"
        + (f", {rc.reused_ids} ids reused by the SMSC" if rc.reused_ids else "")
        + ")",
        "  states: " + (", ".join(f"{k} {v}" for k, v in rc.by_state.items()) or "-"),
        f"throughput: {tp.messages_per_s:,.0f} msg/s, {tp.submit_sm_per_s:,.0f} submit_sm/s, "
        f"{tp.segments_per_s:,.0f} segments/s over {tp.submit_phase_s:.2f} s",
        "latency (ms):",
        _latency_line("submit→resp (scheduled)", report.latency_ms.resp_from_scheduled),
        _latency_line("submit→resp (sent)", report.latency_ms.resp_from_sent),
        _latency_line("submit→receipt (sched.)", report.latency_ms.receipt_from_scheduled),
        _latency_line("submit→receipt (sent)", report.latency_ms.receipt_from_sent),
        f"cpu: {cpu.process_s:.2f} s ({cpu.user_s:.2f} user + {cpu.system_s:.2f} sys), "
        f"{cpu.us_per_submit_sm:.1f} µs per submit_sm, {cpu.utilisation:.0%} of a core; "
        f"elapsed {report.elapsed_s:.2f} s",
    ]
    link = report.links
    if link.connect_failures or link.bind_failures or link.disconnects:
        lines.append(
            f"links: {link.connect_failures} connect failures, {link.bind_failures} bind failures, "
            f"{link.disconnects} disconnects"
        )
    return "\n".join(lines)
