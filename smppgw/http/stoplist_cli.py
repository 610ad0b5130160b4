"""``smppgw stoplist``: manage the stop list of a running gateway through its HTTP API.

The daemon holds the stop list in memory and in its store; the CLI changes it the same way the HTTP clients do (so
the change is durable and effective at once, and logged with its source), authenticated by an account's token.

    smppgw stoplist add 79161234567 --token T
    smppgw stoplist remove +7 916 123-45-67 --token T
    smppgw stoplist show 89161234567 --token T --global
    smppgw stoplist import numbers.csv --token T          # sent in chunks of --chunk lines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "remove", "show", "import"))
    parser.add_argument("target", nargs="+", help="a phone number (add/remove/show) or a CSV file (import)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway's HTTP API")
    parser.add_argument("--token", default=os.environ.get("SMPPGW_TOKEN", ""), help="bearer token ($SMPPGW_TOKEN)")
    parser.add_argument("--global", dest="global_scope", action="store_true", help="the global list (admin token)")
    parser.add_argument("--chunk", type=int, default=20_000, help="lines per import request")
    parser.add_argument("--timeout", type=float, default=30.0)


def main(args: argparse.Namespace) -> int:
    if not args.token:
        print("smppgw stoplist: a token is needed (--token or $SMPPGW_TOKEN)", file=sys.stderr)
        return 2
    query = "?scope=global" if args.global_scope else ""
    try:
        if args.action == "import":
            return _import(args, query)
        number = urllib.parse.quote("".join(args.target), safe="")
        method = {"add": "PUT", "remove": "DELETE", "show": "GET"}[args.action]
        status, body = _call(args, method, f"/v1/stoplist/{number}{query}")
    except OSError as exc:
        print(f"smppgw stoplist: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if status < 300 else 1


def _import(args: argparse.Namespace, query: str) -> int:
    totals = {"added": 0, "already": 0, "invalid": 0}
    failed = False
    for path in args.target:
        for offset, chunk in _chunks(Path(path), max(1, args.chunk)):
            path_query = query if offset == 0 else (query + "&" if query else "?") + "header=no"
            status, body = _call(args, "POST", f"/v1/stoplist{path_query}", chunk.encode("utf-8"), "text/csv")
            if status >= 300:
                print(f"{path}: lines from {offset + 1}: {body}", file=sys.stderr)
                failed = True
                break
            for key in totals:
                totals[key] += int(body[key])
            for error in body.get("errors", []):
                print(f"{path}:{offset + error['line']}: {error['reason']}", file=sys.stderr)
    print(json.dumps(totals))
    return 1 if failed else 0


def _chunks(path: Path, size: int) -> Iterator[tuple[int, str]]:
    """(line offset, text) pieces of ``size`` lines (the server numbers lines within each piece)."""
    with path.open(encoding="utf-8-sig") as f:
        lines: list[str] = []
        offset = 0
        for line in f:
            lines.append(line)
            if len(lines) == size:
                yield offset, "".join(lines)
                offset += size
                lines = []
        if lines:
            yield offset, "".join(lines)


def _call(
    args: argparse.Namespace, method: str, path: str, data: bytes | None = None, content_type: str = ""
) -> tuple[int, Any]:
    request = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {args.token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
