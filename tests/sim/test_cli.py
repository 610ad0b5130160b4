"""``smppgw sim`` as a process: bounded run, per-second stats file, JSON summary, graceful SIGTERM, bad flags."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import pytest

from .helpers import bind, long_message_parts, submit_many

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio"])  # the process is the subject, not the test's loop

PYTHON = sys.executable


async def _start(*argv: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "smppgw.cli",
        "sim",
        "--listen",
        "127.0.0.1:0",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(10.0):
        line = (await process.stdout.readline()).decode()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    return process, int(match.group(1))


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, list[str]]:
    async with asyncio.timeout(15.0):
        stdout, stderr = await process.communicate()
    assert stderr.decode() == ""
    assert process.returncode is not None
    return process.returncode, stdout.decode().splitlines()


async def test_bounded_run_writes_stats_file_and_summary(tmp_path: Path) -> None:
    stats_file, handset_log = tmp_path / "stats.json", tmp_path / "handset.jsonl"
    process, port = await _start(
        "--duration",
        "2.5",
        "--stats-file",
        str(stats_file),
        "--handset-log",
        str(handset_log),
        "--receipt-delay-ms",
        "uniform:1-10",
        "--id-format",
        "dec",
        "--seed",
        "5",
    )
    conn, esme = await bind(port)
    await submit_many(conn, 50)
    parts = long_message_parts("Привет, мир! " * 10)
    for part in parts:
        await conn.request(part)
    total = 50 + len(parts)
    await esme.wait_for(lambda: len(esme.deliveries) == total)
    async with asyncio.timeout(5.0):
        while not stats_file.exists() or json.loads(stats_file.read_text())["receipts_acked"] < total:
            await asyncio.sleep(0.1)
    live = json.loads(stats_file.read_text())
    assert live["submit_sm"] == total and live["receipts_sent"] == total and live["bound"] == 1 and not live["final"]
    assert live["by_status"] == {"ESME_ROK": total} and live["segments"] == len(parts) == 2
    await conn.unbind()
    code, lines = await _finish(process)
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["final"] and summary["submit_sm"] == total and summary["receipts_acked"] == total
    assert summary["config"]["id_format"] == "dec" and summary["config"]["receipts"]["delay_ms"] == "uniform:1-10"
    assert summary["cpu_s"] > 0 and summary["disconnects"] == 1
    final_file = json.loads(stats_file.read_text())
    for key in ("submit_sm", "receipts_sent", "receipts_acked", "by_status", "receipts_by_stat", "bytes_in"):
        assert final_file[key] == summary[key]
    assert any(line.startswith("sim ") and "submit" in line for line in lines[:-1])  # per-second lines
    texts = [json.loads(line)["text"] for line in handset_log.read_text().splitlines()]
    assert "Привет, мир! " * 10 in texts and len(texts) == 51


async def test_sigterm_closes_gracefully_with_summary() -> None:
    process, port = await _start("--quiet", "--receipt-delay-ms", "60000")
    conn, _ = await bind(port)
    await submit_many(conn, 10)
    process.send_signal(signal.SIGTERM)
    code, lines = await _finish(process)
    assert code == 0 and len(lines) == 1  # after "listening" (read by _start): the summary only (--quiet)
    summary = json.loads(lines[-1])
    assert summary["submit_sm"] == 10 and summary["receipts_abandoned"] == 10
    async with asyncio.timeout(5.0):
        await conn.wait_closed()  # the simulator unbound us


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stat-mix", "NOPE=1"], "unknown receipt stat"),
        (["--drop-fraction", "2"], "drop_fraction"),
        (["--listen", "nowhere"], "HOST:PORT"),
        (["--profile", "/nonexistent.toml"], "cannot read profile"),
    ],
)
async def test_bad_settings_exit_2_with_a_message(argv: list[str], message: str) -> None:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "smppgw.cli",
        "sim",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10.0):
        _, stderr = await process.communicate()
    assert process.returncode == 2 and message in stderr.decode()
