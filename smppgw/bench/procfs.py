"""CPU time and memory of a process, or of a process and its descendants, read from Linux's /proc (no psutil).

``/proc/PID/stat`` gives user and system CPU time of the whole process (every thread, including SQLite's and the
metrics server's) in clock ticks, and that of its children it has already waited for; ``/proc/PID/status`` gives the
resident set (VmRSS) and its peak (VmHWM). The ``tree_*`` functions cover a process and every live descendant (a
``smppgw run --workers N`` supervisor and its workers), found afresh at each call since workers may be restarted.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Final

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_UTIME_INDEX: Final = 11  # field 14 of stat(5), counted from field 3 (the state, right after "(comm)")
_STIME_INDEX: Final = 12
_CUTIME_INDEX: Final = 13  # fields 16 and 17: CPU of the children the process has waited for
_CSTIME_INDEX: Final = 14


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


@dataclass(frozen=True)
class StatInfo:
    state: str  # R, S, D, Z, ...
    ppid: int
    cpu_s: float  # user + system of the process itself (every thread)
    reaped_children_cpu_s: float  # user + system of the children it has waited for (cutime + cstime)


def parse_stat(line: str, clock_ticks: int = CLOCK_TICKS) -> StatInfo:
    """State, parent pid and CPU times from one ``/proc/PID/stat`` line (fields counted from the last ``)``)."""
    end = line.rfind(")")
    fields = line[end + 1 :].split() if end >= 0 else []
    if len(fields) <= _CSTIME_INDEX:
        raise ValueError(f"not a full /proc/PID/stat line: {line[:80]!r}")
    return StatInfo(
        state=fields[0],
        ppid=int(fields[1]),
        cpu_s=(int(fields[_UTIME_INDEX]) + int(fields[_STIME_INDEX])) / clock_ticks,
        reaped_children_cpu_s=(int(fields[_CUTIME_INDEX]) + int(fields[_CSTIME_INDEX])) / clock_ticks,
    )


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


def _children_files() -> bool:
    """Whether the kernel has ``/proc/PID/task/TID/children`` (CONFIG_PROC_CHILDREN; some VMs lack it)."""
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


_HAS_CHILDREN_FILES: Final = _children_files()


def _parents() -> dict[int, list[int]]:
    """Parent pid → its children's pids, from one scan of every ``/proc/PID/stat``."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                info = parse_stat(_read(f"/proc/{name}/stat"))
            except (ProcError, ValueError):
                continue  # gone meanwhile
            parents.setdefault(info.ppid, []).append(int(name))
    return parents


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (exited ones not yet waited for included)."""
    if not _HAS_CHILDREN_FILES:
        return sorted(_parents().get(pid, []))
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:  # children belong to the thread that forked them
        try:
            found += [int(c) for c in _read(f"/proc/{pid}/task/{tid}/children").split()]
        except ProcError:
            continue
    return sorted(set(found))


def tree(pid: int) -> list[int]:
    """``pid`` followed by its descendants (breadth first), as they are now."""
    parents = None if _HAS_CHILDREN_FILES else _parents()  # one scan of /proc for the whole tree
    found = [pid]
    for parent in found:  # grows while iterated
        found += children(parent) if parents is None else sorted(parents.get(parent, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its descendants, ProcError when ``pid`` itself is gone.

    Each process counts with its own CPU and that of the children it has already waited for (cutime + cstime): a
    worker that died and was reaped by its supervisor stays counted, so the sum only grows. Exact in the normal
    case; a child reaped between the reads of its stat and of its parent's can be counted twice or not at all in
    that one reading."""
    total = 0.0
    for index, member in enumerate(tree(pid)):
        try:
            info = parse_stat(_read(f"/proc/{member}/stat"))
        except (ProcError, ValueError):
            if index == 0:
                raise ProcError(errno.ESRCH, f"no process {pid}") from None  # ESRCH
            continue  # a descendant that went away meanwhile (its CPU moves to its parent's cutime)
        total += info.cpu_s + info.reaped_children_cpu_s
    return total


def tree_memory_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in kB summed over ``pid`` and its live descendants; ProcError when ``pid`` is gone.

    The peak is the sum of each process's own VmHWM: an upper bound of the tree's real peak, since the processes
    need not have peaked at the same moment. Pages shared between processes (after fork, none here: the workers
    are started with exec) are counted in each."""
    rss_total = peak_total = 0
    for index, member in enumerate(tree(pid)):
        try:
            rss, peak = memory_kb(member)
        except ProcError:
            if index == 0:
                raise
            continue
        rss_total += rss
        peak_total += peak
    return rss_total, peak_total


def listening_sockets(port: int) -> int:
    """How many TCP sockets are listening on ``port`` (any address, IPv4 and IPv6) in this network namespace: with
    SO_REUSEPORT every worker has its own."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = _read(table).splitlines()[1:]
        except ProcError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                count += 1
    return count


def available() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    cpu_s: dict[str, float]  # name → CPU seconds so far (absent: the process was gone)
    rss_kb: dict[str, int]


@dataclass
class Sampler:
    """Samples CPU time and RSS of named processes (each with its descendants) every ``interval`` seconds on a
    daemon thread."""

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
                cpu[name] = tree_cpu_seconds(pid)
                rss[name] = tree_memory_kb(pid)[0]
            except (ProcError, ValueError):
                continue
        return Sample(round(time.monotonic() - self._t0, 3), cpu, rss)

    def _loop(self) -> None:
        while True:
            self.samples.append(self.sample_now())
            if self._stop.wait(self.interval):
                return
