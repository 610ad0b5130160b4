"""A minimal HTTP/1.1 client for receipt callbacks: one POST, the status code back, bounded by a timeout.

Callbacks need nothing more (success is any 2xx; the body is ignored). One connection per callback
(``Connection: close``); https through the standard library's default TLS context."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

_TLS = ssl.create_default_context()


class CallbackError(Exception):
    """The URL is unusable, or the connection failed before a status line arrived."""


def split_url(url: str) -> tuple[str, int, bool, str, str]:
    """(host, port, tls, request target, Host header) of an http(s) URL; ``CallbackError`` if unusable."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise CallbackError(f"unparsable URL {url[:100]!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise CallbackError(f"not an http(s) URL: {url[:100]!r}")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise CallbackError(f"bad port in {url[:100]!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return hostname, port, tls, target, host_header


async def post_json(url: str, body: bytes, *, timeout: float = 10.0) -> int:
    """POST ``body`` as JSON and return the response status code."""
    host, port, tls, target, host_header = split_url(url)
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: smppgw\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=_TLS if tls else None)
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, ssl.SSLError, UnicodeError) as exc:
        raise CallbackError(f"{type(exc).__name__}: {exc}") from exc
    fields = status_line.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        raise CallbackError(f"no HTTP status line (got {status_line[:60]!r})")
    return int(fields[1])
