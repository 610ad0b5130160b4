"""The daemon's own commands: ``run`` (one gateway, or ``--workers N`` of them under a supervisor),
``check-config``, ``route``."""

from __future__ import annotations

import argparse
import sys

import msgspec

from smppgw.app import build_router, run_forever
from smppgw.config import ConfigError, GatewayConfig, load_config, parse_listen
from smppgw.core.routing import explain_route
from smppgw.core.workers import WorkerSlot
from smppgw.obs.logging import configure_logging
from smppgw.supervisor import run_supervisor


def _load(path: str | None) -> GatewayConfig | None:
    """The validated config, or None after printing every problem."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="TOML configuration (default: embedded defaults)")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--smpp-listen", metavar="HOST:PORT", help="override [smpp_server] listen (containers)")
    parser.add_argument("--http-listen", metavar="HOST:PORT", help="override [http] listen (containers)")
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="gateway processes sharing the ports and the store (SO_REUSEPORT)",
    )
    # Set by the supervisor on each worker's command line: which of the N this process is.
    parser.add_argument("--worker-index", type=int, default=None, metavar="I", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """One gateway in this process, or (``--workers N`` without ``--worker-index``) the supervisor of N of them."""
    config = _load(args.config)
    if config is None:
        return 2
    try:
        config = _with_listeners(config, args.smpp_listen, args.http_listen)
        worker = _worker_slot(args.workers, args.worker_index)
    except ValueError as exc:
        print(f"smppgw run: {exc}", file=sys.stderr)
        return 2
    if worker.count > 1 and args.worker_index is None:
        return run_supervisor(lambda index: _worker_argv(args, index), worker.count, store_path=config.store.path)
    if worker.count > 1:  # the HTTP server follows the same flag
        config = msgspec.structs.replace(
            config, smpp_server=msgspec.structs.replace(config.smpp_server, reuse_port=True)
        )
    fmt = config.log.format
    configure_logging(config.log.level, json=None if fmt == "auto" else fmt == "json")
    run_forever(config, loop=args.loop, worker=worker)
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _worker_slot(workers: int, worker_index: int | None) -> WorkerSlot:
    """This process's slot among ``--workers``; ValueError for an index outside ``0..workers-1``."""
    index = 0 if worker_index is None else worker_index
    if workers < 1 or not 0 <= index < workers:
        raise ValueError(f"--worker-index must be in 0..{workers - 1}, not {index}")
    return WorkerSlot(index=index, count=workers)


def _worker_argv(args: argparse.Namespace, index: int) -> list[str]:
    """Worker ``index``'s command line: this ``run`` with the same options, plus its index."""
    argv = [sys.executable, "-m", "smppgw.cli", "run", "--loop", args.loop]
    for option, value in (
        ("--config", args.config),
        ("--smpp-listen", args.smpp_listen),
        ("--http-listen", args.http_listen),
    ):
        if value is not None:
            argv += [option, value]
    return [*argv, "--workers", str(args.workers), "--worker-index", str(index)]


def _with_listeners(config: GatewayConfig, smpp: str | None, http: str | None) -> GatewayConfig:
    """The config with the listen addresses given on the command line (validated like the file's)."""
    for address in (smpp, http):
        if address is not None:
            parse_listen(address)
    if smpp is not None:
        config = msgspec.structs.replace(config, smpp_server=msgspec.structs.replace(config.smpp_server, listen=smpp))
    if http is not None:
        config = msgspec.structs.replace(config, http=msgspec.structs.replace(config.http, listen=http))
    return config


def configure_check_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="TOML configuration to validate")


def check_config(args: argparse.Namespace) -> int:
    config = _load(args.path)
    if config is None:
        return 1
    print(f"{args.path}: OK ({len(config.accounts)} accounts, {len(config.connectors)} connectors)")
    return 0


def configure_route(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", help="phone number in any common form")
    parser.add_argument("--config", metavar="PATH", help="configuration whose routing to use")
    parser.add_argument("--class", dest="traffic_class", default="transactional")
    parser.add_argument("--account", default=None)


def route(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    print(explain_route(build_router(config), args.number, args.traffic_class, args.account))
    return 0
