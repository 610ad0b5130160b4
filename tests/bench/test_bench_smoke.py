"""``smppgw bench`` end to end with a tiny load: correctness only (every receipt, sane JSON, every process and the
run directory cleaned up), never timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import pytest

from smppgw.bench import procfs
from smppgw.cli import main

pytestmark = pytest.mark.skipif(not procfs.available(), reason="smppgw bench needs Linux /proc")

TINY = ["--segments", "300", "--repeat", "1", "--warmup", "0", "--binds", "1", "--window", "50", "--json", "--quiet"]


def _children(pid: int) -> dict[int, str]:
    """pid → command line of the live (non-zombie) children of ``pid``."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def _bench_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("smppgw-bench-*")}


def _assert_complete(figures: dict[str, object]) -> None:
    assert figures["receipts_matched_pct"] == 100.0
    assert figures["receipts_matched"] == figures["receipts_expected"] == figures["accepted"] == figures["segments"]
    assert figures["errors"] == 0
    assert isinstance(figures["segments_per_s"], float) and figures["segments_per_s"] > 0


def test_bench_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    dirs_before = _bench_dirs()
    assert main(["bench", *TINY]) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["schema"] == "smppgw.bench/1"
    assert report["ok"] is True and report["failures"] == []
    gateway, baseline = report["gateway"], report["baseline"]
    _assert_complete(gateway)
    _assert_complete(baseline)
    assert gateway["segments"] >= 300
    for figures in (gateway, baseline):
        for name in ("submit_resp", "submit_receipt"):
            p = figures["latency_ms"][name]
            assert 0 < p["p50"] <= p["p95"] <= p["p99"]
        assert figures["cpu_us_per_segment"]["sim"] >= 0 and figures["cpu_us_per_segment"]["loadtest"] > 0
    assert gateway["cpu_us_per_segment"]["gateway"] > 0
    assert gateway["gateway_peak_rss_mb"] > 10
    assert baseline["cpu_us_per_segment"]["gateway"] is None and baseline["gateway_peak_rss_mb"] is None
    assert report["ratio"] > 0
    assert len(report["rounds"]) == 1 and report["rounds"][0]["order"] == "baseline,gateway"
    assert set(report["settings"]) >= {"segments", "binds", "window", "mix", "rate", "repeat"}
    assert report["host"]["cpus"] >= 1
    assert report["timeline"] is not None
    assert report["run_dir"] is None
    assert _children(os.getpid()) == {}, "bench left child processes behind"
    assert _bench_dirs() <= dirs_before, "bench left its run directory behind"


def test_bench_with_two_gateway_workers(capsys: pytest.CaptureFixture[str]) -> None:
    """``--workers 2``: every receipt through a supervisor and two workers; CPU and RSS cover the process tree."""
    dirs_before = _bench_dirs()
    assert main(["bench", *TINY, "--binds", "2", "--workers", "2"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["ok"] is True and report["failures"] == []
    assert report["settings"]["workers"] == 2 and report["settings"]["binds"] == 2
    gateway, baseline = report["gateway"], report["baseline"]
    _assert_complete(gateway)
    _assert_complete(baseline)
    split = gateway["gateway_worker_segments"]
    assert len(split) == 2 and sum(split) == gateway["accepted"]
    assert baseline["gateway_worker_segments"] is None
    assert gateway["cpu_us_per_segment"]["gateway"] > 0
    assert gateway["gateway_peak_rss_mb"] > 30  # three interpreters: the supervisor and two workers
    assert _children(os.getpid()) == {}, "bench left child processes behind"
    assert _bench_dirs() <= dirs_before, "bench left its run directory behind"


def test_sweep_runs_one_point_per_rate_and_mix(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", *TINY, "--segments", "120", "--sweep", "rates=1500", "--sweep", "mixes=latin,long"]
    assert main(argv) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert report["schema"] == "smppgw.bench.sweep/1" and report["ok"] is True
    assert [(p["rate"], p["mix"]) for p in report["points"]] == [(1500.0, "latin=1"), (1500.0, "long=1")]
    for point in report["points"]:
        _assert_complete(point["gateway"])
        _assert_complete(point["baseline"])
    assert _children(os.getpid()) == {}


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--duration", "5"]) == 2  # a closed loop is bounded by --segments, not time
    assert "--duration needs --rate" in capsys.readouterr().err
    assert main(["bench", "--sweep", "speeds=1"]) == 2


def test_sigterm_stops_every_process() -> None:
    bench = subprocess.Popen(
        [sys.executable, "-m", "smppgw.cli", "bench", "--segments", "1000000", "--rate", "2000", "--warmup", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        children: dict[int, str] = {}
        while time.monotonic() < deadline:  # until the load is running: simulator, gateway and load generator
            children = _children(bench.pid)
            if any(" loadtest " in c for c in children.values()):
                break
            assert bench.poll() is None, bench.communicate()
            time.sleep(0.05)
        assert len(children) == 3, children
        config = next(c for c in children.values() if " run " in c).split("--config", 1)[1].split()[0]
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=40)
        assert bench.returncode == 130, err
        assert b"interrupted" in err
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
        assert not Path(config).parent.exists()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
