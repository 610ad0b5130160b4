"""`smppgw run --workers N`: argument validation, the supervisor's worker command lines, and what a worker runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import pytest

from smppgw import commands
from smppgw.cli import build_parser
from smppgw.core.workers import WorkerSlot


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser(["run", *argv]).parse_args(["run", *argv])


def test_workers_must_be_a_positive_integer(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parse().workers == 1 and _parse().worker_index is None
    assert _parse("--workers", "4").workers == 4
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exc:
            _parse("--workers", bad)
        assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_worker_index_is_hidden_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--help")
    help_text = capsys.readouterr().out
    assert "SO_REUSEPORT" in help_text and "--worker-index" not in help_text
    assert commands._worker_slot(3, None) == WorkerSlot(index=0, count=3)
    assert commands._worker_slot(3, 2) == WorkerSlot(index=2, count=3)
    for workers, index in ((2, 2), (2, -1), (1, 1)):
        with pytest.raises(ValueError, match="--worker-index"):
            commands._worker_slot(workers, index)
    assert commands.run(_parse("--workers", "2", "--worker-index", "2")) == 2
    assert "--worker-index must be in 0..1" in capsys.readouterr().err


def _capture(monkeypatch: pytest.MonkeyPatch, name: str, result: Any = None) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls.update(args=args, kwargs=kwargs)
        return result

    monkeypatch.setattr(commands, name, fake)
    monkeypatch.setattr(commands, "configure_logging", lambda *args, **kwargs: None)
    return calls


def test_supervisor_mode_spawns_workers_with_the_same_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _capture(monkeypatch, "run_supervisor", result=7)
    args = _parse("--workers", "3", "--loop", "asyncio", "--smpp-listen", "0.0.0.0:2775")
    assert commands.run(args) == 7
    child_argv: Callable[[int], list[str]] = calls["args"][0]
    assert calls["args"][1] == 3 and calls["kwargs"] == {"store_path": "smppgw.sqlite3"}
    assert child_argv(2) == [
        *(sys.executable, "-m", "smppgw.cli", "run", "--loop", "asyncio", "--smpp-listen", "0.0.0.0:2775"),
        *("--workers", "3", "--worker-index", "2"),
    ]
    assert _parse(*child_argv(2)[4:]).worker_index == 2  # the worker's command line parses


def test_a_worker_runs_one_gateway_on_a_shared_port(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _capture(monkeypatch, "run_forever")
    assert commands.run(_parse("--workers", "2", "--worker-index", "1")) == 0
    (config,) = calls["args"]
    assert config.smpp_server.reuse_port is True
    assert calls["kwargs"] == {"loop": "auto", "worker": WorkerSlot(index=1, count=2)}
    assert commands.run(_parse()) == 0  # a single gateway: the port is not shared
    assert calls["args"][0].smpp_server.reuse_port is False
    assert calls["kwargs"]["worker"] == WorkerSlot()
