"""Adversity: ClientLink → FaultProxy → SmppServer, with load running while the proxy cuts, stalls, half-closes or
corrupts the connection.

Invariants after every fault: nothing crashes or hangs (everything bounded), the loop reported no exception, the link
binds again and carries traffic, requests in flight at the fault end as unknown fate, and the server saw every request
at most once (a request reported as answered exactly once; one that failed before it was sent, never).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from smppgw.net.client import ClientLink
from smppgw.net.connection import SmppConnection
from smppgw.net.errors import NetError, RequestFateUnknownError
from smppgw.smpp.pdu import Pdu, SubmitSm, SubmitSmResp
from smppgw.smpp.session import Role, SessionConfig

from .helpers import HOST, SmscHandler, link_config, running_link, running_server, submit
from .proxy import FaultProxy

INTERVAL, TIMEOUT = 0.1, 0.3  # keepalive interval and response timeout: a dead link is found within 0.4 s
ESME_ADV = SessionConfig(
    role=Role.ESME, window_size=10, response_timeout=TIMEOUT, enquire_link_interval=INTERVAL, session_init_timeout=2.0
)
SMSC_ADV = SessionConfig(
    role=Role.SMSC, window_size=10, response_timeout=TIMEOUT, enquire_link_interval=INTERVAL, session_init_timeout=2.0
)
SENDERS = 8
_ID = re.compile(rb"m\d{8}")


class CountingSmsc(SmscHandler):
    """Counts only well-formed message ids: a PDU garbled by the proxy cannot pass for another request."""

    def __init__(self) -> None:
        super().__init__(delay=0.02)  # answers late enough that requests are in flight when the fault hits
        self.garbled = 0

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm) and not _ID.fullmatch(pdu.short_message):
            self.garbled += 1
            conn.send_response(SubmitSmResp(sequence=pdu.sequence))
            return
        super().on_request(conn, pdu)


class Load:
    """``SENDERS`` tasks sending numbered submit_sm through the link until stopped; every outcome is recorded."""

    def __init__(self, link: ClientLink) -> None:
        self.link = link
        self.outcomes: dict[bytes, str] = {}
        self.errors: list[BaseException] = []
        self._next = 0
        self._stop = asyncio.Event()

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    async def _sender(self) -> None:
        while not self._stop.is_set():
            self._next += 1
            message = submit(f"{self._next:08d}")
            try:
                response = await self.link.request(message, timeout=TIMEOUT, slot_timeout=0.2)
            except RequestFateUnknownError:
                self.outcomes[message.short_message] = "unknown"
            except (NetError, TimeoutError) as exc:  # no slot / no bind: never sent
                self.outcomes[message.short_message] = "not sent"
                self.errors.append(exc)
                await asyncio.sleep(0.01)
            else:
                assert isinstance(response, SubmitSmResp)
                self.outcomes[message.short_message] = "ok"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        async with asyncio.TaskGroup() as group:
            for index in range(SENDERS):
                group.create_task(self._sender(), name=f"sender-{index}")
            try:
                yield self
            finally:
                self._stop.set()


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.005)


def check_at_most_once(load: Load, smsc: CountingSmsc) -> None:
    assert smsc.seen, "the server saw traffic"
    assert max(smsc.seen.values()) == 1, "a request reached the server twice"
    by_outcome: dict[str, list[bytes]] = collections.defaultdict(list)
    for message, outcome in load.outcomes.items():
        by_outcome[outcome].append(message)
    assert all(smsc.seen[m] == 1 for m in by_outcome["ok"]), "answered but not seen by the server"
    assert all(smsc.seen[m] == 0 for m in by_outcome["not sent"]), "reported as not sent but the server saw it"
    unknown_seen = sum(smsc.seen[m] for m in by_outcome["unknown"])
    assert unknown_seen <= len(by_outcome["unknown"])


FAULTS: dict[str, Callable[[FaultProxy], None]] = {
    "rst": lambda p: p.cut("rst"),
    "fin": lambda p: p.cut("fin"),
    "stall-both": lambda p: p.stall("both"),
    "stall-up": lambda p: p.stall("up"),
    "stall-down": lambda p: p.stall("down"),
    "half-close-to-client": lambda p: p.half_close("client"),
    "half-close-to-server": lambda p: p.half_close("server"),
    "drop-bytes-up": lambda p: p.drop_bytes("up", 3, after=6),
    "drop-bytes-down": lambda p: p.drop_bytes("down", 3, after=6),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_under_load(fault: str) -> None:
    smsc = CountingSmsc()
    async with (
        asyncio.timeout(10),
        running_server(smsc, SMSC_ADV) as server,
        FaultProxy(HOST, server.port) as proxy,
        running_link(link_config(proxy.port), ESME_ADV) as link,
    ):
        await link.wait_bound(1, timeout=2.0)
        (before,) = link.bound
        load = Load(link)
        async with load.running():
            await wait_for(lambda: load.count("ok") >= 50, 3.0, "traffic before the fault")
            assert before.in_flight > 0
            FAULTS[fault](proxy)
            await wait_for(lambda: before.is_closed, INTERVAL + 2 * TIMEOUT + 0.3, "the faulty connection closed")
            await link.wait_bound(1, timeout=2.0)
            after = link.bound[0]
            assert after is not before
            ok_before = load.count("ok")
            await wait_for(lambda: load.count("ok") >= ok_before + 50, 3.0, "traffic after reconnecting")
        assert load.count("unknown") >= 1, "requests in flight at the fault have unknown fate"
        assert link.stats.disconnects >= 1
        check_at_most_once(load, smsc)
        assert all(isinstance(e, NetError | TimeoutError) for e in load.errors)


async def test_repeated_cuts_while_reconnecting() -> None:
    """Cut again and again, including during connect and bind, with the 'server' refusing for a while."""
    smsc = CountingSmsc()
    async with (
        asyncio.timeout(10),
        running_server(smsc, SMSC_ADV) as server,
        FaultProxy(HOST, server.port) as proxy,
        running_link(link_config(proxy.port, binds=2), ESME_ADV) as link,
    ):
        await link.wait_bound(2, timeout=2.0)
        load = Load(link)
        async with load.running():
            for round_ in range(6):
                await asyncio.sleep(0.03 * (round_ % 3))
                proxy.cut("rst" if round_ % 2 else "fin")
            proxy.refuse_new = True
            await asyncio.sleep(0.15)
            proxy.refuse_new = False
            await link.wait_bound(2, timeout=3.0)
            ok_before = load.count("ok")
            await wait_for(lambda: load.count("ok") >= ok_before + 50, 3.0, "traffic after the storm")
        assert proxy.refused >= 1
        check_at_most_once(load, smsc)


async def test_stall_then_resume_before_detection_keeps_the_link() -> None:
    """A short stall (shorter than the keepalive and request timeouts) costs nothing: same bind, all answered."""
    smsc = CountingSmsc()
    session = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=1.0, enquire_link_interval=0.5, session_init_timeout=2.0
    )
    async with (
        asyncio.timeout(10),
        running_server(smsc) as server,
        FaultProxy(HOST, server.port) as proxy,
        running_link(link_config(proxy.port), session) as link,
    ):
        await link.wait_bound(1, timeout=2.0)
        (conn,) = link.bound
        tasks = [asyncio.create_task(link.request(submit(f"{n:08d}"), timeout=1.0)) for n in range(5)]
        await asyncio.sleep(0)
        proxy.stall("both")
        await asyncio.sleep(0.1)
        proxy.resume("both")
        responses = await asyncio.gather(*tasks)
        assert all(isinstance(r, SubmitSmResp) for r in responses)
        assert link.bound == [conn] and link.stats.disconnects == 0
        assert set(smsc.seen.values()) == {1}


async def test_proxy_drop_rule_spans_chunks(loop_errors: list[dict[str, Any]]) -> None:
    """The proxy itself: pass ``after`` bytes, drop ``count``, forward the rest, across several writes."""
    received = bytearray()
    got = asyncio.Event()

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.extend(data)
            if len(received) >= 6:
                got.set()

    loop = asyncio.get_running_loop()
    sink = await loop.create_server(Sink, HOST, 0)
    async with FaultProxy(HOST, sink.sockets[0].getsockname()[1]) as proxy:
        _reader, writer = await asyncio.open_connection(HOST, proxy.port)
        await proxy.wait_accepted(1)
        await wait_for(lambda: proxy.active == 1 and proxy.bytes["up"] == 0, 1.0, "pair open")
        await asyncio.sleep(0.02)
        proxy.drop_bytes("up", 4, after=3)
        for chunk in (b"ab", b"cdef", b"ghij"):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(got.wait(), 1.0)
        await asyncio.sleep(0.02)
        assert bytes(received) == b"abchij"
        writer.close()
        await writer.wait_closed()
    sink.close()
    await sink.wait_closed()
