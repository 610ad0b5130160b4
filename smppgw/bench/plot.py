"""The optional PNG: throughput and latency over time of the last round, gateway beside baseline.

Drawn only when matplotlib is importable (it is not a dependency); otherwise the same series are written as CSV next
to the requested file, so nothing measured is lost.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from typing import Any

from .report import Timeline, TimelinePoint

CSV_FIELDS = ("path", "t", "acked_per_s", "receipts_per_s", "in_flight", "latency_est_ms", "gateway_cpu", "sim_cpu")


def write_csv(timeline: Timeline, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_FIELDS)
        for name, points in (("gateway", timeline.gateway), ("baseline", timeline.baseline)):
            for p in points:
                writer.writerow(
                    [
                        name,
                        p.t,
                        p.acked_per_s,
                        p.receipts_per_s,
                        p.in_flight,
                        p.latency_est_ms,
                        p.gateway_cpu,
                        p.sim_cpu,
                    ]
                )


def _matplotlib() -> Any | None:
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def write_plot(timeline: Timeline, path: Path, title: str) -> Path:
    """Write the PNG at ``path``, or, without matplotlib, ``path`` with a .csv suffix; returns what was written."""
    plt = _matplotlib()
    if plt is None:
        csv_path = path.with_suffix(".csv")
        write_csv(timeline, csv_path)
        return csv_path
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    series: tuple[tuple[str, list[TimelinePoint], str], ...] = (
        ("gateway", timeline.gateway, "tab:blue"),
        ("baseline", timeline.baseline, "tab:gray"),
    )
    for name, points, color in series:
        t = [p.t for p in points]
        top.plot(t, [p.acked_per_s for p in points], color=color, label=f"{name}: submit_sm_resp/s")
        top.plot(t, [p.receipts_per_s for p in points], color=color, linestyle="--", label=f"{name}: receipts/s")
        middle.plot(t, [p.latency_est_ms for p in points], color=color, label=f"{name}: in flight ÷ rate")
        bottom.plot(t, [p.sim_cpu for p in points], color=color, linestyle=":", label=f"{name}: simulator CPU")
    gateway_t = [p.t for p in timeline.gateway if p.gateway_cpu is not None]
    gateway_cpu = [p.gateway_cpu for p in timeline.gateway if p.gateway_cpu is not None]
    bottom.plot(gateway_t, gateway_cpu, color="tab:red", label="gateway CPU")
    top.set_ylabel("per second")
    middle.set_ylabel("latency estimate, ms")
    bottom.set_ylabel("cores")
    bottom.set_xlabel("seconds since the load generator started")
    for axis in (top, middle, bottom):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
