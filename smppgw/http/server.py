"""HTTP/1.1 server: an asyncio ``Protocol`` per connection, ``httptools`` (llhttp) for parsing, no gateway logic.

Hands every complete request (whole body, de-chunked) to one application ``Handler`` and writes each ``Response``
with a ``Content-Length``, in request order. What it does, and the tests that pin it (tests/http/test_server.py):

- keep-alive: HTTP/1.1 keeps the connection unless ``Connection: close``; HTTP/1.0 closes unless it asks for
  ``keep-alive``. An idle keep-alive connection is closed after ``keepalive_timeout`` (a new one that sends nothing
  after ``header_timeout``), silently.
- pipelining: several requests in one write are all dispatched at once (one task each) and answered in order even
  when their handlers finish out of order. At most ``max_pipelined`` handlers run per connection; beyond that
  requests already received wait, parsed, and the connection stops reading until the backlog drains.
- limits: ``Content-Length`` over ``max_body`` → 413 at once, without reading the body (and without ``100
  Continue``); a chunked body crossing ``max_body`` → 413; request line + headers over ``max_header_size`` → 431
  (414 for the target alone). A request whose headers are not complete ``header_timeout`` after its first byte, or
  whose body is not complete ``body_timeout`` after its headers, → 408. Malformed input (llhttp refuses it:
  ``HttpParserError``) → 400. Each of these answers with the JSON error shape and closes the connection, after the
  answers to the requests before it.
- ``Expect: 100-continue``: ``100 Continue`` is sent only once the headers were accepted, and only after every
  earlier response on the connection.
- a handler that raises (or returns something that is not a valid ``Response``) → 500 with a generic JSON error,
  logged with its traceback on the ``smppgw.http`` logger; nothing of the exception reaches the client and the
  connection serves the next request. ``HEAD`` responses keep ``Content-Length`` and drop the body.
- the peer's EOF (FIN) or a reset ends the connection at once: its running handlers are cancelled.
- ``Upgrade`` / ``CONNECT`` are not supported: such a request is answered (by the application, usually 404/405) and
  the connection closed; an upgrade request announcing a body → 400.
- backpressure: while the transport's write buffer is over its high-water mark (``pause_writing``) the connection
  stops reading; it resumes on ``resume_writing``.

Error boundary: ``httptools`` exceptions never leave this module; they become 400/413/414/431 responses. Handler
exceptions become 500. Nothing else is caught.

Ownership: each connection owns the tasks of its running handlers (at most ``max_pipelined``). Losing the
connection cancels them; the done callbacks then only retrieve the outcome. ``HttpServer`` owns the connections.

Closing a connection after a final response (``Connection: close``, or an error above) is a lingering close: the
response is flushed, the write side shut (FIN), further input discarded until the peer closes or ``LINGER_SECONDS``
pass. Closing at once with unread input would make the kernel send RST, which can destroy the response before the
client reads it (the classic lost-413 problem).

Shutdown order (``HttpServer.close(timeout)``): stop accepting; close idle connections; let every connection with
a request in progress finish it (its response carries ``Connection: close``, then the connection closes); after
``timeout`` abort what is left, which cancels their handler tasks, and wait (bounded) for those tasks to end.
"""

from __future__ import annotations

import asyncio
import socket
import time
import types
from collections import deque
from collections.abc import Coroutine, Generator
from contextvars import copy_context
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final, cast
from urllib.parse import unquote_to_bytes

import httptools

from smppgw.obs.logging import get_logger

from .types import Handler, Request, Response, error_response

__all__ = ["LINGER_SECONDS", "HttpServer", "HttpStats"]

_log = get_logger("smppgw.http")

LINGER_SECONDS: Final = 2.0
"""How long a closing connection waits for the peer's FIN after ours (a client reads a small response in far less;
nginx waits up to 5 s per read while lingering)."""

_IDLE, _HEADERS, _BODY, _LINGER = 0, 1, 2, 3  # the connection's read phase

_STATUS_LINES: Final = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus}
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE: Final = b"connection: close\r\n"
_KEEP_ALIVE_10: Final = b"connection: keep-alive\r\n"  # HTTP/1.0 clients need to be told
_METHODS: Final = {m: m.decode("ascii") for m in (b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"PATCH", b"OPTIONS")}
_INTERNAL_ERROR: Final = error_response(500, "internal_error", "internal server error")
_REFUSED_BODY: Final = error_response(503, "too_many_connections", "too many connections, retry later").body
_REFUSED: Final = b"%scontent-type: application/json\r\ncontent-length: %d\r\n%sretry-after: 1\r\n\r\n%s" % (
    _STATUS_LINES[503],
    len(_REFUSED_BODY),
    _CLOSE,
    _REFUSED_BODY,
)


class _AbortError(Exception):
    """Raised from a parser callback to stop parsing; the connection answers ``response`` and closes."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class _StopReadingError(Exception):
    """Raised from a parser callback when no further request may be read on this connection."""


class HttpStats:
    """Counters as plain ints, shared by all connections of one server. ``snapshot()`` for export."""

    __slots__ = (
        "by_class",
        "connections_active",
        "connections_refused",
        "connections_total",
        "handler_errors",
        "parse_errors",
        "requests",
        "timeouts",
    )

    def __init__(self) -> None:
        self.connections_total = 0
        self.connections_active = 0
        self.connections_refused = 0  # over max_connections, or arriving while closing
        self.requests = 0  # complete requests handed to the application
        self.parse_errors = 0  # malformed input answered 400
        self.timeouts = 0  # slow headers or body answered 408 (idle keep-alive closes are not counted)
        self.handler_errors = 0  # handler raised or returned an invalid response (answered 500)
        self.by_class = [0, 0, 0, 0, 0, 0]  # responses sent, indexed by status // 100

    @property
    def responses_2xx(self) -> int:
        return self.by_class[2]

    @property
    def responses_4xx(self) -> int:
        return self.by_class[4]

    @property
    def responses_5xx(self) -> int:
        return self.by_class[5]

    def snapshot(self) -> dict[str, int]:
        out = {name: getattr(self, name) for name in self.__slots__ if name != "by_class"}
        for cls in range(1, 6):
            out[f"responses_{cls}xx"] = self.by_class[cls]
        return out


class HttpServer:
    """Serve ``app`` over HTTP/1.1. ``start`` binds, ``close`` shuts down (see the module docstring).

    ``eager_handlers=True`` runs each handler's first step inside ``data_received`` (``coro.send(None)``) and only
    creates a task if it suspends: ~15-20 % less CPU per request when pipelined (bench/http_bench.py), but that
    first step runs outside any task, so ``asyncio.timeout()``, ``TaskGroup`` and ``current_task()`` fail there on
    Python 3.11. Off by default; only for handlers known not to use them before their first ``await``.
    """

    def __init__(
        self,
        app: Handler,
        *,
        max_body: int = 1 << 20,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keepalive_timeout: float = 75.0,
        max_pipelined: int = 64,
        max_connections: int = 10_000,
        max_header_size: int = 64 << 10,
        server_name: str = "smppgw",
        eager_handlers: bool = False,
    ) -> None:
        if max_pipelined < 1 or max_body < 0 or max_connections < 1:
            raise ValueError("max_pipelined and max_connections must be >= 1, max_body >= 0")
        self.app = app
        self.max_body = max_body
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_pipelined = max_pipelined
        self.max_connections = max_connections
        self.max_header_size = max_header_size
        self.eager_handlers = eager_handlers
        self.stats = HttpStats()
        self._server_field = b"server: %s\r\n" % server_name.encode("latin-1") if server_name else b""
        self._date_fields = b""  # "date: …\r\nserver: …\r\n", refreshed every second while serving
        self._connections: set[_HttpConnection] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._date_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._drained: asyncio.Future[None] | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> None:
        """Bind and start accepting (``port=0`` picks a free port, see ``port``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_protocol, host, port, reuse_address=True, reuse_port=reuse_port or None, backlog=backlog
        )
        inet = [sock for sock in self._server.sockets if sock.family in (socket.AF_INET, socket.AF_INET6)]
        self._port = int(inet[0].getsockname()[1])
        self._refresh_date()

    @property
    def port(self) -> int:
        """The bound TCP port (still known after ``close``)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    async def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests within ``timeout``, then abort the rest. Idempotent."""
        if self._server is None or self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        self._server.close()
        self._drained = loop.create_future()
        for conn in list(self._connections):
            conn.shutdown()
        if self._connections:
            await asyncio.wait([self._drained], timeout=timeout)
        leftover = list(self._connections)
        tasks = [task for conn in leftover for task in conn.tasks()]
        for conn in leftover:
            conn.abort()  # connection_lost follows on the next loop iterations and cancels their tasks
        if leftover:
            waits: list[asyncio.Future[Any]] = [self._drained, *tasks]
            await asyncio.wait(waits, timeout=1.0)
        await self._server.wait_closed()
        if self._date_timer is not None:
            self._date_timer.cancel()
            self._date_timer = None

    def _make_protocol(self) -> asyncio.Protocol:
        if self._closing or len(self._connections) >= self.max_connections:
            self.stats.connections_refused += 1
            return _Refuse()
        conn = _HttpConnection(self)
        self._connections.add(conn)
        self.stats.connections_total += 1
        self.stats.connections_active += 1
        return conn

    def _forget(self, conn: _HttpConnection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.stats.connections_active -= 1
        if not self._connections and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _refresh_date(self) -> None:
        self._date_fields = b"date: %s\r\n%s" % (formatdate(usegmt=True).encode("ascii"), self._server_field)
        loop = asyncio.get_running_loop()
        self._date_timer = loop.call_at(loop.time() + 1.0 - time.time() % 1.0, self._refresh_date)


class _Refuse(asyncio.Protocol):
    """Connections over ``max_connections``: a canned 503, then close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(_REFUSED)  # uvloop's transports are not asyncio.Transport instances
        transport.close()


class _Slot:
    """A dispatched request awaiting its turn to be written: ``data`` is the rendered response once known."""

    __slots__ = ("close", "data", "head", "http10", "keep_alive", "task")

    def __init__(self, keep_alive: bool, head: bool, http10: bool = False) -> None:
        self.keep_alive = keep_alive
        self.head = head
        self.http10 = http10
        self.data: bytes | None = None
        self.close = False
        self.task: asyncio.Task[Response] | None = None


class _HttpConnection(asyncio.Protocol):
    """One client connection: parser callbacks build requests; slots keep responses in request order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._stats = server.stats
        self._app = server.app
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client: tuple[str, int] | None = None
        # parse state of the request being read
        self._phase = _IDLE
        self._phase_start = 0.0
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_len = 0
        self._keep_alive = True
        self._continue_wanted = False
        # pipeline
        self._ready: list[tuple[Request, bool, bool]] = []  # parsed in the current feed, not yet dispatched
        self._pending: deque[_Slot] = deque()  # dispatched, in request order, not yet written
        self._parked: deque[tuple[Request, bool, bool]] = deque()  # parsed, waiting for a pipeline slot
        self._final: bytes | None = None  # an error response that ends the connection, after all pending ones
        self._out: list[bytes] | None = None  # batched writes while handling one data_received
        # connection state
        self._now = self._loop.time()
        self._served = 0
        self._read_done = False  # no further request will be parsed
        self._peer_eof = False
        self._closing = False
        self._closed = False
        self._shutting_down = False
        self._write_paused = False
        self._read_paused = False
        self._flush_scheduled = False
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = (str(peer[0]), int(peer[1]))
        self._refresh_deadline()

    def data_received(self, data: bytes) -> None:
        if self._read_done:
            return  # lingering, or input after the last request we will answer: discarded
        self._now = self._loop.time()
        out: list[bytes] = []
        self._out = out
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._read_done = True  # the upgrade request itself was parsed; it is answered with close
        except httptools.HttpParserError as exc:
            self._on_parse_error(exc)
        if self._ready:
            ready, self._ready = self._ready, []
            for request, keep_alive, head in ready:
                self._submit(request, keep_alive, head)
        if self._final is not None or self._continue_wanted:
            self._flush_pipeline()
        self._out = None
        if out and not self._closed:
            self._write_out(out)
        self._update_reading()
        self._refresh_deadline()

    def eof_received(self) -> bool:
        """The peer's FIN ends the connection (False: the transport closes): a client that gave up. Handlers
        still running are cancelled by ``connection_lost``, as on a reset. Half-closing HTTP clients are rare."""
        self._read_done = self._peer_eof = self._closing = True
        return False

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = self._closing = self._read_done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for slot in self._pending:
            if slot.task is not None:
                slot.task.cancel()
        self._pending.clear()
        self._parked.clear()
        self._server._forget(self)

    # ---------------------------------------------------------------- httptools callbacks (inside feed_data)

    def on_message_begin(self) -> None:
        if self._read_done:
            raise _StopReadingError
        self._phase = _HEADERS
        self._phase_start = self._now
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._server.max_header_size:
            raise _AbortError(error_response(414, "uri_too_long", "request target too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes + len(self._url) > self._server.max_header_size:
            raise _AbortError(error_response(431, "headers_too_large", "request header fields too large"))
        if self._phase != _HEADERS:
            return  # a chunked body's trailer fields: counted, ignored
        key = name.decode("latin-1").lower()
        old = self._headers.get(key)
        text = value.decode("latin-1")
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._phase_start = self._now
        parser = self._parser
        self._keep_alive = parser.should_keep_alive()
        headers = self._headers
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise _AbortError(error_response(400, "bad_request", "invalid content-length"))
            if int(length) > self._server.max_body:
                raise _AbortError(error_response(413, "payload_too_large", f"body over {self._server.max_body} bytes"))
        if parser.should_upgrade():
            self._keep_alive = False
            if length not in (None, "0") or "transfer-encoding" in headers:
                raise _AbortError(error_response(400, "bad_request", "upgrade with a request body is not supported"))
        expect = headers.get("expect")
        if expect is not None and expect.lower() == "100-continue":
            self._continue_wanted = True

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self._server.max_body:
            raise _AbortError(error_response(413, "payload_too_large", f"body over {self._server.max_body} bytes"))
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        method_raw = parser.get_method()
        method = _METHODS.get(method_raw) or method_raw.decode("ascii")
        url = self._url
        query = b""
        if url[:1] != b"/":
            url, query = _non_origin_target(url)
        else:
            mark = url.find(b"?")
            if mark >= 0:
                url, query = url[:mark], url[mark + 1 :]
        path = unquote_to_bytes(url).decode("utf-8", "replace") if b"%" in url else url.decode("latin-1")
        chunks = self._body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request = Request(
            method,
            path,
            query.decode("latin-1"),
            self._headers,
            body,
            client=self._client,
            http_version=parser.get_http_version(),
            raw_path=url,
        )
        keep_alive = self._keep_alive
        self._ready.append((request, keep_alive, method == "HEAD"))
        self._phase = _IDLE
        self._continue_wanted = False
        self._served += 1
        if not keep_alive or self._shutting_down:
            self._read_done = True

    # ---------------------------------------------------------------- dispatch and ordered writes

    def _submit(self, request: Request, keep_alive: bool, head: bool) -> None:
        if self._closing:
            return
        if self._parked or len(self._pending) >= self._server.max_pipelined:
            self._parked.append((request, keep_alive, head))
            return
        self._start(request, keep_alive, head)

    def _start(self, request: Request, keep_alive: bool, head: bool) -> None:
        self._stats.requests += 1
        http10 = request.http_version == "1.0"
        coro = cast(Coroutine[Any, Any, Response], self._app(request))
        if self._server.eager_handlers:
            ctx = copy_context()
            try:
                yielded = ctx.run(coro.send, None)
            except StopIteration as stop:
                self._respond_now(stop.value, _Slot(keep_alive, head, http10))
                return
            except Exception as exc:
                self._respond_now(self._handler_failed(exc), _Slot(keep_alive, head, http10))
                return
            task: asyncio.Task[Response] = self._loop.create_task(_resume(coro, yielded), context=ctx)
        else:
            task = self._loop.create_task(coro)
        slot = _Slot(keep_alive, head, http10)
        slot.task = task
        self._pending.append(slot)
        task.add_done_callback(lambda t: self._on_task_done(slot, t))

    def _respond_now(self, response: Any, slot: _Slot) -> None:
        self._render_into(slot, response)
        if self._pending:
            self._pending.append(slot)
        else:
            self._write(slot.data)  # type: ignore[arg-type]
            if slot.close:
                self._close(linger=True)

    def _on_task_done(self, slot: _Slot, task: asyncio.Task[Response]) -> None:
        if self._closed:
            if not task.cancelled():
                task.exception()  # retrieved: the client is gone, nobody else wants it
            return
        try:
            response: Any = task.result()
        except asyncio.CancelledError:
            response = self._handler_failed(None)
        except Exception as exc:
            response = self._handler_failed(exc)
        self._render_into(slot, response)
        pending = self._pending
        if not pending or pending[0].data is None:
            return  # an earlier response is still being computed: its completion writes this one too
        if len(pending) == 1:
            self._after_completions()
        elif not self._flush_scheduled:  # pipelined tasks finishing in the same loop iteration: one write
            self._flush_scheduled = True
            self._loop.call_soon(self._after_completions)

    def _after_completions(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        out: list[bytes] = []
        self._out = out
        self._flush_pipeline()
        self._out = None
        if out:
            self._write_out(out)
        self._update_reading()
        self._now = self._loop.time()
        self._refresh_deadline()

    def _handler_failed(self, exc: BaseException | None) -> Response:
        self._stats.handler_errors += 1
        if exc is None:
            _log.error("http handler cancelled")
        else:
            _log.error("http handler failed", exc_info=exc)
        return _INTERNAL_ERROR

    def _render_into(self, slot: _Slot, response: Any) -> None:
        keep_alive = slot.keep_alive and not self._shutting_down
        try:
            slot.data = self._render(response, keep_alive, slot.head, slot.http10)
        except (TypeError, ValueError, AttributeError) as exc:
            slot.data = self._render(self._handler_failed(exc), keep_alive, slot.head, slot.http10)
        slot.close = not keep_alive

    def _render(self, response: Response, keep_alive: bool, head: bool, http10: bool) -> bytes:
        status = response.status
        if not 200 <= status <= 599 or type(response.body) is not bytes:
            raise TypeError(f"invalid response {response!r}")
        line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        body = response.body
        fields = [line]
        if status in _NO_BODY_STATUSES:
            body = b""
        else:
            if response.content_type:
                fields.append(b"content-type: %s\r\n" % response.content_type.encode("latin-1"))
            fields.append(b"content-length: %d\r\n" % len(body))
        for name, value in response.headers:
            field = b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1"))
            if field.count(b"\r") != 1 or field.count(b"\n") != 1:
                raise ValueError(f"CR or LF in response header {name!r}")
            fields.append(field)
        if not keep_alive:
            fields.append(_CLOSE)
        elif http10:
            fields.append(_KEEP_ALIVE_10)
        fields.append(self._server._date_fields)
        fields.append(b"\r\n")
        if not head:
            fields.append(body)
        self._stats.by_class[status // 100] += 1
        return b"".join(fields)

    def _flush_pipeline(self) -> None:
        """Write every response whose turn has come; start parked requests as slots free up."""
        pending, parked = self._pending, self._parked
        while not self._closing:
            while pending and pending[0].data is not None:
                slot = pending.popleft()
                self._write(slot.data)  # type: ignore[arg-type]
                if slot.close:
                    self._close(linger=True)
                    return
            if not parked or len(pending) >= self._server.max_pipelined:
                break
            self._start(*parked.popleft())
        if pending or parked or self._closing:
            return
        if self._final is not None:
            self._write(self._final)
            self._close(linger=True)
        elif self._continue_wanted and self._phase == _BODY:
            self._continue_wanted = False
            self._write(_CONTINUE)
        elif (self._shutting_down or self._read_done) and self._phase == _IDLE:
            self._close(linger=False)

    def _write(self, data: bytes) -> None:
        if self._out is not None:
            self._out.append(data)
        elif self._transport is not None and not self._closed:
            self._transport.write(data)

    def _write_out(self, out: list[bytes]) -> None:
        assert self._transport is not None
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    # ---------------------------------------------------------------- errors, timeouts, closing

    def _on_parse_error(self, exc: httptools.HttpParserError) -> None:
        cause = exc.__context__
        if self._read_done or isinstance(cause, _StopReadingError):
            self._read_done = True
            return  # input after the last request we answer (llhttp also refuses data after "close")
        if isinstance(cause, _AbortError):
            response = cause.response
        elif cause is not None:  # a bug in a callback above, not the peer's fault
            _log.error("http parser callback failed", exc_info=cause)
            response = _INTERNAL_ERROR
        else:
            self._stats.parse_errors += 1
            response = error_response(400, "bad_request", f"malformed request: {exc}")
        self._finish_with(response)

    def _finish_with(self, response: Response) -> None:
        self._read_done = True
        self._phase = _IDLE
        self._continue_wanted = False
        slot = _Slot(keep_alive=False, head=False)
        self._render_into(slot, response)
        self._final = slot.data

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._closed or transport.is_closing():
            return
        pause = self._phase != _LINGER and (
            self._write_paused or len(self._pending) + len(self._parked) >= self._server.max_pipelined
        )
        if pause != self._read_paused:
            self._read_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _refresh_deadline(self) -> None:
        if self._closed:
            return
        phase = self._phase
        server = self._server
        if phase == _LINGER:
            return  # set once by _close
        if phase == _HEADERS:
            self._set_deadline(self._phase_start + server.header_timeout)
        elif phase == _BODY:
            self._set_deadline(self._phase_start + server.body_timeout)
        elif self._pending or self._parked:
            self._deadline = None  # handlers running: their time is the application's business
        elif self._served:
            self._set_deadline(self._now + server.keepalive_timeout)
        else:
            self._set_deadline(self._now + server.header_timeout)

    def _set_deadline(self, deadline: float) -> None:
        """One lazy timer per connection: moving the deadline later costs nothing; the timer re-arms on firing."""
        self._deadline = deadline
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if self._closed or deadline is None:
            return
        if self._loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        self._deadline = None
        if self._phase in (_HEADERS, _BODY):
            self._stats.timeouts += 1
            what = "headers" if self._phase == _HEADERS else "body"
            self._finish_with(error_response(408, "request_timeout", f"request {what} not received in time"))
            self._flush_pipeline()
            self._refresh_deadline()
        elif self._transport is not None:  # idle keep-alive, or a lingering close the peer never completed
            self._closing = self._read_done = True
            if self._transport.get_write_buffer_size():
                self._transport.abort()  # a peer that does not read its responses
            else:
                self._transport.close()

    def _close(self, linger: bool) -> None:
        """Close after the responses written so far; with ``linger``, shut our side and drain the peer's input."""
        transport = self._transport
        if self._closing or transport is None:
            return
        self._closing = self._read_done = True
        if self._out:
            self._write_out(self._out)
        if linger and not self._peer_eof and transport.can_write_eof():
            transport.write_eof()
            self._phase = _LINGER
            self._set_deadline(self._loop.time() + LINGER_SECONDS)
            if self._read_paused:
                self._read_paused = False
                transport.resume_reading()
        else:
            transport.close()

    # ---------------------------------------------------------------- used by HttpServer.close

    def shutdown(self) -> None:
        """Finish the request in progress (answered with ``Connection: close``), then close; idle: close now."""
        self._shutting_down = True
        if self._phase == _IDLE and not (self._pending or self._parked):
            self._close(linger=False)

    def tasks(self) -> list[asyncio.Task[Response]]:
        return [slot.task for slot in self._pending if slot.task is not None and not slot.task.done()]

    def abort(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.abort()


def _non_origin_target(url: bytes) -> tuple[bytes, bytes]:
    """Absolute-form (``http://host/p?q``) → path and query; ``*`` (``OPTIONS *``) stays as is."""
    if url == b"*":
        return url, b""
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise _AbortError(error_response(400, "bad_request", "invalid request target")) from None
    return parsed.path or b"/", parsed.query or b""


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Response], yielded: Any) -> Generator[Any, Any, Response]:
    """Continue, inside a task, a handler coroutine already stepped once by ``coro.send(None)``.

    Re-yields what the coroutine yielded (the future it waits on, so the task waits on it too), then relays each
    send/throw of the task to the coroutine: cancellation reaches the handler exactly as in a plain task.
    """
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
