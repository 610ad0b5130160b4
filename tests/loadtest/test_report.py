"""The report's JSON: stable keys (the bench harness parses them), round trip, and the text rendering."""

from __future__ import annotations

import json

import msgspec

from smppgw.loadtest.histogram import LatencyHistogram
from smppgw.loadtest.report import (
    SCHEMA,
    CpuStats,
    DeliverStats,
    Latencies,
    LinkStats,
    LoadReport,
    ReceiptStats,
    RunSettings,
    SubmitStats,
    Throughput,
    format_text,
    from_json,
    to_json,
)

EXPECTED_KEYS = {
    "": ["schema", "ok", "failures", "incomplete", "elapsed_s", "settings", "submits", "receipts", "deliver",
         "throughput", "latency_ms", "cpu", "links"],
    "settings": ["target", "system_id", "bind_mode", "binds", "rx_binds", "window", "rate", "count", "mix", "concat",
                 "seed", "registered_delivery", "max_seconds", "receipt_timeout"],
    "submits": ["messages_planned", "messages_sent", "messages_not_sent", "messages_by_kind", "submit_sm", "segments",
                "acknowledged", "errors", "rejected", "fate_unknown", "local_errors", "errors_by_status"],
    "receipts": ["expected", "received", "matched", "unmatched", "duplicates", "intermediate", "missing", "malformed",
                 "guessed", "parked_peak", "parked_dropped", "by_state", "reused_ids"],
    "deliver": ["deliver_sm", "mobile_originated"],
    "throughput": ["submit_phase_s", "messages_per_s", "submit_sm_per_s", "segments_per_s", "acknowledged_per_s"],
    "latency_ms": ["resp_from_scheduled", "resp_from_sent", "receipt_from_scheduled", "receipt_from_sent"],
    "cpu": ["process_s", "user_s", "system_s", "us_per_submit_sm", "utilisation"],
    "links": ["connect_failures", "bind_failures", "disconnects"],
}  # fmt: skip
LATENCY_KEYS = ["count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max"]


def sample_report(ok: bool = True) -> LoadReport:
    h = LatencyHistogram()
    for v in (1500, 2000, 9000):
        h.record_us(v)
    lat = h.summary()
    return LoadReport(
        ok=ok,
        failures=[] if ok else ["3 submit errors"],
        incomplete=False,
        elapsed_s=1.5,
        settings=RunSettings(
            target="127.0.0.1:2775",
            system_id="s",
            bind_mode="trx",
            binds=2,
            rx_binds=0,
            window=10,
            rate=100.0,
            count=100,
            mix="latin=1",
            concat="udh8",
            seed=1,
            registered_delivery=1,
            max_seconds=31.0,
            receipt_timeout=10.0,
        ),
        submits=SubmitStats(
            messages_planned=100,
            messages_sent=100,
            messages_not_sent=0,
            messages_by_kind={"latin": 100},
            submit_sm=100,
            segments=100,
            acknowledged=97,
            errors=3,
            rejected=3,
            fate_unknown=0,
            local_errors=0,
            errors_by_status={"ESME_RTHROTTLED (0x58): Throttling error": 3},
        ),
        receipts=ReceiptStats(
            expected=97,
            received=97,
            matched=97,
            unmatched=0,
            duplicates=0,
            intermediate=0,
            missing=0,
            malformed=0,
            guessed=0,
            parked_peak=2,
            parked_dropped=0,
            by_state={"DELIVERED": 97},
        ),
        deliver=DeliverStats(deliver_sm=97, mobile_originated=0),
        throughput=Throughput(
            submit_phase_s=1.0,
            messages_per_s=100.0,
            submit_sm_per_s=100.0,
            segments_per_s=100.0,
            acknowledged_per_s=97.0,
        ),
        latency_ms=Latencies(
            resp_from_scheduled=lat, resp_from_sent=lat, receipt_from_scheduled=lat, receipt_from_sent=lat
        ),
        cpu=CpuStats(process_s=0.5, user_s=0.4, system_s=0.1, us_per_submit_sm=5000.0, utilisation=0.33),
        links=LinkStats(connect_failures=0, bind_failures=0, disconnects=0),
    )


def test_json_keys_are_stable() -> None:
    data = json.loads(to_json(sample_report()))
    assert list(data) == EXPECTED_KEYS[""]
    assert data["schema"] == SCHEMA == "smppgw.loadtest/1"
    for section, keys in EXPECTED_KEYS.items():
        if section:
            assert list(data[section]) == keys, section
    for name in EXPECTED_KEYS["latency_ms"]:
        assert list(data["latency_ms"][name]) == LATENCY_KEYS
    assert data["latency_ms"]["resp_from_sent"]["p50"] == 2.0
    assert data["submits"]["errors_by_status"] == {"ESME_RTHROTTLED (0x58): Throttling error": 3}


def test_json_round_trip_and_types() -> None:
    report = sample_report(ok=False)
    assert from_json(to_json(report)) == report
    msgspec.json.decode(to_json(report), type=LoadReport, strict=True)


def test_text_report() -> None:
    text = format_text(sample_report(ok=False))
    assert "result: FAILED (3 submit errors)" in text
    assert "ESME_RTHROTTLED" in text
    assert "p99" in text and "segments/s" in text and "µs per submit_sm" in text
    assert "OK" in format_text(sample_report())
