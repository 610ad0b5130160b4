"""The pure parts of ``smppgw bench``: /proc parsing, medians and aggregation, report rendering and JSON keys,
sweep parsing, load planning, the gateway config it writes, progress parsing, and the process helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import msgspec
import pytest

from smppgw.bench import plot, procfs
from smppgw.bench.process import BenchProcessError, ManagedProcess, free_ports, wait_for_listeners, wait_for_port
from smppgw.bench.report import (
    BenchReport,
    BenchSettings,
    HostInfo,
    PassFigures,
    PassLatency,
    Percentiles,
    ProcessFigures,
    RoundResult,
    Timeline,
    TimelinePoint,
    aggregate,
    format_text,
    from_json,
    median,
    throughput_ratio,
    to_json,
)
from smppgw.bench.runner import (
    BenchError,
    BenchOptions,
    binds_per_worker,
    build_timeline,
    gateway_toml,
    metric_by_worker,
    parse_progress,
    parse_sweep,
    plan_messages,
    segments_per_message,
)
from smppgw.config import parse_config
from smppgw.loadtest.cli import format_progress
from smppgw.loadtest.generator import Progress

STAT_LINE = (
    "4242 (python3 (smppgw) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 250 50 0 0 20 0 3 0 987654 "
    "123456789 10240 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0"
)


def test_parse_stat_cpu_counts_fields_after_the_last_parenthesis() -> None:
    assert procfs.parse_stat_cpu(STAT_LINE, clock_ticks=100) == (2.5, 0.5)
    assert procfs.parse_stat_cpu(STAT_LINE, clock_ticks=250) == (1.0, 0.2)


@pytest.mark.parametrize("line", ["", "4242 python3 S 1", "4242 (x) S 1 2 3"])
def test_parse_stat_cpu_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError):
        procfs.parse_stat_cpu(line)


def test_parse_status_kb() -> None:
    text = "Name:\tpython3\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t3\n"
    assert procfs.parse_status_kb(text, "VmHWM") == 51200
    assert procfs.parse_status_kb(text, "VmRSS") == 40960
    assert procfs.parse_status_kb(text, "VmSwap") is None


@pytest.mark.skipif(not procfs.available(), reason="needs /proc")
def test_own_process_cpu_and_memory() -> None:
    before = procfs.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert procfs.cpu_seconds(os.getpid()) >= before
    rss, peak = procfs.memory_kb(os.getpid())
    assert 0 < rss <= peak
    with pytest.raises(procfs.ProcError):
        procfs.cpu_seconds(2**22 + 12345)  # beyond pid_max defaults: no such process


def test_parse_stat_reads_parent_state_and_reaped_children() -> None:
    fields = STAT_LINE.split()
    fields[17:19] = ["700", "300"]  # cutime and cstime (fields 16 and 17; the command name holds 3 spaces)
    line = " ".join(fields)
    assert procfs.parse_stat(STAT_LINE, clock_ticks=100) == procfs.StatInfo("S", 1, 3.0, 0.0)
    assert procfs.parse_stat(line, clock_ticks=100) == procfs.StatInfo("S", 1, 3.0, 10.0)
    with pytest.raises(ValueError):
        procfs.parse_stat("4242 (x) S 1 2 3")


_BURN_THEN_SLEEP = (
    "import time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('ready', flush=True)\n"
    "time.sleep(2)\n"
)


@pytest.mark.skipif(not procfs.available(), reason="needs /proc")
def test_tree_cpu_and_memory_cover_children_and_keep_reaped_ones() -> None:
    me = os.getpid()
    child = subprocess.Popen([sys.executable, "-c", _BURN_THEN_SLEEP], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert child.pid in procfs.children(me)
        members = procfs.tree(me)
        assert members[0] == me and child.pid in members
        child_cpu = procfs.cpu_seconds(child.pid)
        assert child_cpu >= 0.25
        own_before = procfs.cpu_seconds(me)
        assert procfs.tree_cpu_seconds(me) >= own_before + child_cpu - 1e-6
        own_peak, child_peak = procfs.memory_kb(me)[1], procfs.memory_kb(child.pid)[1]
        rss, peak = procfs.tree_memory_kb(me)
        assert peak >= own_peak + child_peak and 0 < rss <= peak
        assert procfs.tree(child.pid) == [child.pid]
        assert procfs.tree_cpu_seconds(child.pid) == pytest.approx(child_cpu, abs=0.02)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    # reaped: gone from the tree, its CPU now in this process's cutime/cstime, so the sum does not drop
    assert child.pid not in procfs.tree(me)
    total = procfs.tree_cpu_seconds(me)
    assert total - procfs.cpu_seconds(me) >= child_cpu - 0.02
    with pytest.raises(procfs.ProcError):
        procfs.tree_cpu_seconds(child.pid)
    with pytest.raises(procfs.ProcError):
        procfs.tree_memory_kb(child.pid)


@pytest.mark.skipif(not procfs.available(), reason="needs /proc")
def test_listening_sockets_counts_each_reuseport_listener() -> None:
    port = free_ports(1)[0]
    assert procfs.listening_sockets(port) == 0
    sockets = []
    try:
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            sockets.append(sock)
        assert procfs.listening_sockets(port) == 0  # bound is not listening
        for expected, sock in enumerate(sockets, start=1):
            sock.listen()
            assert procfs.listening_sockets(port) == expected
    finally:
        for sock in sockets:
            sock.close()
    assert procfs.listening_sockets(port) == 0


def test_metric_by_worker_sums_per_worker_label() -> None:
    merged = (
        "# HELP smppgw_connector_binds_up Binds up\n# TYPE smppgw_connector_binds_up gauge\n"
        'smppgw_connector_binds_up{connector="a",worker="0"} 1.0\n'
        'smppgw_connector_binds_up{connector="b",worker="0"} 2.0\n'
        'smppgw_connector_binds_up{connector="a",worker="1"} 1.0\n'
        'smppgw_connector_binds_up_other{worker="1"} 9.0\n'
        'smppgw_segments_accepted_total{worker="1"} 42.0\n'
    )
    assert metric_by_worker(merged, "smppgw_connector_binds_up") == {0: 3.0, 1: 1.0}
    assert metric_by_worker(merged, "smppgw_segments_accepted_total") == {1: 42.0}
    single = 'smppgw_connector_binds_up{connector="sim"} 2.0\nsmppgw_segments_accepted_total 7.0\n'
    assert metric_by_worker(single, "smppgw_connector_binds_up") == {0: 2.0}
    assert metric_by_worker(single, "smppgw_segments_accepted_total") == {0: 7.0}
    assert metric_by_worker(single, "smppgw_missing") == {}


def test_binds_per_worker_is_the_gateways_share_at_least_one_each() -> None:
    assert binds_per_worker(2, 1) == [2]
    assert binds_per_worker(2, 2) == [1, 1]
    assert binds_per_worker(1, 2) == [1, 1]
    assert binds_per_worker(5, 2) == [3, 2]


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0]) == 7.0
    assert median([]) == 0.0


def _figures(
    rate: float,
    p99: float,
    *,
    gateway_cpu: float | None = 40.0,
    rss: float | None = 50.0,
    split: list[int] | None = None,
) -> PassFigures:
    pct = Percentiles(p50=p99 / 4, p95=p99 / 2, p99=p99)
    return PassFigures(
        messages=100,
        segments=150,
        accepted=150,
        errors=0,
        receipts_expected=150,
        receipts_received=150,
        receipts_matched=150,
        receipts_matched_pct=100.0,
        messages_per_s=rate / 1.5,
        segments_per_s=rate,
        latency_ms=PassLatency(submit_resp=pct, submit_receipt=pct, submit_resp_p99_scheduled=p99 * 2),
        cpu_s=ProcessFigures(gateway=None if gateway_cpu is None else 0.006, sim=0.003, loadtest=0.004),
        cpu_us_per_segment=ProcessFigures(gateway=gateway_cpu, sim=20.0, loadtest=26.7),
        window_s=1.0,
        gateway_peak_rss_mb=rss,
        gateway_worker_segments=split,
    )


def test_aggregate_takes_medians_sums_counts_and_the_largest_peak() -> None:
    passes = [_figures(1000.0, 9.0, rss=50.0), _figures(3000.0, 3.0, rss=70.0), _figures(2000.0, 5.0, rss=60.0)]
    total = aggregate(passes)
    assert total.segments_per_s == 2000.0
    assert total.latency_ms.submit_resp.p99 == 5.0
    assert total.receipts_expected == total.receipts_matched == 450
    assert total.receipts_matched_pct == 100.0
    assert total.gateway_peak_rss_mb == 70.0
    assert total.cpu_us_per_segment.gateway == 40.0
    baseline = aggregate([_figures(5000.0, 1.0, gateway_cpu=None, rss=None)])
    assert baseline.cpu_us_per_segment.gateway is None and baseline.gateway_peak_rss_mb is None
    assert throughput_ratio(total, baseline) == 0.4
    assert total.gateway_worker_segments is None and baseline.gateway_worker_segments is None
    with pytest.raises(ValueError):
        aggregate([])


def test_aggregate_sums_the_segments_per_worker() -> None:
    passes = [_figures(1000.0, 1.0, split=[100, 50]), _figures(1000.0, 1.0, split=[70, 80])]
    assert aggregate(passes).gateway_worker_segments == [170, 130]
    assert aggregate([*passes, _figures(1000.0, 1.0)]).gateway_worker_segments is None


def test_aggregate_reports_missing_receipts() -> None:
    short = msgspec.structs.replace(_figures(1000.0, 1.0), receipts_matched=149, receipts_matched_pct=99.333)
    assert aggregate([_figures(1000.0, 1.0), short]).receipts_matched_pct == pytest.approx(99.667)


def _report(workers: int = 1) -> BenchReport:
    split = [75] * workers if workers > 1 else None
    gateway, baseline = _figures(2000.0, 5.0, split=split), _figures(5000.0, 1.0, gateway_cpu=None, rss=None)
    return BenchReport(
        ok=True,
        failures=[],
        settings=BenchSettings(
            segments=150,
            messages=100,
            segments_per_message=1.5,
            duration_s=None,
            rate=0.0,
            binds=2,
            window=500,
            workers=workers,
            mix="latin=1",
            repeat=1,
            warmup_segments=0,
            receipt_delay_ms=None,
            store="sqlite",
            metrics=True,
        ),
        host=HostInfo(
            cpu_model="test cpu",
            cpus=2,
            cpus_usable=2,
            memory_mb=1024,
            platform="linux",
            python="3.11",
            uvloop="0.23",
            loadavg_start=[0.5, 0.4, 0.3],
            loadavg_end=[0.6, 0.4, 0.3],
        ),
        gateway=gateway,
        baseline=baseline,
        ratio=0.4,
        rounds=[RoundResult(round=1, order="baseline,gateway", gateway=gateway, baseline=baseline, ratio=0.4)],
        timeline=None,
        elapsed_s=3.0,
        run_dir=None,
    )


def test_format_text_has_every_figure() -> None:
    text = format_text(_report())
    for needle in (
        "result: OK",
        "accepted messages/s",
        "accepted segments/s",
        "receipts matched %",
        "submit→resp p99 ms",
        "submit→receipt p95 ms",
        "gateway CPU-µs per segment",
        "simulator CPU-µs per segment",
        "load generator CPU-µs per segment",
        "gateway peak RSS MB",
        "gateway ÷ baseline throughput: 0.400",
        "test cpu",
        "gateway: 1 worker (one process)",
    ):
        assert needle in text, needle
    assert "segments per worker" not in text
    workers = format_text(_report(workers=2))
    assert "gateway: 2 workers (smppgw run --workers 2" in workers
    assert "gateway peak RSS MB (sum)" in workers
    assert "segments per worker (sums)" in workers and "75/75" in workers
    failed = msgspec.structs.replace(_report(), ok=False, failures=["round 1 gateway: receipts matched 1 of 2"])
    assert "FAILED (round 1 gateway: receipts matched 1 of 2)" in format_text(failed)


def test_json_keys_are_stable_and_round_trip() -> None:
    data = msgspec.json.decode(to_json(_report()))
    assert list(data) == [
        "schema", "ok", "failures", "settings", "host", "gateway", "baseline", "ratio", "rounds", "timeline",
        "elapsed_s", "run_dir",
    ]  # fmt: skip
    assert data["schema"] == "smppgw.bench/1"
    assert set(data["gateway"]) >= {
        "messages_per_s", "segments_per_s", "receipts_expected", "receipts_matched", "receipts_matched_pct",
        "latency_ms", "cpu_us_per_segment", "gateway_peak_rss_mb",
    }  # fmt: skip
    assert set(data["gateway"]["latency_ms"]) == {"submit_resp", "submit_receipt", "submit_resp_p99_scheduled"}
    assert set(data["gateway"]["cpu_us_per_segment"]) == {"gateway", "sim", "loadtest"}
    assert data["settings"]["workers"] == 1 and data["gateway"]["gateway_worker_segments"] is None
    assert from_json(to_json(_report())) == _report()
    assert msgspec.json.decode(to_json(_report(workers=2)))["gateway"]["gateway_worker_segments"] == [75, 75]
    assert from_json(to_json(_report(workers=2))) == _report(workers=2)
    older = msgspec.json.decode(to_json(_report()))  # a report written before workers existed still reads
    del older["settings"]["workers"]
    del older["gateway"]["gateway_worker_segments"]
    assert from_json(msgspec.json.encode(older)).settings.workers == 1


def test_parse_sweep() -> None:
    assert parse_sweep(["rates=2000,5000", "mixes=latin,long"]) == ([2000.0, 5000.0], ["latin=1", "long=1"])
    assert parse_sweep(["mixes=latin=3+cyrillic=1"]) == ([], ["latin=3,cyrillic=1"])
    for bad in ("rates", "rates=", "rates=fast", "rates=-1", "mixes=klingon", "speeds=1"):
        with pytest.raises(BenchError):
            parse_sweep([bad])


def test_segments_per_message_and_plan() -> None:
    assert segments_per_message("latin=1") == 1.0
    assert segments_per_message("cyrillic=1") == 1.0
    assert 3.0 <= segments_per_message("long=1") <= 5.0
    mixed = segments_per_message("latin=1,long=1")
    assert mixed == pytest.approx((1.0 + segments_per_message("long=1")) / 2)
    assert plan_messages(BenchOptions(segments=300, mix="latin=1"), 1.0) == 300
    assert plan_messages(BenchOptions(segments=300), 1.5) == 200
    assert plan_messages(BenchOptions(duration=2.0, rate=1000.0), 2.0) == 1000


@pytest.mark.parametrize(
    "options",
    [
        BenchOptions(segments=0),
        BenchOptions(duration=5.0),  # a closed loop cannot be bounded by time
        BenchOptions(binds=0),
        BenchOptions(rate=-1.0),
        BenchOptions(repeat=0),
        BenchOptions(mix="klingon=1"),
        BenchOptions(workers=0),
        BenchOptions(workers=33),
    ],
)
def test_bad_options(options: BenchOptions) -> None:
    with pytest.raises(BenchError):
        options.validate()


def test_gateway_config_is_valid(tmp_path: Path) -> None:
    text = gateway_toml(smpp_port=2775, http_port=8080, sim_port=2776, directory=tmp_path, binds=2, window=500)
    config = parse_config(tomllib.loads(text))
    assert config.store.path == str(tmp_path / "gateway.sqlite3")
    assert config.http.enabled
    assert config.connectors[0].port == 2776 and config.connectors[0].binds == 2
    assert config.accounts[0].rate >= 1_000_000


def _progress(t: float, acked: int, matched: int, in_flight: int) -> str:
    return format_progress(
        Progress(
            elapsed=t,
            phase="submitting",
            messages_sent=acked + in_flight,
            submit_sm=acked + in_flight,
            submit_sm_per_s=0.0,
            acknowledged=acked,
            errors=0,
            in_flight=in_flight,
            backlog=0,
            receipts=matched,
            matched=matched,
            parked=0,
        )
    )


def test_progress_lines_become_a_timeline() -> None:
    text = "\n".join(["noise", _progress(1.0, 1000, 800, 50), _progress(2.0, 3000, 2900, 100)])
    assert parse_progress(text) == [(1.0, 50, 1000, 800), (2.0, 100, 3000, 2900)]
    samples = [
        procfs.Sample(0.5, {"sim": 0.0, "gateway": 0.0}, {}),
        procfs.Sample(1.5, {"sim": 0.5, "gateway": 0.8}, {}),
        procfs.Sample(2.5, {"sim": 1.0, "gateway": 1.6}, {}),
    ]
    points = build_timeline(parse_progress(text), samples, offset=0.5)
    assert [p.acked_per_s for p in points] == [1000.0, 2000.0]
    assert [p.receipts_per_s for p in points] == [800.0, 2100.0]
    assert points[1].latency_est_ms == 50.0  # 100 in flight at 2,000/s
    assert points[1].gateway_cpu == 0.8 and points[1].sim_cpu == 0.5


def test_plot_without_matplotlib_writes_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plot, "_matplotlib", lambda: None)
    point = TimelinePoint(
        t=1.0, acked_per_s=10.0, receipts_per_s=9.0, in_flight=1, latency_est_ms=0.1, gateway_cpu=None, sim_cpu=0.1
    )
    written = plot.write_plot(Timeline(gateway=[point], baseline=[point]), tmp_path / "run.png", "t")
    assert written == tmp_path / "run.csv"
    lines = written.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("path,t,") and len(lines) == 3


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))


def _python(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code], tmp_path).start()


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    child = _python(tmp_path, "stubborn", code)
    deadline = time.monotonic() + 10
    while "ready" not in child.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.stop(term_timeout=0.3) == -signal.SIGKILL
    assert child.killed and not child.alive()
    assert child.stop() == -signal.SIGKILL  # idempotent


def test_stop_is_graceful_for_a_child_that_exits_on_sigterm(tmp_path: Path) -> None:
    child = _python(tmp_path, "polite", "import time; time.sleep(60)")
    assert child.stop(term_timeout=5.0) == -signal.SIGTERM
    assert not child.killed


def test_wait_for_port_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    child = _python(tmp_path, "crash", "import sys; print('boom', file=sys.stderr); sys.exit(3)")
    try:
        with pytest.raises(BenchProcessError, match="boom"):
            wait_for_port("127.0.0.1", free_ports(1)[0], timeout=10.0, process=child)
    finally:
        child.stop()


def test_wait_for_port_times_out(tmp_path: Path) -> None:
    with pytest.raises(BenchProcessError, match="not accepting"):
        wait_for_port("127.0.0.1", free_ports(1)[0], timeout=0.2)


@pytest.mark.skipif(not procfs.available(), reason="needs /proc")
def test_wait_for_listeners_wants_one_socket_per_worker() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        wait_for_listeners(port, 1, timeout=1.0)
        with pytest.raises(BenchProcessError, match="1 of 2 sockets listening"):
            wait_for_listeners(port, 2, timeout=0.2)
