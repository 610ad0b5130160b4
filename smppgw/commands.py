"""The daemon's own commands: ``run``, ``check-config``, ``route``."""

from __future__ import annotations

import argparse
import sys

import msgspec

from smppgw.app import build_router, run_forever
from smppgw.config import ConfigError, GatewayConfig, load_config, parse_listen
from smppgw.core.routing import explain_route
from smppgw.obs.logging import configure_logging


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


def run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    try:
        config = _with_listeners(config, args.smpp_listen, args.http_listen)
    except ValueError as exc:
        print(f"smppgw run: {exc}", file=sys.stderr)
        return 2
    fmt = config.log.format
    configure_logging(config.log.level, json=None if fmt == "auto" else fmt == "json")
    run_forever(config, loop=args.loop)
    return 0


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
