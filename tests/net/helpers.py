"""Shared pieces of the network suite: configs, recording handlers, a fake transport, running server/link."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from smppgw.core.backoff import Backoff
from smppgw.net.client import ClientLink, LinkConfig
from smppgw.net.connection import SmppConnection
from smppgw.net.server import SmppServer
from smppgw.smpp.codec import decode
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp, _Bind
from smppgw.smpp.session import Role, SessionConfig

HOST = "127.0.0.1"
SEED = 20240611

ESME = SessionConfig(
    role=Role.ESME, window_size=10, response_timeout=2.0, enquire_link_interval=None, session_init_timeout=5.0
)
SMSC = SessionConfig(
    role=Role.SMSC, window_size=10, response_timeout=2.0, enquire_link_interval=None, session_init_timeout=5.0
)
FAST_BACKOFF = Backoff(initial=0.02, maximum=0.1, factor=2.0, jitter=0.2)


def submit(tag: int | str) -> SubmitSm:
    """A submit_sm whose short_message identifies it (the server counts what it saw by it)."""
    return SubmitSm(source_addr="smppgw", destination_addr="79990000000", short_message=f"m{tag}".encode())


def pdus(data: bytes) -> list[Pdu]:
    return [decode(frame) for frame in Framer().feed(data)]


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------------------------------------------- handlers


class EsmeHandler:
    """Client side: records callbacks, answers deliver_sm at once."""

    def __init__(self) -> None:
        self.bound: list[SmppConnection] = []
        self.closed: list[tuple[SmppConnection, str]] = []
        self.requests: list[Pdu] = []
        self.calls: list[str] = []

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        self.calls.append("bind_request")

    def on_bound(self, conn: SmppConnection) -> None:
        self.calls.append("bound")
        self.bound.append(conn)

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        self.calls.append("request")
        self.requests.append(pdu)
        if isinstance(pdu, DeliverSm):
            conn.send_response(DeliverSmResp(sequence=pdu.sequence))

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.calls.append("closed")
        self.closed.append((conn, reason))


class SmscHandler:
    """Server side: checks credentials, counts every submit_sm it saw (by short_message), answers it now
    (``delay`` None), after ``delay`` seconds, or never (``answering`` False); tracks requests outstanding per
    connection to check the client's window."""

    def __init__(
        self, *, credentials: dict[str, str] | None = None, delay: float | None = None, answering: bool = True
    ) -> None:
        self.credentials = credentials
        self.delay = delay
        self.answering = answering
        self.bind_requests: list[_Bind] = []
        self.bound: list[SmppConnection] = []
        self.closed: list[tuple[SmppConnection, str]] = []
        self.seen: collections.Counter[bytes] = collections.Counter()
        self.outstanding: collections.Counter[SmppConnection] = collections.Counter()
        self.max_outstanding = 0
        self._ids = 0
        self._handles: list[asyncio.TimerHandle] = []

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        self.bind_requests.append(pdu)
        if self.credentials is not None and self.credentials.get(pdu.system_id) != pdu.password:
            conn.reject_bind(CommandStatus.ESME_RINVPASWD)
        else:
            conn.accept_bind("smsc")

    def on_bound(self, conn: SmppConnection) -> None:
        self.bound.append(conn)

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm):
            self.seen[pdu.short_message] += 1
        if not self.answering:
            return
        self.outstanding[conn] += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding[conn])
        if self.delay is None:
            self._answer(conn, pdu)
        else:
            handle = asyncio.get_running_loop().call_later(self.delay, self._answer, conn, pdu)
            self._handles.append(handle)

    def _answer(self, conn: SmppConnection, pdu: Pdu) -> None:
        self.outstanding[conn] -= 1
        self._ids += 1
        conn.send_response(SubmitSmResp(sequence=pdu.sequence, message_id=f"{self._ids:x}"))

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.closed.append((conn, reason))
        self.outstanding.pop(conn, None)

    def cancel_pending(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


# ---------------------------------------------------------------------------------------------------- running


@contextlib.asynccontextmanager
async def running_server(
    handler: Any, config: SessionConfig = SMSC, *, port: int = 0, max_connections: int = 1000
) -> AsyncIterator[SmppServer]:
    server = SmppServer(handler, config, max_connections=max_connections)
    await server.start(HOST, port)
    try:
        yield server
    finally:
        await server.close(unbind_timeout=0.5)
        if isinstance(handler, SmscHandler):
            handler.cancel_pending()


def link_config(port: int, *, binds: int = 1, password: str = "secret", **kwargs: Any) -> LinkConfig:
    options: dict[str, Any] = {"connect_timeout": 1.0, "bind_timeout": 1.0, "backoff": FAST_BACKOFF, **kwargs}
    return LinkConfig(host=HOST, port=port, system_id="esme", password=password, binds=binds, **options)


@contextlib.asynccontextmanager
async def running_link(
    config: LinkConfig, session: SessionConfig = ESME, handler: Any = None, *, stop_timeout: float = 3.0
) -> AsyncIterator[ClientLink]:
    """A ClientLink whose ``run`` task is owned here: stopped (bounded) and awaited on exit; its errors propagate."""
    link = ClientLink(config, session, handler or EsmeHandler(), rng=random.Random(SEED))
    task = asyncio.get_running_loop().create_task(link.run(), name="link.run")
    try:
        yield link
    finally:
        await link.stop(unbind_timeout=0.5)
        try:
            async with asyncio.timeout(stop_timeout):
                await task
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise AssertionError("ClientLink.run did not return after stop()") from None


# ---------------------------------------------------------------------------------------------------- fake transport


class FakeTransport(asyncio.Transport):
    """Records writes; ``close``/``abort`` call ``connection_lost`` on the next loop iteration, like asyncio."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.writes: list[bytes] = []
        self.reading = True
        self.closing = False
        self.aborted = False
        self.limits: tuple[int | None, int | None] | None = None
        self._read = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def take(self) -> bytes:
        """Everything written since the last ``take``."""
        data = b"".join(self.writes[self._read :])
        self._read = len(self.writes)
        return data
