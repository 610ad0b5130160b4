"""HttpServer over real sockets on 127.0.0.1: raw ``asyncio.open_connection`` so each test controls the bytes.

Every async test runs on asyncio and uvloop (tests/conftest.py); timeouts are shortened to ~0.2 s to stay fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest

from smppgw.http import HttpServer, Request, Response, Router, error_response

IO_TIMEOUT = 5.0


# ------------------------------------------------------------------------------------------------ helpers


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, raw_head: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader, *, head: bool = False) -> Reply:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"duplicate {name}"
            headers[name.lower()] = value.strip()
    body = b""
    if not head and status >= 200 and status not in (204, 304):
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), IO_TIMEOUT)
    return Reply(status, headers, body, raw)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Whatever is left until the server closes (fails the test if it does not)."""
    return await asyncio.wait_for(reader.read(), IO_TIMEOUT)


@asynccontextmanager
async def serving(app: Callable[[Request], Awaitable[Response]], **kw: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(app, **kw)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close(1.0)


@asynccontextmanager
async def connect(server: HttpServer) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def get(path: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode()


async def echo(request: Request) -> Response:
    return Response(200, request.body, [("X-Path", request.path)], content_type="application/octet-stream")


def make_router() -> Router:
    router = Router()

    async def echo_route(request: Request, params: dict[str, str]) -> Response:
        return Response(200, request.body)

    async def item(request: Request, params: dict[str, str]) -> Response:
        return Response.json({"id": params["id"], "q": request.query})

    router.add("POST", "/v1/messages", echo_route)
    router.add("GET", "/v1/messages/{id}", item)
    return router


@pytest.fixture(params=[False, True], ids=["task", "eager"])
def eager(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


# ------------------------------------------------------------------------------------------------ keep-alive


async def test_keep_alive_by_default_serves_several_requests(eager: bool) -> None:
    async with serving(echo, eager_handlers=eager) as server, connect(server) as (reader, writer):
        for i in range(3):
            writer.write(post("/echo", b"n%d" % i))
            reply = await read_reply(reader)
            assert (reply.status, reply.body) == (200, b"n%d" % i)
            assert "connection" not in reply.headers
            assert reply.headers["content-length"] == "2"
            assert "date" in reply.headers
        assert server.stats.connections_total == 1
        assert server.stats.requests == 3


async def test_connection_close_is_honoured() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(get("/a", "Connection: close\r\n") + get("/ignored"))
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""  # the second request is never answered
        assert server.stats.requests == 1


async def test_http10_closes_by_default() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(b"GET /x HTTP/1.0\r\n\r\n")
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""


async def test_http10_keep_alive_when_asked() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        for _ in range(2):
            writer.write(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            reply = await read_reply(reader)
            assert reply.status == 200
            assert reply.headers["connection"] == "keep-alive"


async def test_idle_keep_alive_connection_is_closed_silently() -> None:
    async with serving(echo, keepalive_timeout=0.2) as server, connect(server) as (reader, writer):
        writer.write(get("/a"))
        assert (await read_reply(reader)).status == 200
        assert await read_eof(reader) == b""
        assert server.stats.timeouts == 0  # an idle close is not a timeout of a request


async def test_fresh_connection_that_sends_nothing_is_closed_after_header_timeout() -> None:
    async with serving(echo, header_timeout=0.2) as server, connect(server) as (reader, _):
        assert await read_eof(reader) == b""


# ------------------------------------------------------------------------------------------------ pipelining


async def test_pipelined_requests_answered_in_order_when_handlers_finish_out_of_order(eager: bool) -> None:
    finished: list[str] = []

    async def app(request: Request) -> Response:
        delay = float(request.query["d"])
        if delay:
            await asyncio.sleep(delay)
        finished.append(request.path)
        return Response(200, request.path.encode())

    async with serving(app, eager_handlers=eager) as server, connect(server) as (reader, writer):
        writer.write(get("/1?d=0.15") + get("/2?d=0.05") + get("/3?d=0") + post("/4?d=0.1", b"body"))
        bodies = [(await read_reply(reader)).body for _ in range(4)]
        assert bodies == [b"/1", b"/2", b"/3", b"/4"]
        assert finished[0] == "/3" and finished[-1] == "/1"  # they really did finish out of order
        writer.write(get("/5?d=0"))  # and the connection is still usable
        assert (await read_reply(reader)).body == b"/5"


async def test_pipelining_is_bounded_by_max_pipelined(eager: bool) -> None:
    release = asyncio.Event()
    running = 0
    peak = 0

    async def app(request: Request) -> Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return Response(200, request.path.encode())

    async with serving(app, max_pipelined=2, eager_handlers=eager) as server, connect(server) as (reader, writer):
        writer.write(b"".join(get(f"/{i}") for i in range(7)))
        await asyncio.sleep(0.1)
        assert running == 2  # the rest wait, parsed but not dispatched
        release.set()
        bodies = [(await read_reply(reader)).body for _ in range(7)]
        assert bodies == [f"/{i}".encode() for i in range(7)]
        assert peak == 2


async def test_pipelined_error_comes_after_the_earlier_responses() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        return Response(200, b"ok")

    async with serving(slow) as server, connect(server) as (reader, writer):
        writer.write(get("/a") + b"NOT HTTP AT ALL\r\n\r\n")
        assert (await read_reply(reader)).status == 200
        reply = await read_reply(reader)
        assert reply.status == 400
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""


# ------------------------------------------------------------------------------------------------ bodies and limits


async def test_chunked_request_body_split_across_writes() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        await asyncio.sleep(0.02)
        writer.write(b"lo\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
        reply = await read_reply(reader)
        assert (reply.status, reply.body) == (200, b"hello world")
        writer.write(get("/next"))
        assert (await read_reply(reader)).status == 200


async def test_content_length_over_max_body_is_413_without_reading_the_body() -> None:
    called = False

    async def app(request: Request) -> Response:
        nonlocal called
        called = True
        return Response(200)

    async with serving(app, max_body=1000) as server, connect(server) as (reader, writer):
        writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n")  # no body sent at all
        reply = await read_reply(reader)
        assert reply.status == 413
        assert reply.json()["error"]["code"] == "payload_too_large"
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""
    assert not called


async def test_413_survives_a_client_that_sends_the_body_anyway() -> None:
    """Lingering close: the body in flight is drained, so no RST destroys the 413 before the client reads it."""
    async with serving(echo, max_body=1000) as server, connect(server) as (reader, writer):
        writer.write(post("/x", b"x" * 3_000_000))
        reply = await read_reply(reader)
        assert reply.status == 413


async def test_chunked_body_over_max_body_is_413() -> None:
    async with serving(echo, max_body=10) as server, connect(server) as (reader, writer):
        chunks = b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        writer.write(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        reply = await read_reply(reader)
        assert reply.status == 413
        assert await read_eof(reader) == b""


async def test_body_at_exactly_max_body_is_accepted() -> None:
    async with serving(echo, max_body=10) as server, connect(server) as (reader, writer):
        writer.write(post("/x", b"0123456789"))
        assert (await read_reply(reader)).body == b"0123456789"


async def test_expect_100_continue_sent_when_body_is_acceptable() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"data")
        assert (await read_reply(reader)).body == b"data"


async def test_expect_100_continue_refused_with_413_and_no_100() -> None:
    async with serving(echo, max_body=3) as server, connect(server) as (reader, writer):
        writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        reply = await read_reply(reader)
        assert reply.status == 413
        assert await read_eof(reader) == b""


async def test_100_continue_waits_for_earlier_responses() -> None:
    release = asyncio.Event()

    async def app(request: Request) -> Response:
        if request.path == "/slow":
            await release.wait()
        return Response(200, request.path.encode() + request.body)

    async with serving(app) as server, connect(server) as (reader, writer):
        writer.write(get("/slow") + b"POST /b HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        await asyncio.sleep(0.05)
        release.set()
        assert (await read_reply(reader)).body == b"/slow"  # the first response comes before the 100
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        assert (await read_reply(reader)).body == b"/bok"


async def test_headers_too_large_is_431_and_target_too_long_is_414() -> None:
    async with serving(echo, max_header_size=1024) as server:
        async with connect(server) as (reader, writer):
            writer.write(get("/", "X-Big: " + "a" * 2000 + "\r\n"))
            assert (await read_reply(reader)).status == 431
            assert await read_eof(reader) == b""
        async with connect(server) as (reader, writer):
            writer.write(get("/" + "p" * 2000))
            assert (await read_reply(reader)).status == 414


# ------------------------------------------------------------------------------------------------ malformed input

MALFORMED = {
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "tls_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    "bad_header_line": b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    "space_in_header_name": b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    "bad_version": b"GET / HTTP/7.5x\r\n\r\n",
    "smuggling_cl_and_te": b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two_content_lengths": b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "non_numeric_content_length": b"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "bare_lf_in_request_line": b"GET /\nx HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_request_is_400_and_close(data: bytes) -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(data)
        reply = await read_reply(reader)
        assert reply.status == 400
        assert reply.json()["error"]["code"] == "bad_request"
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""
        assert server.stats.parse_errors == 1
        assert server.stats.requests == 0


# ------------------------------------------------------------------------------------------------ slow clients


async def test_slow_headers_get_408_and_close() -> None:
    async with serving(echo, header_timeout=0.2) as server, connect(server) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        reply = await read_reply(reader)
        assert reply.status == 408
        assert reply.json()["error"]["code"] == "request_timeout"
        assert await read_eof(reader) == b""
        assert server.stats.timeouts == 1


async def test_headers_dribbled_byte_by_byte_still_time_out() -> None:
    """The header deadline runs from the first byte: progress does not extend it (slowloris)."""
    async with serving(echo, header_timeout=0.3) as server, connect(server) as (reader, writer):
        for byte in b"GET / HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n":
            writer.write(bytes([byte]))
            await asyncio.sleep(0.01)
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                break
        reply = await read_reply(reader)
        assert reply.status == 408


async def test_slow_body_gets_408_and_close() -> None:
    async with serving(echo, body_timeout=0.2) as server, connect(server) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n123")
        reply = await read_reply(reader)
        assert reply.status == 408
        assert await read_eof(reader) == b""
        assert server.stats.timeouts == 1


async def test_slow_handler_is_not_a_client_timeout() -> None:
    async def app(request: Request) -> Response:
        await asyncio.sleep(0.3)
        return Response(200, b"late")

    timeouts = {"header_timeout": 0.1, "body_timeout": 0.1, "keepalive_timeout": 0.1}
    async with serving(app, **timeouts) as server, connect(server) as (reader, writer):
        writer.write(get("/"))
        assert (await read_reply(reader)).body == b"late"


# ------------------------------------------------------------------------------------------------ handler failures


async def test_handler_exception_is_500_without_details_and_connection_survives(eager: bool) -> None:
    async def app(request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("secret database password in traceback")
        if request.path == "/boom-later":
            await asyncio.sleep(0)
            raise KeyError("secret-key")
        return Response(200, b"fine")

    async with serving(app, eager_handlers=eager) as server, connect(server) as (reader, writer):
        for path in ("/boom", "/boom-later"):
            writer.write(get(path))
            reply = await read_reply(reader)
            assert reply.status == 500
            assert reply.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
            assert b"secret" not in reply.raw_head + reply.body
            assert "connection" not in reply.headers
        writer.write(get("/ok"))
        assert (await read_reply(reader)).body == b"fine"
        assert server.stats.handler_errors == 2
        assert server.stats.responses_5xx == 2


BAD_RESPONSES: dict[str, Any] = {
    "none": None,
    "str_body": Response(200, "text"),  # type: ignore[arg-type]
    "status_1xx": Response(101),
    "status_600": Response(600),
    "header_injection": Response(200, b"", [("Location", "/x\r\nSet-Cookie: evil=1")]),
    "non_latin1_header": Response(200, b"", [("X-Name", "Привет")]),
}


@pytest.mark.parametrize("bad", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
async def test_invalid_response_is_500(bad: Any) -> None:
    async def app(request: Request) -> Response:
        return bad  # type: ignore[no-any-return]

    async with serving(app) as server, connect(server) as (reader, writer):
        writer.write(get("/"))
        reply = await read_reply(reader)
        assert reply.status == 500
        assert b"evil" not in reply.raw_head
        writer.write(get("/"))
        assert (await read_reply(reader)).status == 500  # still serving


async def test_connection_loss_cancels_the_handler_task_no_orphans(eager: bool) -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def app(request: Request) -> Response:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return Response(200)

    async with serving(app, eager_handlers=eager) as server:
        async with connect(server) as (_, writer):
            writer.write(get("/a") + get("/b"))
            await asyncio.wait_for(started.wait(), IO_TIMEOUT)
        for _ in range(50):
            if len(outcome) == 2 and server.stats.connections_active == 0:
                break
            await asyncio.sleep(0.01)
        assert outcome == ["cancelled", "cancelled"]
        assert asyncio.all_tasks() == {asyncio.current_task()}


# ------------------------------------------------------------------------------------------------ responses


async def test_head_has_content_length_but_no_body() -> None:
    async with serving(make_router()) as server, connect(server) as (reader, writer):
        writer.write(b"HEAD /v1/messages/42 HTTP/1.1\r\n\r\n" + get("/v1/messages/43"))
        head = await read_reply(reader, head=True)
        assert head.status == 200
        assert int(head.headers["content-length"]) > 0
        after = await read_reply(reader)  # parses only if HEAD really carried no body
        assert after.json() == {"id": "43", "q": {}}


async def test_204_and_304_have_no_body_or_length() -> None:
    async def app(request: Request) -> Response:
        return Response(int(request.path[1:]), b"ignored")

    async with serving(app) as server, connect(server) as (reader, writer):
        writer.write(get("/204") + get("/304") + get("/200"))
        for status in (204, 304):
            reply = await read_reply(reader)
            assert reply.status == status
            assert "content-length" not in reply.headers
        assert (await read_reply(reader)).body == b"ignored"


async def test_request_fields_as_the_application_sees_them() -> None:
    seen: list[Request] = []

    async def app(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    async with serving(app) as server, connect(server) as (reader, writer):
        writer.write(
            b"PUT /v1/a%20b/%D0%B6?x=1&y=&x=2 HTTP/1.1\r\nHost: t\r\nX-Dup: a\r\nx-dup: b\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
        )
        await read_reply(reader)
        local = writer.get_extra_info("sockname")
    (request,) = seen
    assert request.method == "PUT"
    assert request.path == "/v1/a b/ж"
    assert request.raw_path == b"/v1/a%20b/%D0%B6"
    assert request.query_string == "x=1&y=&x=2"
    assert request.query == {"x": "2", "y": ""}
    assert request.headers["x-dup"] == "a, b"
    assert request.headers["content-type"] == "text/plain"
    assert request.body == b"abc"
    assert request.http_version == "1.1"
    assert request.client == (local[0], local[1])


async def test_router_404_405_and_params_over_the_wire() -> None:
    async with serving(make_router()) as server, connect(server) as (reader, writer):
        writer.write(b"DELETE /v1/messages/7 HTTP/1.1\r\n\r\n" + get("/nope") + get("/v1/messages/7?a=b"))
        not_allowed = await read_reply(reader)
        assert not_allowed.status == 405
        assert not_allowed.headers["allow"] == "GET, HEAD"
        assert not_allowed.json()["error"]["code"] == "method_not_allowed"
        not_found = await read_reply(reader)
        assert (not_found.status, not_found.json()["error"]["code"]) == (404, "not_found")
        assert (await read_reply(reader)).json() == {"id": "7", "q": {"a": "b"}}


async def test_upgrade_request_is_answered_then_closed() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n") + b"\x81\x05hello")
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.headers["connection"] == "close"
        assert await read_eof(reader) == b""


async def test_absolute_form_target() -> None:
    async with serving(echo) as server, connect(server) as (reader, writer):
        writer.write(b"GET http://example.org/p/q?z=1 HTTP/1.1\r\n\r\n")
        assert (await read_reply(reader)).headers["x-path"] == "/p/q"


# ------------------------------------------------------------------------------------------------ backpressure


async def test_reading_pauses_while_the_client_does_not_read_responses() -> None:
    big = b"x" * (2 << 20)
    calls = 0

    async def app(request: Request) -> Response:
        nonlocal calls
        calls += 1
        return Response(200, big)

    total = 40
    async with serving(app) as server, connect(server) as (reader, writer):
        for _ in range(total):  # one request per write, never reading: 80 MiB of responses requested
            writer.write(get("/"))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        assert calls < total // 2  # the server stopped reading once its write buffer filled
        bodies = [len((await read_reply(reader)).body) for _ in range(total)]  # draining resumes reading
        assert bodies == [len(big)] * total
        assert calls == total


# ------------------------------------------------------------------------------------------------ limits and shutdown


async def test_max_connections_refuses_with_503() -> None:
    async with serving(echo, max_connections=1) as server, connect(server) as (reader, writer):
        writer.write(get("/"))
        assert (await read_reply(reader)).status == 200
        async with connect(server) as (reader2, _):
            reply = await read_reply(reader2)
            assert reply.status == 503
            assert reply.json()["error"]["code"] == "too_many_connections"
            assert await read_eof(reader2) == b""
        assert server.stats.connections_refused == 1


async def test_close_finishes_in_flight_requests_and_closes_idle_connections() -> None:
    started = asyncio.Event()

    async def app(request: Request) -> Response:
        if request.path == "/slow":
            started.set()
            await asyncio.sleep(0.1)
        return Response(200, request.path.encode())

    server = HttpServer(app)
    await server.start("127.0.0.1", 0)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    idle_writer.write(get("/warm"))
    await read_reply(idle_reader)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(get("/slow"))
        await asyncio.wait_for(started.wait(), IO_TIMEOUT)
        closing = asyncio.create_task(server.close(timeout=5.0))
        assert await read_eof(idle_reader) == b""  # idle keep-alive: closed at once
        reply = await read_reply(reader)  # in-flight: answered, with close
        assert (reply.status, reply.body, reply.headers["connection"]) == (200, b"/slow", "close")
        assert await read_eof(reader) == b""
        writer.close()  # as a client does on EOF: ends the server's lingering close
        await asyncio.wait_for(closing, 1.0)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server.port)  # no longer accepting
    finally:
        for w in (writer, idle_writer):
            w.close()
            await w.wait_closed()


async def test_close_timeout_cancels_stuck_handlers() -> None:
    cancelled = asyncio.Event()

    async def app(request: Request) -> Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    server = HttpServer(app)
    await server.start("127.0.0.1", 0)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(get("/stuck"))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await server.close(timeout=0.1)
    assert loop.time() - t0 < 1.0
    assert cancelled.is_set()
    assert server.stats.connections_active == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    writer.close()
    with suppress(ConnectionError):
        await writer.wait_closed()


async def test_stats_count_responses_by_class() -> None:
    async with serving(make_router()) as server, connect(server) as (reader, writer):
        writer.write(get("/v1/messages/1") + get("/nope") + post("/v1/messages", b"{}"))
        for _ in range(3):
            await read_reply(reader)
        snap = server.stats.snapshot()
        assert (snap["requests"], snap["responses_2xx"], snap["responses_4xx"]) == (3, 2, 1)
        assert snap["connections_total"] == snap["connections_active"] == 1


# ------------------------------------------------------------------------------------------------ router (no sockets)


async def test_router_matching_rules() -> None:
    router = Router()
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(name: str) -> Any:
        async def h(request: Request, params: dict[str, str]) -> Response:
            calls.append((name, params))
            return Response(200)

        return h

    router.add("GET", "/v1/messages/batch", handler("exact"))
    router.add("GET", "/v1/messages/{id}", handler("param"))
    router.add("POST", "/v1/accounts/{acct}/messages/{id}", handler("two"))
    await router(Request("GET", "/v1/messages/batch"))
    await router(Request("GET", "/v1/messages/abc"))
    await router(Request("POST", "/v1/accounts/a1/messages/m2"))
    assert calls == [("exact", {}), ("param", {"id": "abc"}), ("two", {"acct": "a1", "id": "m2"})]
    assert (await router(Request("GET", "/v1/messages/"))).status == 404  # empty segment is no match
    assert (await router(Request("GET", "/v1/messages/a/b"))).status == 404
    assert (await router(Request("GET", "/v1/accounts/a1/messages/m2"))).status == 405
    with pytest.raises(ValueError, match="already registered"):
        router.add("GET", "/v1/messages/{id}", handler("dup"))
    with pytest.raises(ValueError, match="bad parameter"):
        router.add("GET", "/v1/{oops", handler("bad"))


def test_error_response_shape() -> None:
    response = error_response(422, "invalid_number", "bad number", [("X-A", "1")])
    assert response.status == 422
    assert json.loads(response.body) == {"error": {"code": "invalid_number", "message": "bad number"}}
    assert response.content_type == "application/json"
    assert list(response.headers) == [("X-A", "1")]
