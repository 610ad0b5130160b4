"""CPU time and memory of a process, read from Linux's /proc (no psutil).

``/proc/PID/stat`` gives user and system CPU time of the whole process (every thread, including SQLite's and the
metrics server's) in clock ticks; ``/proc/PID/status`` gives the resident set (VmRSS) and its peak (VmHWM).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Final

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_UTIME_INDEX: Final = 11  # field 14 of stat(5), counted from field 3 (the state, right after "(comm)")
_STIME_INDEX: Final = 12


class ProcError(OSError):
    """The process is gone, or /proc is not available."""


def parse_stat_cpu(line: str, clock_ticks: int = CLOCK_TICKS) -> tuple[float, float]:
    """(user, system) CPU seconds from one ``/proc/PID/stat`` line.

    The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted
    from the last ``)``.
    """
    end = line.rfind(")")
    if end < 0:
        raise ValueError(f"not a /proc/PID/stat line: {line[:80]!r}")
    fields = line[end + 1 :].split()
    if len(fields) <= _STIME_INDEX:
        raise ValueError(f"short /proc/PID/stat line: {line[:80]!r}")
    return int(fields[_UTIME_INDEX]) / clock_ticks, int(fields[_STIME_INDEX]) / clock_ticks


def parse_status_kb(text: str, key: str) -> int | None:
    """The value in kB of ``key`` (e.g. ``VmHWM``) in a ``/proc/PID/status`` text, or None when absent."""
    prefix = key + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            parts = line[len(prefix) :].split()
            return int(parts[0]) if parts else None
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError as exc:
        raise ProcError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    user, system = parse_stat_cpu(_read(f"/proc/{pid}/stat"))
    return user + system


def memory_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in kB."""
    text = _read(f"/proc/{pid}/status")
    return parse_status_kb(text, "VmRSS") or 0, parse_status_kb(text, "VmHWM") or 0


def available() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    cpu_s: dict[str, float]  # name → CPU seconds so far (absent: the process was gone)
    rss_kb: dict[str, int]


@dataclass
class Sampler:
    """Samples CPU time and RSS of named processes every ``interval`` seconds on a daemon thread."""

    pids: dict[str, int]
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        return self.samples

    def sample_now(self) -> Sample:
        cpu: dict[str, float] = {}
        rss: dict[str, int] = {}
        for name, pid in self.pids.items():
            try:
                cpu[name] = cpu_seconds(pid)
                rss[name] = memory_kb(pid)[0]
            except (ProcError, ValueError):
                continue
        return Sample(round(time.monotonic() - self._t0, 3), cpu, rss)

    def _loop(self) -> None:
        while True:
            self.samples.append(self.sample_now())
            if self._stop.wait(self.interval):
                return
