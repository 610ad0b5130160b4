"""Helpers of the HTTP API suite: a raw HTTP/1.1 client (async and sync), a GatewayApp config for tests, the app
running in the test's loop or in a background thread, and a scriptable callback receiver.

Every network wait is bounded (``IO_TIMEOUT``); nothing here sleeps unboundedly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from smppgw.app import GatewayApp
from smppgw.config import (
    AccountConfig,
    ConnectorConfig,
    GatewayConfig,
    HttpConfig,
    SmppServerConfig,
    StoreConfig,
    default_config,
)
from smppgw.core.backoff import Backoff
from smppgw.core.workers import SOLE_WORKER, WorkerSlot
from smppgw.service.callbacks import CallbackOutbox

HOST = "127.0.0.1"
IO_TIMEOUT = 5.0

ACME = "acme-token"
OTHER = "other-token"
SLOW = "slow-token"
HASHED = "hashed-token"  # configured as "sha256:<hex>"

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


# ------------------------------------------------------------------------------------------------ client


class Reply:
    """One HTTP response: status, lower-case headers, body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """The machine-readable error code of the project's error shape, ``None`` if the body is not one."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            code = data["error"].get("code")
            return code if isinstance(code, str) else None
        return None

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.body[:300]!r}>"


def _encode_body(body: object) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _head(method: str, path: str, body: bytes | None, token: str | None, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def request(
    port: int,
    method: str,
    path: str,
    body: object = None,
    *,
    token: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """One request on a fresh connection (``Connection: close``); the whole response is read."""
    data = _encode_body(body)
    async with asyncio.timeout(IO_TIMEOUT):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(_head(method, path, data, token, headers) + (data or b""))
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            fields = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            length = 0 if method == "HEAD" else int(fields.get("content-length", "0"))
            payload = await reader.readexactly(length)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return Reply(status, fields, payload)


def sync_request(
    port: int,
    method: str,
    path: str,
    body: object = None,
    *,
    token: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """The same with ``http.client`` (for sync tests against an app running in another thread)."""
    data = _encode_body(body)
    conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT)
    try:
        extra = {"Connection": "close"}
        if token is not None:
            extra["Authorization"] = f"Bearer {token}"
        if data is not None:
            extra["Content-Type"] = "application/json"
        extra.update(dict(headers))
        conn.request(method, path, body=data, headers=extra)
        response = conn.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        conn.close()


def message(to: str = "+79161234567", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"to": to, "from": "MFO", "text": text, **extra}


# ------------------------------------------------------------------------------------------------ config and app


def make_config(
    store: Path,
    *,
    accounts: Iterable[AccountConfig] | None = None,
    extra_connectors: Iterable[ConnectorConfig] = (),
) -> GatewayConfig:
    """The embedded default on port 0 with SQLite at ``store``, the accounts of this suite and a simulator."""
    base = default_config()
    if accounts is None:
        accounts = (
            AccountConfig(system_id="acme", password="acme", http_token=ACME, rate=50_000.0, max_parts=10),
            AccountConfig(system_id="other", password="other", http_token=OTHER),
            AccountConfig(system_id="slow", password="slow", http_token=SLOW, rate=0.5),
            AccountConfig(
                system_id="hashed", http_token="sha256:" + hashlib.sha256(HASHED.encode()).hexdigest().upper()
            ),
        )
    return msgspec.structs.replace(
        base,
        http=HttpConfig(listen=f"{HOST}:0"),
        smpp_server=SmppServerConfig(listen=f"{HOST}:0"),
        store=StoreConfig(path=str(store)),
        accounts=tuple(accounts),
        connectors=(*base.connectors, *extra_connectors),
    )


def fast_callbacks(app: GatewayApp, *, timeout: float = 0.3, per_host: int = 4) -> CallbackOutbox:
    """Swap the app's callback outbox (before ``run``) for one with a short client timeout and quick retries."""
    outbox = CallbackOutbox(app.store, timeout=timeout, backoff=FAST_BACKOFF, per_host=per_host)
    app.gateway.callbacks = outbox
    return outbox


@contextlib.asynccontextmanager
async def running_app(
    config: GatewayConfig, prepare: Callable[[GatewayApp], object] | None = None, *, worker: WorkerSlot = SOLE_WORKER
) -> AsyncIterator[GatewayApp]:
    """The whole daemon in the running loop; stopped in order on exit (and its task's outcome checked)."""
    app = GatewayApp(config, drain_timeout=2.0, worker=worker)
    if prepare is not None:
        prepare(app)
    task = asyncio.create_task(app.run())
    started = asyncio.create_task(app.started.wait())
    await asyncio.wait([task, started], timeout=IO_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if not app.started.is_set():
        started.cancel()
        task.cancel()
        await asyncio.gather(task, started, return_exceptions=True)
        raise AssertionError("the app did not start")
    try:
        yield app
    finally:
        app.request_stop()
        async with asyncio.timeout(15):
            await task  # re-raises whatever ended the app


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


async def eventually_async(
    probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], timeout: float = 5.0, what: str = "condition"
) -> Any:
    """Call ``probe`` until ``ok(result)``; the last result is returned (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if ok(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s; last: {result!r}")
        await asyncio.sleep(0.02)


def store_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the gateway's SQLite file with a separate read-only connection (WAL allows it while it runs)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


class AppThread:
    """A GatewayApp on uvloop in a background thread, for sync tests that share one running app per module."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.app: GatewayApp | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_errors: list[dict[str, Any]] = []
        self.failure: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="gateway-app", daemon=True)

    @property
    def port(self) -> int:
        assert self.app is not None
        return self.app.http_port

    @property
    def store_path(self) -> Path:
        return Path(self.config.store.path)

    def start(self) -> AppThread:
        self._thread.start()
        if not self._ready.wait(IO_TIMEOUT) or self.app is None or not self.app.started.is_set():
            raise AssertionError(f"the app did not start: {self.failure!r}")
        return self

    def _main(self) -> None:
        loop = uvloop.new_event_loop()
        self.loop = loop
        loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        try:
            loop.run_until_complete(self._run())
        except BaseException as exc:  # reported by stop()
            self.failure = exc
        finally:
            self._ready.set()
            loop.close()

    async def _run(self) -> None:
        self.app = GatewayApp(self.config, drain_timeout=2.0)
        task = asyncio.create_task(self.app.run())
        started = asyncio.create_task(self.app.started.wait())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        self._ready.set()
        started.cancel()
        await task

    def call(self, factory: Callable[[GatewayApp], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``factory(app)`` in the app's loop and return its result (bounded)."""
        assert self.loop is not None and self.app is not None
        return asyncio.run_coroutine_threadsafe(factory(self.app), self.loop).result(IO_TIMEOUT)

    def stop(self) -> None:
        if self.loop is not None and self.app is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.app.request_stop)
        self._thread.join(15)
        assert not self._thread.is_alive(), "the app thread did not stop"
        if self.failure is not None:
            raise AssertionError(f"the app ended with {self.failure!r}") from self.failure
        assert not self.loop_errors, f"the app's loop reported: {[c.get('message') for c in self.loop_errors]}"


# ------------------------------------------------------------------------------------------------ callback receiver


class Receiver:
    """A tiny HTTP server recording every POST. ``script`` says what to do with request n (then ``default``):
    ``"ok"`` → 200, ``"fail"`` → 500, ``"stall"`` → read the request, say nothing for ``stall`` seconds, close."""

    def __init__(self, script: Iterable[str] = (), *, default: str = "ok", stall: float = 1.0, host: str = HOST):
        self.script = list(script)
        self.default = default
        self.stall = stall
        self.host = host
        self.requests: list[tuple[str, bytes, str]] = []  # (request target, body, what we did)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/dlr") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def acknowledged(self) -> list[bytes]:
        return [body for _, body, action in self.requests if action == "ok"]

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
            n = len(self.requests)
            action = self.script[n] if n < len(self.script) else self.default
            self.requests.append((target, body, action))
            if action == "stall":
                await asyncio.sleep(self.stall)
            else:
                status = b"200 OK" if action == "ok" else b"500 Internal Server Error"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
