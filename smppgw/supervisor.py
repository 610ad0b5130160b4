"""Multi-process mode: one parent that runs N gateway worker processes and nothing else.

The parent migrates the SQLite schema once (so workers never race on it), spawns the workers, restarts one that
dies (at most ``max_restarts`` per ``restart_window``, else it stops them all), and on SIGINT/SIGTERM forwards
SIGTERM to every worker and waits for them, bounded. A plain blocking loop: no asyncio, no threads."""

from __future__ import annotations

import collections
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType

from smppgw.osproc import death_signal_hook
from smppgw.store.schema import migrate

POLL_INTERVAL = 0.2
"""Seconds between checks of the workers: a crash is noticed within this (restarts wait ``restart_delay`` anyway)."""

_DEATH_SIGNAL = death_signal_hook()  # a worker gets SIGTERM if the supervisor dies (even by SIGKILL)

STOP_TIMEOUT = 15.0
"""Seconds a worker gets between SIGTERM and SIGKILL: room for its drain, unbind and store flush."""


def migrate_store(store_path: str) -> None:
    """Bring the SQLite schema at ``store_path`` up to date (and switch the file to WAL) before any worker opens it."""
    db = sqlite3.connect(store_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        migrate(db)
    finally:
        db.close()


def run_supervisor(
    child_argv: Callable[[int], list[str]],
    count: int,
    *,
    store_path: str,
    restart_delay: float = 1.0,
    max_restarts: int = 5,
    restart_window: float = 60.0,
) -> int:
    """Run ``count`` workers (``child_argv(i)`` is worker i's command line) until a signal stops them.

    Returns 0 when every worker's last process exited 0 after the stop, 1 otherwise or after giving up on restarts.
    Signal handlers for SIGINT/SIGTERM are installed for the duration (main thread only) and then restored."""
    if count < 1:
        raise ValueError("count must be at least 1")
    migrate_store(store_path)
    supervisor = _Supervisor(child_argv, restart_delay, max_restarts, restart_window)
    with _forwarding_signals(supervisor.request_stop):
        try:
            for index in range(count):
                supervisor.spawn(index)
            gave_up = supervisor.supervise()
        finally:
            codes = supervisor.stop_all()  # also on an unexpected error: never leave workers behind
    return 1 if gave_up or any(code != 0 for code in codes) else 0


class _Supervisor:
    """The workers by index, their pending restarts and the recent restart times."""

    def __init__(self, argv: Callable[[int], list[str]], delay: float, max_restarts: int, window: float) -> None:
        self.argv, self.delay, self.max_restarts, self.window = argv, delay, max_restarts, window
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.restart_at: dict[int, float] = {}  # index → monotonic time its replacement is due
        self.restarts: collections.deque[float] = collections.deque()
        self.signalled: set[int] = set()  # pids already sent SIGTERM
        self.stopping = False

    def spawn(self, index: int) -> None:
        """Start worker ``index`` (again)."""
        self.restart_at.pop(index, None)
        self.children[index] = subprocess.Popen(self.argv(index), preexec_fn=_DEATH_SIGNAL)  # noqa: PLW1509 (only prctl)

    def request_stop(self) -> None:
        """Signal handler body: stop restarting and ask every live worker to shut down."""
        self.stopping = True
        self.terminate()

    def terminate(self) -> None:
        """SIGTERM each live worker once."""
        for child in self.children.values():
            if child.returncode is None and child.pid not in self.signalled:
                self.signalled.add(child.pid)
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)

    def supervise(self) -> bool:
        """Poll until stopped; True when it gave up because workers died too often."""
        while not self.stopping:
            now = time.monotonic()
            for index, child in list(self.children.items()):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                if index in self.restart_at:
                    if self.restart_at[index] <= now:
                        self.spawn(index)
                elif not self.note_exit(index, code, now):
                    return True
            time.sleep(POLL_INTERVAL)
        return False

    def note_exit(self, index: int, code: int, now: float) -> bool:
        """Schedule worker ``index``'s restart; False when that would exceed ``max_restarts`` per window."""
        self.restarts.append(now)
        while self.restarts and self.restarts[0] <= now - self.window:
            self.restarts.popleft()
        if len(self.restarts) > self.max_restarts:
            _say(
                f"worker {index} exited ({_describe(code)}); {len(self.restarts)} exits in {self.window:g} s: giving up"
            )
            return False
        _say(f"worker {index} exited ({_describe(code)}); restarting in {self.delay:g} s")
        self.restart_at[index] = now + self.delay
        return True

    def stop_all(self) -> list[int]:
        """SIGTERM every live worker, SIGKILL what is left after ``STOP_TIMEOUT``; the exit code of each index's last
        process (a worker waiting for its restart counts with the code it died with)."""
        self.stopping = True
        self.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for index, child in self.children.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"worker {index} did not stop within {STOP_TIMEOUT:g} s: killing it")
                child.kill()
                child.wait()
        return [self._stop_code(child) for child in self.children.values()]

    def _stop_code(self, child: subprocess.Popen[bytes]) -> int:
        """A worker killed by our SIGTERM before it had installed its handlers (still starting) stopped cleanly."""
        if child.returncode == -signal.SIGTERM and child.pid in self.signalled:
            return 0
        return child.returncode


@contextlib.contextmanager
def _forwarding_signals(handler: Callable[[], None]) -> Iterator[None]:
    """Call ``handler`` on SIGINT and SIGTERM while inside; the previous handlers are restored afterwards."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _say(line: str) -> None:
    print(f"smppgw supervisor: {line}", file=sys.stderr, flush=True)
