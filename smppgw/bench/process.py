"""Child processes of the bench: spawned as ``python -m smppgw.cli ...`` (works from any venv), output to files in
the run directory, readiness by TCP connect, and always stopped: SIGTERM, then SIGKILL of the process group after a
bound. Each child runs in its own session (a Ctrl-C in the terminal reaches only the bench, which then stops the
children in order) and, on Linux, gets SIGTERM from the kernel if the bench itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from smppgw.osproc import death_signal_hook

from . import procfs

STOP_TIMEOUT: Final = 15.0
"""Seconds between SIGTERM and SIGKILL (the gateway drains in-flight requests for up to 10 s, then unbinds)."""


class BenchProcessError(RuntimeError):
    """A child did not start, did not become ready, exited early or failed."""


_PREEXEC = death_signal_hook()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel just gave out for port 0 (all held open until every one is picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def smppgw_command(*args: str) -> list[str]:
    """The command line running ``smppgw ARGS`` with this interpreter."""
    return [sys.executable, "-m", "smppgw.cli", *args]


class ManagedProcess:
    """One child with its stdout and stderr in ``directory/NAME.out`` and ``NAME.err``."""

    def __init__(self, name: str, argv: Sequence[str], directory: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = directory / f"{name}.out"
        self.stderr_path = directory / f"{name}.err"
        self._stdout: IO[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self.killed = False  # SIGKILL was needed

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> ManagedProcess:
        self._stdout = open(self.stdout_path, "wb")  # noqa: SIM115 (closed in stop)
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            env=env,
            start_new_session=True,
            preexec_fn=_PREEXEC,  # noqa: PLW1509 (only calls prctl; spawned before any thread starts)
        )
        return self

    def poll(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit status; on timeout the process is killed and BenchProcessError raised."""
        assert self.popen is not None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(term_timeout=2.0)
            raise BenchProcessError(f"{self.name} did not finish within {timeout:.0f} s (killed)") from None

    def stop(self, term_timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``term_timeout``, then SIGKILL the whole process group. Idempotent."""
        popen = self.popen
        if popen is None:
            return None
        try:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(timeout=term_timeout)
                except subprocess.TimeoutExpired:
                    self.killed = True
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait(timeout=5.0)
            else:
                # its own group may still hold a grandchild (none expected); pgid == pid after setsid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)
        finally:
            for stream in (self._stdout, self._stderr):
                if stream is not None:
                    stream.close()
        return popen.returncode

    def output(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace") if self.stdout_path.exists() else ""

    def errors(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""

    def tail(self, lines: int = 8) -> str:
        text = (self.errors() or self.output()).strip().splitlines()
        return "\n".join(text[-lines:])


def wait_for_port(
    host: str, port: int, timeout: float, process: ManagedProcess | None = None, interval: float = 0.05
) -> None:
    """Return once ``host:port`` accepts a TCP connection; BenchProcessError after ``timeout`` or when ``process``
    exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.alive():
            raise BenchProcessError(
                f"{process.name} exited with status {process.poll()} before listening:\n{process.tail()}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            name = process.name if process is not None else f"{host}:{port}"
            raise BenchProcessError(f"{name} was not accepting connections on {host}:{port} within {timeout:.0f} s")
        time.sleep(interval)


def wait_for_listeners(
    port: int, count: int, timeout: float, process: ManagedProcess | None = None, interval: float = 0.05
) -> None:
    """Return once at least ``count`` sockets listen on ``port`` (``smppgw run --workers N``: one per worker, with
    SO_REUSEPORT; a TCP connect succeeds as soon as the first is up); BenchProcessError after ``timeout`` or when
    ``process`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.alive():
            raise BenchProcessError(
                f"{process.name} exited with status {process.poll()} before listening:\n{process.tail()}"
            )
        found = procfs.listening_sockets(port)
        if found >= count:
            return
        if time.monotonic() >= deadline:
            name = process.name if process is not None else f"port {port}"
            raise BenchProcessError(
                f"{name}: {found} of {count} sockets listening on port {port} after {timeout:.0f} s"
            )
        time.sleep(interval)
