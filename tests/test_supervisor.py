"""`smppgw run --workers N`'s supervisor, driving fake workers (tiny Python scripts) from a supervisor that runs in
its own process, so that signals reach it as they would in production. Every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smppgw.supervisor import migrate_store, run_supervisor

DRIVER = """
import json, sys
import smppgw.supervisor as supervisor
options = json.loads(sys.argv[1])
supervisor.POLL_INTERVAL = 0.02
supervisor.STOP_TIMEOUT = options.pop("stop_timeout", 5.0)
script, log = options.pop("script"), options.pop("log")
argv = lambda index: [sys.executable, "-c", script, str(index), log]
sys.exit(supervisor.run_supervisor(argv, options.pop("count"), **options))
"""

WORKER = """
import os, signal, sys, time
index, log = int(sys.argv[1]), sys.argv[2]
def note(what):
    with open(log, "a") as f:
        f.write(f"{index} {what}\\n")
def stop(*_):
    note("stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
note("started")
"""

SLEEP = "time.sleep(30)\n"


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start the supervisor (in a new session, so that teardown can kill it and its workers whatever happened)."""
    started: list[subprocess.Popen[str]] = []

    def start(body: str, count: int, **options: Any) -> subprocess.Popen[str]:
        options |= {"script": WORKER + body, "log": str(tmp_path / "log"), "count": count}
        options.setdefault("store_path", str(tmp_path / "gw.sqlite3"))
        process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(options)],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _events(tmp_path: Path) -> list[str]:
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


def _wait_for(tmp_path: Path, *events: str, timeout: float = 5.0) -> list[str]:
    """Wait until the log holds each of ``events`` (as many times as listed); the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _events(tmp_path)
        if all(lines.count(event) >= events.count(event) for event in events):
            return lines
        time.sleep(0.02)
    raise AssertionError(f"not seen {events} in {_events(tmp_path)}")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr


def test_sigterm_stops_every_worker_and_the_store_is_migrated(
    supervise: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    process = supervise(SLEEP, 3)
    _wait_for(tmp_path, "0 started", "1 started", "2 started")
    code, stderr = _stop(process)
    assert code == 0, stderr
    assert sorted(_events(tmp_path)) == ["0 started", "0 stopped", "1 started", "1 stopped", "2 started", "2 stopped"]
    with contextlib.closing(sqlite3.connect(tmp_path / "gw.sqlite3")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] > 0
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_crashed_worker_is_restarted(supervise: Callable[..., subprocess.Popen[str]], tmp_path: Path) -> None:
    crash_once = f"""
if index == 1 and not os.path.exists({str(tmp_path / "crashed")!r}):
    open({str(tmp_path / "crashed")!r}, "w").close()
    sys.exit(3)
{SLEEP}"""
    process = supervise(crash_once, 2, restart_delay=0.05)
    _wait_for(tmp_path, "0 started", "1 started", "1 started")
    code, stderr = _stop(process)
    assert code == 0, stderr
    assert "worker 1 exited (exit code 3); restarting in 0.05 s" in stderr
    assert _events(tmp_path).count("0 started") == 1


def test_gives_up_after_too_many_restarts(supervise: Callable[..., subprocess.Popen[str]], tmp_path: Path) -> None:
    process = supervise("sys.exit(1)\n", 1, restart_delay=0.01, max_restarts=2)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert _events(tmp_path) == ["0 started"] * 3  # the first start and two restarts
    assert "3 exits in 60 s: giving up" in stderr


def test_a_worker_that_ignores_sigterm_is_killed(
    supervise: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    stubborn = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nnote('ignoring')\n" + SLEEP
    process = supervise(stubborn, 2, stop_timeout=0.3)
    _wait_for(tmp_path, "0 ignoring", "1 ignoring")
    code, stderr = _stop(process)
    assert code == 1
    assert "did not stop within 0.3 s: killing it" in stderr


def test_migrate_store_is_idempotent(tmp_path: Path) -> None:
    path = str(tmp_path / "gw.sqlite3")
    migrate_store(path)
    migrate_store(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] > 0


def test_count_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_supervisor(lambda index: [], 0, store_path=str(tmp_path / "gw.sqlite3"))
