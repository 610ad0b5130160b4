"""``smppgw sim``: run the SMSC simulator until SIGINT/SIGTERM or ``--duration``.

Settings come from the defaults, then ``--profile FILE.toml``, then the flags given on the command line. Output: one
line a second on stdout (unless ``--quiet``), a JSON summary on exit, and with ``--stats-file`` a JSON snapshot
rewritten every second (atomically) for tests and the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import IO, Any

import msgspec

from .config import ConfigError, SimConfig, config_to_dict, load_profile, with_overrides
from .handset import HandsetMessage
from .simulator import Simulator
from .stats import StatsReporter

DEFAULT_LISTEN = "127.0.0.1:2775"

_FLAG_SETTINGS: dict[str, str] = {
    "system_id": "system_id",
    "id_format": "id_format",
    "seed": "seed",
    "window": "window",
    "tick_ms": "tick_ms",
    "known_messages": "known_messages",
    "response_delay_ms": "response.delay_ms",
    "receipt_delay_ms": "receipts.delay_ms",
    "stat_mix": "receipts.mix",
    "receipt_id_format": "receipts.id_format",
    "receipt_before_response": "receipts.before_response",
    "no_receipt_fraction": "receipts.no_final_fraction",
    "enroute": "receipts.enroute",
    "enroute_delay_ms": "receipts.enroute_delay_ms",
    "force_receipts": "receipts.force",
    "receipt_queue_limit": "receipts.queue_limit",
    "receipt_attempts": "receipts.max_attempts",
    "receipt_retry_ms": "receipts.retry_delay_ms",
    "receipt_timeout_s": "receipts.response_timeout_s",
    "throttle_tps": "faults.throttle_tps",
    "throttle_burst": "faults.throttle_burst",
    "msgqful_fraction": "faults.msgqful_fraction",
    "error_fraction": "faults.error_fraction",
    "error_status": "faults.error_status",
    "drop_fraction": "faults.drop_fraction",
    "disconnect_every_pdus": "faults.disconnect_every_pdus",
    "disconnect_every_seconds": "faults.disconnect_every_seconds",
}
"""argparse dest → dotted setting. Flags default to None, so only the ones given override the profile."""


def _int_auto(text: str) -> int:
    return int(text, 0)  # 0x58, 88


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Delays are in ms: N, fixed:N, uniform:MIN-MAX or exp:MEAN. "
        "Example: smppgw sim --listen 127.0.0.1:2775 --receipt-delay-ms uniform:100-2000 "
        "--stat-mix DELIVRD=0.9,UNDELIV=0.05,EXPIRED=0.03,REJECTD=0.02 --throttle-tps 500"
    )
    add = parser.add_argument
    add(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"address to listen on (default {DEFAULT_LISTEN})"
    )
    add("--profile", metavar="FILE.toml", help="settings file (see config/sim.example.toml); flags override it")
    add("--system-id", help="our system_id in bind responses")
    add("--account", action="append", metavar="SYSTEM_ID:PASSWORD", help="accept only these binds (repeatable)")
    add("--id-format", choices=("hex", "dec", "uuid"), help="message id form (default hex)")
    add("--seed", type=int, help="seed of the random generator (reproducible outcomes and faults)")
    add("--window", type=int, help="deliver_sm in flight per receiver bind (default 1000)")
    add("--tick-ms", type=float, help="scheduling resolution in ms (default 2)")
    add("--known-messages", type=int, help="messages remembered for query/cancel/replace (default 100000)")
    add("--response-delay-ms", metavar="DELAY", help="response latency (default 0: same loop iteration)")
    receipts = parser.add_argument_group("receipts")
    radd = receipts.add_argument
    radd("--receipt-delay-ms", metavar="DELAY", help="submit to final receipt (default 100)")
    radd("--stat-mix", metavar="STAT=W,...", help="final outcomes, e.g. DELIVRD=0.9,UNDELIV=0.1 (default DELIVRD=1)")
    radd("--receipt-format", choices=("text", "tlv", "both"), help="receipt text, TLVs or both (default both)")
    radd("--receipt-id-format", choices=("same", "hex", "dec"), help="id form inside receipts (default same)")
    radd("--receipt-before-response", action="store_true", default=None, help="send the receipt before the response")
    radd("--no-receipt-fraction", type=float, metavar="F", help="share of messages without a final receipt")
    radd("--enroute", choices=("off", "requested", "always"), help="intermediate ENROUTE receipts")
    radd("--enroute-delay-ms", metavar="DELAY", help="submit to the ENROUTE receipt (default 0)")
    radd("--force-receipts", action="store_true", default=None, help="receipts even if registered_delivery is 0")
    radd("--no-receipts", action="store_true", help="never send receipts (same as --no-receipt-fraction 1)")
    radd("--receipt-queue-limit", type=int, metavar="N", help="receipts queued per system_id without a receiver")
    radd("--receipt-attempts", type=int, metavar="N", help="deliver_sm attempts per receipt (default 5)")
    radd("--receipt-retry-ms", type=float, metavar="MS", help="delay before a failed receipt is retried")
    radd("--receipt-timeout-s", type=float, metavar="S", help="deliver_sm_resp timeout (default 10)")
    faults = parser.add_argument_group("faults")
    fadd = faults.add_argument
    fadd("--throttle-tps", type=float, metavar="TPS", help="answer ESME_RTHROTTLED above this rate per system_id")
    fadd("--throttle-burst", type=float, metavar="N", help="token bucket size (default TPS/10)")
    fadd("--msgqful-fraction", type=float, metavar="F", help="share of submits answered ESME_RMSGQFUL")
    fadd("--error-fraction", type=float, metavar="F", help="share of submits answered --error-status")
    fadd("--error-status", type=_int_auto, metavar="STATUS", help="status of --error-fraction (default 0x08)")
    fadd("--drop-fraction", type=float, metavar="F", help="share of submits never answered")
    fadd("--disconnect-every-pdus", type=int, metavar="N", help="close a connection after N requests")
    fadd("--disconnect-every-seconds", type=float, metavar="S", help="close a connection S seconds after bind")
    run = parser.add_argument_group("run and report")
    uadd = run.add_argument
    uadd("--duration", type=float, metavar="S", help="exit after S seconds")
    uadd("--quiet", action="store_true", help="no per-second line")
    uadd("--stats-file", metavar="PATH", help="JSON snapshot rewritten every second")
    uadd("--handset-log", metavar="PATH", help="reassemble and decode messages; append them as JSON lines to PATH")
    uadd("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop (default uvloop if any)")


def build_config(args: argparse.Namespace) -> SimConfig:
    """Defaults, then the profile, then the flags that were given. Raises ConfigError."""
    config = load_profile(args.profile) if args.profile else SimConfig()
    overrides: dict[str, Any] = {
        setting: getattr(args, dest) for dest, setting in _FLAG_SETTINGS.items() if getattr(args, dest) is not None
    }
    if args.receipt_format is not None:
        overrides["receipts.text"] = args.receipt_format in ("text", "both")
        overrides["receipts.tlvs"] = args.receipt_format in ("tlv", "both")
    if args.no_receipts:
        overrides["receipts.no_final_fraction"] = 1.0
    if args.account:
        overrides["accounts"] = [_account(item) for item in args.account]
    if args.handset_log:
        overrides["handset_record"] = True
    return with_overrides(config, overrides) if overrides else config


def _account(text: str) -> dict[str, str]:
    system_id, sep, password = text.partition(":")
    if not sep or not system_id:
        raise ConfigError(f"--account must be SYSTEM_ID:PASSWORD, not {text!r}")
    return {"system_id": system_id, "password": password}


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen must be HOST:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def main(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        host, port = parse_listen(args.listen)
    except ConfigError as exc:
        print(f"smppgw sim: {exc}", file=sys.stderr)
        return 2
    return _run_loop(args.loop, _serve(config, host, port, args))


def _run_loop(kind: str, main_coro: Coroutine[Any, Any, int]) -> int:
    if kind != "asyncio":
        try:
            import uvloop  # noqa: PLC0415  (optional dependency)
        except ImportError:
            if kind == "uvloop":
                main_coro.close()
                print("smppgw sim: uvloop is not installed", file=sys.stderr)
                return 2
        else:
            result: int = uvloop.run(main_coro)
            return result
    return asyncio.run(main_coro)


async def _serve(config: SimConfig, host: str, port: int, args: argparse.Namespace) -> int:
    handset_file: IO[str] | None = open(args.handset_log, "a", encoding="utf-8") if args.handset_log else None  # noqa: SIM115
    sim = Simulator(config, on_handset_message=_handset_writer(handset_file) if handset_file else None)
    try:
        try:
            await sim.start(host, port)
        except OSError as exc:
            print(f"smppgw sim: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"smppgw sim listening on {host}:{sim.port} (system_id {config.system_id})", flush=True)
        reporter = StatsReporter(sim.snapshot, stats_file=args.stats_file, quiet=args.quiet)
        stop = asyncio.Event()
        _install_signals(stop.set)
        await _report_until(stop, reporter, args.duration)
        await sim.close()
        summary = reporter.report(final=True)
        summary["config"] = config_to_dict(config)
        print(msgspec.json.encode(summary).decode(), flush=True)
        return 0
    finally:
        await sim.close()
        if handset_file is not None:
            handset_file.close()


async def _report_until(stop: asyncio.Event, reporter: StatsReporter, duration: float | None) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    next_report = loop.time() + 1.0
    while not stop.is_set():
        now = loop.time()
        if deadline is not None and now >= deadline:
            break
        wake = next_report if deadline is None else min(next_report, deadline)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, wake - now)):
                await stop.wait()
        if loop.time() >= next_report and not stop.is_set():
            reporter.report()
            next_report = max(next_report + 1.0, loop.time() + 0.5)


def _install_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)


def _handset_writer(file: IO[str]) -> Callable[[HandsetMessage], None]:
    def write(message: HandsetMessage) -> None:
        file.write(msgspec.json.encode(message).decode() + "\n")

    return write


__all__ = ["DEFAULT_LISTEN", "build_config", "configure", "main", "parse_listen"]
