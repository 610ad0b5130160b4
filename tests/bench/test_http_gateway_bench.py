"""``bench/http_gateway_bench.py`` with tiny bounds: correctness only (every message accepted and durable, sane JSON,
no process or directory left behind), never timing."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

import pytest

from smppgw.bench import procfs
from smppgw.config import parse_config
from smppgw.core.numbering import default_plan, normalise_msisdn

from .scripts import load_bench_script

pytestmark = pytest.mark.skipif(not procfs.available(), reason="the bench reads /proc (Linux)")


bench = load_bench_script("http_gateway_bench")


def _children() -> list[int]:
    """Live (non-zombie) children of this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _run_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("smppgw-httpbench-*")}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    dirs = _run_dirs()
    status = bench.main([*args, "--warmup", "0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["failures"]
    assert report["schema"] == "smppgw.http_gateway_bench/1" and report["ok"] is True and report["failures"] == []
    assert _children() == [], "the bench left a process behind"
    assert _run_dirs() <= dirs, "the bench left its directory behind"
    return report


def test_single_requests_are_all_accepted_and_durable(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(capsys, "--mode", "single", "--requests", "200", "--connections", "8", "--text", "mixed")
    results, durability = report["results"], report["durability"]
    assert results["requests"] == results["accepted"] == results["messages_sent"] == 200
    assert results["statuses"] == {"202": 200} and results["errors"] == {}
    assert durability == {
        "ok": True,
        "rows": 200,
        "accepted_total": 200,
        "missing_ids": 0,
        "unacknowledged_rows": 0,
        "gateway_exit_status": 0,
    }
    latency = results["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["cpu"]["gateway_s"] >= 0 and report["cpu"]["client_s"] >= 0
    assert " --mode single " in report["command"] and " run --config " in report["processes"]["gateway"]


def test_batches_are_all_accepted_and_durable(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(capsys, "--mode", "batch", "--requests", "2", "--batch-size", "50", "--connections", "2")
    results, durability = report["results"], report["durability"]
    assert results["requests"] == 2 and results["accepted"] == results["messages_sent"] == 100
    assert results["statuses"] == {"200": 2} and results["errors"] == {}
    assert durability["ok"] is True and durability["rows"] == durability["accepted_total"] == 100
    assert durability["missing_ids"] == 0 and durability["gateway_exit_status"] == 0


def test_two_gateway_workers_accept_everything_durably(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(capsys, "--mode", "single", "--requests", "200", "--connections", "8", "--workers", "2")
    results, durability = report["results"], report["durability"]
    assert results["requests"] == results["accepted"] == 200 and results["errors"] == {}
    assert durability["ok"] is True and durability["rows"] == durability["accepted_total"] == 200
    assert durability["gateway_exit_status"] == 0
    assert report["settings"]["workers"] == 2 and report["processes"]["gateway"].endswith(" --workers 2")
    threads = report["cpu"]["gateway_threads_s"]
    assert all(name != "main" for name in threads)  # one main thread per process: main/PID
    assert report["cpu"]["gateway_s"] > 0


def test_recipients_are_distinct_routable_russian_mobiles() -> None:
    plan = default_plan()
    numbers = [bench.recipient(i) for i in range(5000)]
    assert len(set(numbers)) == len(numbers)
    for number in numbers[:600]:
        canonical = normalise_msisdn(number)
        assert canonical == number.removeprefix("+") and plan.lookup(canonical) is not None, number
    body = json.loads(bench.Bodies("cyrillic").batch(3))
    assert [m["class"] for m in body["messages"]] == ["otp"] * 3 and "Код" in body["messages"][0]["text"]


def test_gateway_config_is_the_bench_config_with_a_token() -> None:
    options = bench.Options(connector_rate=500.0, synchronous="full")
    text = bench.gateway_config(smpp_port=1, http_port=2, sim_port=3, directory=Path("/tmp/x"), options=options)
    config = parse_config(tomllib.loads(text))
    assert config.accounts[0].http_token == bench.TOKEN and config.accounts[0].rate >= 1e6
    assert config.connectors[0].rate == 500.0 and config.store.synchronous == "full"
    assert config.http.listen == "127.0.0.1:2" and config.log.level == "warning"


def test_parse_metrics_sums_labels() -> None:
    text = 'smppgw_connector_segments_total{connector="a"} 3\nsmppgw_connector_segments_total{connector="b"} 4\n'
    assert bench.parse_metrics(text + "# HELP x\nsmppgw_store_batches 2.0\n") == {
        "smppgw_connector_segments": 7.0,
        "smppgw_store_batches": 2.0,
    }


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--batch-size", "1001"]) == 2
    assert bench.main(["--duration", "300", "--max-seconds", "100"]) == 2
    assert bench.main(["--workers", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
