"""``smppgw loadtest``: drive an SMPP server with an open-loop message mix and report throughput, latency, receipts.

Exit status: 0 when every submit was acknowledged (and, with ``--require-receipts``, every receipt arrived); 1 when
the run finished with failures (the report says which); 2 for a bad command line; 3 when the binds did not come up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

from smppgw.smpp.concat import ConcatMode

from .config import BindMode, ConfigError, LoadConfig, format_mix, parse_id_radix, parse_mix, parse_target
from .generator import LoadTestError, Progress, run_load
from .report import LoadReport, format_text, to_json

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_BIND = 3

T = TypeVar("T")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``loadtest`` arguments to ``parser``."""
    d = LoadConfig()
    target = parser.add_argument_group("target")
    target.add_argument("--target", required=True, metavar="HOST:PORT", help="the SMPP server to load")
    target.add_argument("--system-id", default=d.system_id, help="bind system_id (default %(default)s)")
    target.add_argument("--password", default=d.password, help="bind password")
    target.add_argument("--system-type", default=d.system_type, help="bind system_type")
    target.add_argument("--binds", type=int, default=d.binds, help="transmitting binds (default %(default)s)")
    target.add_argument(
        "--bind-mode",
        choices=[m.value for m in BindMode],
        default=d.bind_mode.value,
        help="trx: every bind also receives receipts; tx+rx: transmitters plus separate receivers (default trx)",
    )
    target.add_argument("--rx-binds", type=int, default=0, help="receivers with --bind-mode tx+rx (default: --binds)")
    target.add_argument(
        "--window", type=int, default=d.window, help="requests in flight per bind (default %(default)s)"
    )
    target.add_argument("--bind-timeout", type=float, default=d.bind_timeout, help="seconds (default %(default)s)")
    target.add_argument(
        "--response-timeout",
        type=float,
        default=d.response_timeout,
        help="submit_sm_resp timeout, s (default %(default)s)",
    )

    load = parser.add_argument_group("load (always bounded)")
    load.add_argument("--count", type=int, help="messages to send")
    load.add_argument("--duration", type=float, help="seconds of schedule (count = rate x duration)")
    load.add_argument(
        "--rate", type=float, default=d.rate, help="messages/s, open loop; 0 = closed loop (default %(default)s)"
    )
    load.add_argument("--max-seconds", type=float, help="hard limit of the submit phase (default: count/rate + 30)")
    load.add_argument(
        "--receipt-timeout",
        type=float,
        default=d.receipt_timeout,
        help="wait for receipts after the last response (default %(default)s s)",
    )
    load.add_argument("--require-receipts", action="store_true", help="exit 1 when any receipt is missing")

    message = parser.add_argument_group("messages")
    message.add_argument(
        "--mix", default=format_mix(d.mix), help="kind=weight,... of latin, cyrillic, long, emoji (default %(default)s)"
    )
    message.add_argument(
        "--concat",
        choices=[m.value for m in ConcatMode],
        default=d.concat.value,
        help="long messages (default %(default)s)",
    )
    message.add_argument(
        "--seed", type=int, default=d.seed, help="random seed: messages and destinations (default %(default)s)"
    )
    message.add_argument("--source-addr", default=d.source_addr, help="sender (default %(default)s)")
    message.add_argument(
        "--source-ton", type=int, default=d.source_ton, help="sender TON (default %(default)s: alphanumeric)"
    )
    message.add_argument("--source-npi", type=int, default=d.source_npi, help="sender NPI (default %(default)s)")
    message.add_argument(
        "--registered-delivery", type=int, default=d.registered_delivery, help="(default %(default)s: receipts)"
    )

    receipts = parser.add_argument_group("receipts")
    receipts.add_argument(
        "--id-radix",
        default="auto",
        help="how message ids are written: auto, or RESP[:RECEIPT] of text/decimal/hex, e.g. hex:decimal",
    )
    receipts.add_argument(
        "--max-parked", type=int, default=d.max_parked, help="receipts held before their response (default %(default)s)"
    )

    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    output.add_argument("--quiet", action="store_true", help="no live progress on stderr")


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    """The validated configuration for ``args``; raises ConfigError."""
    host, port = parse_target(args.target)
    resp_radix, receipt_radix = parse_id_radix(args.id_radix)
    return LoadConfig(
        host=host,
        port=port,
        system_id=args.system_id,
        password=args.password,
        system_type=args.system_type,
        binds=args.binds,
        bind_mode=BindMode(args.bind_mode),
        rx_binds=args.rx_binds,
        window=args.window,
        rate=args.rate,
        count=args.count,
        duration=args.duration,
        mix=parse_mix(args.mix),
        concat=ConcatMode(args.concat),
        seed=args.seed,
        source_addr=args.source_addr,
        source_ton=args.source_ton,
        source_npi=args.source_npi,
        registered_delivery=args.registered_delivery,
        max_seconds=args.max_seconds,
        receipt_timeout=args.receipt_timeout,
        require_receipts=args.require_receipts,
        max_parked=args.max_parked,
        resp_id_radix=resp_radix,
        receipt_id_radix=receipt_radix,
        bind_timeout=args.bind_timeout,
        response_timeout=args.response_timeout,
    ).validated()


def format_progress(p: Progress) -> str:
    return (
        f"[{p.elapsed:6.1f}s] {p.phase:<10} sent {p.messages_sent:>9,} msg  {p.submit_sm_per_s:>9,.0f} submit_sm/s  "
        f"in flight {p.in_flight:>5}  backlog {p.backlog:>7,}  acked {p.acknowledged:>9,}  errors {p.errors:>6,}  "
        f"receipts {p.receipts:>9,} (matched {p.matched:,}, parked {p.parked:,})"
    )


def _printer(stream: TextIO) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        print(format_progress(progress), file=stream, flush=True)

    return show


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return asyncio.run(factory())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(factory())


def main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"smppgw loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = None if args.quiet else _printer(sys.stderr)
    try:
        report: LoadReport = run_coroutine(lambda: run_load(config, progress=progress))
    except LoadTestError as exc:
        print(f"smppgw loadtest: {exc}", file=sys.stderr)
        return EXIT_NO_BIND
    if args.json:
        sys.stdout.write(to_json(report).decode() + "\n")
    else:
        print(format_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED
