"""``smppgw bench``: one command that starts the simulator, the gateway and the load generator as processes, runs a
bounded load through the gateway and, in the same run, straight at the simulator, and reports both.

Exit status: 0 when every pass had every receipt and every process behaved; 1 when receipts were missing or a
process failed (the report says which); 2 for a bad command line; 130 when interrupted (children are stopped first).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from .process import BenchProcessError
from .report import BenchReport, SweepReport, format_sweep, format_text, to_json
from .runner import BenchError, BenchOptions, run_bench, run_sweep

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def configure(parser: argparse.ArgumentParser) -> None:
    d = BenchOptions()
    add = parser.add_argument
    load = parser.add_argument_group("load (the same for the gateway and the baseline)")
    load.add_argument("--segments", type=int, default=d.segments, help="segments per pass (default %(default)s)")
    load.add_argument("--duration", type=float, help="seconds per pass instead of --segments (needs --rate)")
    load.add_argument("--binds", type=int, default=d.binds, help="binds of the load generator and of the gateway's "
                      "connector (default %(default)s)")  # fmt: skip
    load.add_argument("--window", type=int, default=d.window, help="requests in flight per bind (default %(default)s)")
    add(
        "--workers",
        type=int,
        default=d.workers,
        help="gateway processes: smppgw run --workers N (a supervisor and N workers sharing the ports); the "
        "gateway's CPU and RSS cover all of them, --binds is the connector's total (default %(default)s)",
    )
    load.add_argument(
        "--mix", default=d.mix, help="kind=weight,... of latin, cyrillic, long, emoji (default %(default)s)"
    )
    load.add_argument("--rate", type=float, default=d.rate, help="offered segments/s; 0 = closed loop (default)")
    load.add_argument("--repeat", type=int, default=d.repeat, help="rounds; medians are reported (default %(default)s)")
    load.add_argument(
        "--warmup", type=int, default=d.warmup, help="segments per path before the first round (default %(default)s)"
    )
    load.add_argument("--receipt-delay-ms", help="the simulator's submit → receipt delay (default: its own, 100)")
    load.add_argument("--max-seconds", type=float, help="hard limit of each pass's submit phase")
    load.add_argument(
        "--sweep",
        action="append",
        metavar="rates=R,...|mixes=M,...",
        help="one point per offered rate (segments/s) and/or mix (latin, cyrillic, long, ...); repeatable",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    out.add_argument("--plot", metavar="FILE.png", help="throughput and latency over time (CSV without matplotlib)")
    out.add_argument("--keep-dir", action="store_true", help="keep the run directory (configs, logs, reports)")
    out.add_argument("--quiet", action="store_true", help="no line per pass on stderr")
    add("--ready-timeout", type=float, default=d.ready_timeout, help="seconds for each process to come up")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _log(line: str) -> None:
    print(f"smppgw bench: {line}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    options = BenchOptions(
        segments=args.segments,
        duration=args.duration,
        binds=args.binds,
        window=args.window,
        workers=args.workers,
        mix=args.mix,
        rate=args.rate,
        repeat=args.repeat,
        warmup=args.warmup,
        receipt_delay_ms=args.receipt_delay_ms,
        ready_timeout=args.ready_timeout,
        max_seconds=args.max_seconds,
        keep_dir=args.keep_dir,
        log=None if args.quiet else _log,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop the children on SIGTERM as on Ctrl-C
    try:
        report: BenchReport | SweepReport = run_sweep(options, args.sweep) if args.sweep else run_bench(options)
    except BenchError as exc:
        print(f"smppgw bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BenchProcessError as exc:
        print(f"smppgw bench: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("smppgw bench: interrupted (every process was stopped)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        sys.stdout.write(to_json(report).decode() + "\n")
    elif isinstance(report, SweepReport):
        print(format_sweep(report))
    else:
        print(format_text(report))
    if args.plot and isinstance(report, BenchReport) and report.timeline is not None:
        from .plot import write_plot  # noqa: PLC0415 (only with --plot)

        written = write_plot(report.timeline, Path(args.plot), f"smppgw bench, {report.settings.mix}")
        if written != Path(args.plot):
            print(f"smppgw bench: matplotlib is not installed; wrote the series to {written}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED
