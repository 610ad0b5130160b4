"""Counters of the simulator (plain ints, bumped on the hot path) and their reporting.

``SimStats`` only counts; ``Simulator.snapshot()`` adds live gauges (binds, queued receipts, bytes of open
connections) and ``StatsReporter`` turns successive snapshots into the per-second stdout line and the stats file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import msgspec

from smppgw.smpp.constants import CommandStatus


class SimStats:
    """Totals since start. ``by_status`` counts responses sent to submit-like requests by command_status;
    ``receipts_by_stat`` counts final receipts first sent, by stat."""

    __slots__ = (
        "bind_rejected",
        "binds",
        "by_status",
        "bytes_in",
        "bytes_out",
        "cancel_sm",
        "data_sm",
        "disconnects",
        "enroute_sent",
        "forced_disconnects",
        "query_sm",
        "receipt_attempts",
        "receipt_errors",
        "receipts_abandoned",
        "receipts_acked",
        "receipts_by_stat",
        "receipts_dropped",
        "receipts_failed",
        "receipts_retried",
        "receipts_sent",
        "receipts_withheld",
        "replace_sm",
        "requests",
        "responses_dropped",
        "responses_lost",
        "segments",
        "submit_multi",
        "submit_sm",
        "throttled",
    )

    def __init__(self) -> None:
        self.binds: dict[str, int] = {"tx": 0, "rx": 0, "trx": 0}
        self.bind_rejected = 0
        self.disconnects = 0  # connections closed, for any reason
        self.forced_disconnects = 0  # closed by the disconnect faults
        self.requests = 0  # every request PDU the application saw (enquire_link/unbind are the session's)
        self.submit_sm = 0
        self.submit_multi = 0
        self.data_sm = 0
        self.query_sm = 0
        self.cancel_sm = 0
        self.replace_sm = 0
        self.segments = 0  # submit_sm that are parts of a concatenated message (UDH or SAR)
        self.by_status: dict[int, int] = {}
        self.throttled = 0
        self.responses_dropped = 0  # the drop fault: never answered
        self.responses_lost = 0  # a delayed response whose connection had gone
        self.receipts_sent = 0  # final receipts, first attempt
        self.enroute_sent = 0  # intermediate receipts, first attempt
        self.receipt_attempts = 0  # deliver_sm written, retries included
        self.receipts_acked = 0  # deliver_sm_resp OK (final and intermediate)
        self.receipt_errors = 0  # attempts answered with an error, timed out or lost to a disconnect
        self.receipts_retried = 0
        self.receipts_failed = 0  # gave up after max_attempts
        self.receipts_dropped = 0  # queue for an unbound system_id full
        self.receipts_withheld = 0  # no_final_fraction: never sent
        self.receipts_abandoned = 0  # still pending when the simulator closed
        self.receipts_by_stat: dict[str, int] = {}
        self.bytes_in = 0  # of closed connections; snapshot() adds the open ones
        self.bytes_out = 0

    def count_status(self, status: int) -> None:
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        data["by_status"] = {status_name(status): count for status, count in sorted(self.by_status.items())}
        data["binds"] = dict(self.binds)
        data["receipts_by_stat"] = dict(sorted(self.receipts_by_stat.items()))
        return data


def status_name(status: int) -> str:
    """``ESME_ROK`` for known statuses, ``0x0000045A`` for others (JSON keys must be strings)."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


_RATE_KEYS = ("submit_sm", "receipts_sent", "receipts_acked", "requests")


class StatsReporter:
    """Call ``report()`` once a second: prints one line (unless ``quiet``) and rewrites ``stats_file`` atomically
    (write a temporary file in the same directory, then ``os.replace``), so a reader never sees a partial file."""

    def __init__(
        self,
        snapshot: Callable[[], Mapping[str, Any]],
        *,
        stats_file: str | Path | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self._snapshot = snapshot
        self._path = Path(stats_file) if stats_file is not None else None
        self._quiet = quiet
        self._out = out
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._cpu_started = self._cpu_last = cpu_clock()
        self._started = clock()
        self._last_at = self._started
        self._last: dict[str, int] = {}

    def report(self, *, final: bool = False) -> dict[str, Any]:
        now = self._clock()
        data = dict(self._snapshot())
        elapsed = now - self._last_at
        rates = {
            key: (data.get(key, 0) - self._last.get(key, 0)) / elapsed if elapsed > 0 else 0.0 for key in _RATE_KEYS
        }
        self._last = {key: int(data.get(key, 0)) for key in _RATE_KEYS}
        self._last_at = now
        uptime = now - self._started
        data["uptime_s"] = round(uptime, 3)
        data["rates_per_s"] = {key: round(value, 1) for key, value in rates.items()}
        data["avg_submit_per_s"] = round(data.get("submit_sm", 0) / uptime, 1) if uptime > 0 else 0.0
        cpu = self._cpu_clock()
        data["cpu_s"] = round(cpu - self._cpu_started, 3)
        data["cpu_percent"] = round(100 * (cpu - self._cpu_last) / elapsed, 1) if elapsed > 0 else 0.0
        data["cpu_percent_avg"] = round(100 * data["cpu_s"] / uptime, 1) if uptime > 0 else 0.0
        self._cpu_last = cpu
        submits = data.get("submit_sm", 0)
        data["cpu_us_per_submit"] = round(1e6 * data["cpu_s"] / submits, 1) if submits else None
        data["final"] = final
        if not self._quiet and not final:
            print(self._line(data, rates), file=self._out or sys.stdout, flush=True)
        if self._path is not None:
            write_json_atomic(self._path, data)
        return data

    @staticmethod
    def _line(data: Mapping[str, Any], rates: Mapping[str, float]) -> str:
        return (
            f"sim {time.strftime('%H:%M:%S')} submit {rates['submit_sm']:.0f}/s rcpt {rates['receipts_sent']:.0f}/s "
            f"ack {rates['receipts_acked']:.0f}/s | total submit {data.get('submit_sm', 0)} "
            f"rcpt {data.get('receipts_sent', 0)} acked {data.get('receipts_acked', 0)} "
            f"queued {data.get('receipts_queued', 0)} pending {data.get('receipts_pending', 0)} "
            f"binds {data.get('bound', 0)} cpu {data.get('cpu_percent', 0):.0f}%"
        )


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(data), indent=1) + b"\n")
    os.replace(tmp, path)
