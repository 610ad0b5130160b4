"""Command line: ``smppgw <command>``. Each command lives in the package that owns it (a module with
``configure(parser)`` and ``main(args) -> int``); this module only dispatches, importing a command lazily."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "run": ("smppgw.commands", "configure_run", "run", "run the gateway daemon"),
    "check-config": ("smppgw.commands", "configure_check_config", "check_config", "validate a configuration file"),
    "route": ("smppgw.commands", "configure_route", "route", "show how a number would be routed"),
    "stoplist": ("smppgw.http.stoplist_cli", "configure", "main", "add, remove, show or import stop-list numbers"),
    "sim": ("smppgw.sim.cli", "configure", "main", "run the built-in SMSC simulator"),
    "loadtest": ("smppgw.loadtest.cli", "configure", "main", "load-test an SMPP server and correlate receipts"),
    "bench": ("smppgw.bench.cli", "configure", "main", "benchmark the gateway end to end beside a direct baseline"),
}
"""command name → (module, its configure(parser) function, its main(args) -> int function, one-line help)."""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smppgw", description="High-throughput SMPP 3.4 gateway")
    parser.add_argument("--version", action="version", version=f"smppgw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, configure, _, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name in argv:  # import only the command being run (keeps `smppgw --help` fast)
            getattr(importlib.import_module(module_name), configure)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module_name, _, entry, _ = COMMANDS[args.command]
    result: int = getattr(importlib.import_module(module_name), entry)(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
