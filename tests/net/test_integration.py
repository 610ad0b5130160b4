"""Server and ClientLink over real sockets on 127.0.0.1, on asyncio and uvloop (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import random

import pytest

from smppgw.net.client import ClientLink, connect
from smppgw.net.connection import SmppConnection
from smppgw.net.errors import BindError, NetError, RequestFateUnknownError
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import BindTransceiver, Pdu, SubmitSmResp, _Bind
from smppgw.smpp.session import Role, SessionConfig

from .helpers import (
    ESME,
    HOST,
    SEED,
    EsmeHandler,
    SmscHandler,
    eventually,
    link_config,
    running_link,
    running_server,
    submit,
)
from .proxy import FaultProxy

N = 1000
WINDOW = ESME.window_size


async def test_link_binds_every_connection() -> None:
    smsc = SmscHandler(credentials={"esme": "secret"})
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=3)) as link:
        await link.wait_bound(3, timeout=2.0)
        assert len(link.bound) == 3
        assert len(smsc.bound) == 3
        assert {p.system_id for p in smsc.bind_requests} == {"esme"}
        assert all(conn.session.peer_system_id == "smsc" for conn in link.bound)


async def test_thousand_requests_on_one_bind() -> None:
    smsc = SmscHandler(delay=0.0005)
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=1)) as link:
        await link.wait_bound(1, timeout=2.0)
        async with asyncio.timeout(10):
            responses = await asyncio.gather(*(link.request(submit(n), timeout=2.0) for n in range(N)))
        assert all(isinstance(r, SubmitSmResp) and r.status == 0 for r in responses)
        assert len(smsc.seen) == N and set(smsc.seen.values()) == {1}
        assert smsc.max_outstanding == WINDOW, "window bound respected (and reached)"


async def test_thousand_requests_over_three_binds() -> None:
    smsc = SmscHandler(delay=0.0005)
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=3)) as link:
        await link.wait_bound(3, timeout=2.0)
        tasks = [asyncio.create_task(link.request(submit(n), timeout=2.0)) for n in range(N)]
        try:
            async with asyncio.timeout(1.5):  # one bind does all of it in ~0.2 s
                responses = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, SubmitSmResp) for r in responses)
        assert len(smsc.seen) == N and set(smsc.seen.values()) == {1}
        assert smsc.max_outstanding <= WINDOW


async def test_thousand_requests_by_callback_over_three_binds() -> None:
    smsc = SmscHandler(delay=0.0005)
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=3)) as link:
        await link.wait_bound(3, timeout=2.0)
        results: list[tuple[Pdu | None, BaseException | None]] = []
        all_done = asyncio.Event()
        used: set[SmppConnection] = set()

        def on_done(response: Pdu | None, error: BaseException | None) -> None:
            results.append((response, error))
            if len(results) == N:
                all_done.set()

        async with asyncio.timeout(10):
            for n in range(N):
                conn = await link.acquire(timeout=2.0)
                used.add(conn)
                conn.send_request(submit(n), on_done, timeout=2.0)
            await all_done.wait()
        assert all(isinstance(r, SubmitSmResp) and e is None for r, e in results)
        assert len(used) == 3, "round robin over every bind"
        assert len(smsc.seen) == N and set(smsc.seen.values()) == {1}
        assert WINDOW >= smsc.max_outstanding > 1


async def test_window_bound_is_respected_per_connection() -> None:
    smsc = SmscHandler(delay=0.01)
    session = SessionConfig(role=Role.ESME, window_size=4, enquire_link_interval=None, session_init_timeout=5.0)
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=1), session) as link:
        await link.wait_bound(1, timeout=2.0)
        async with asyncio.timeout(5):
            await asyncio.gather(*(link.request(submit(n)) for n in range(40)))
        assert smsc.max_outstanding == 4


async def test_server_refuses_connections_over_max() -> None:
    smsc = SmscHandler()
    async with running_server(smsc, max_connections=1) as server:
        first = await connect(HOST, server.port, ESME, EsmeHandler(), timeout=1.0)
        await first.bind(BindTransceiver(system_id="esme", password="x"), timeout=1.0)
        second = await connect(HOST, server.port, ESME, EsmeHandler(), timeout=1.0)
        with pytest.raises(NetError):
            await second.bind(BindTransceiver(system_id="esme", password="x"), timeout=1.0)
        await second.wait_closed()
        assert server.refused_connections == 1
        assert len(server.connections) == 1 and first.is_bound
        await first.unbind(timeout=1.0)
        await eventually(lambda: not server.connections, what="server forgets the closed connection")
        third = await connect(HOST, server.port, ESME, EsmeHandler(), timeout=1.0)
        await third.bind(BindTransceiver(system_id="esme", password="x"), timeout=1.0)
        assert third.is_bound
        await third.unbind(timeout=1.0)


async def test_link_over_max_connections_keeps_running() -> None:
    smsc = SmscHandler()
    async with running_server(smsc, max_connections=1) as server:
        async with running_link(link_config(server.port, binds=2)) as link:
            await link.wait_bound(1, timeout=2.0)
            await eventually(lambda: link.stats.bind_failures + link.stats.connect_failures >= 3, what="retries")
            assert len(link.bound) == 1
            assert isinstance(await link.request(submit(1), timeout=1.0), SubmitSmResp)
        assert server.refused_connections >= 3


async def test_wrong_credentials_raise_bind_error_with_status() -> None:
    smsc = SmscHandler(credentials={"esme": "secret"})
    handler = EsmeHandler()
    async with running_server(smsc) as server:
        conn = await connect(HOST, server.port, ESME, handler, timeout=1.0)
        with pytest.raises(BindError) as info:
            await conn.bind(BindTransceiver(system_id="esme", password="wrong"), timeout=1.0)
        assert info.value.status == CommandStatus.ESME_RINVPASWD
        async with asyncio.timeout(1.0):
            await conn.wait_closed()  # the server closes a refused ESME
        assert smsc.bound == [] and handler.bound == []


async def test_link_with_wrong_password_retries_without_crashing() -> None:
    smsc = SmscHandler(credentials={"esme": "secret"})
    async with running_server(smsc) as server:
        async with running_link(link_config(server.port, password="wrong")) as link:
            await eventually(lambda: link.stats.bind_failures >= 3, what="three refused binds")
            assert link.bound == []
        assert smsc.bound == []


async def test_server_close_unbinds_clients() -> None:
    smsc = SmscHandler()
    handler = EsmeHandler()
    async with running_server(smsc) as server, running_link(link_config(server.port, binds=2), handler=handler) as link:
        await link.wait_bound(2, timeout=2.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server.close(unbind_timeout=1.0)
        assert loop.time() - start < 0.5
        await eventually(lambda: len(handler.closed) == 2, what="both binds closed")
        assert {reason for _, reason in handler.closed} == {"unbound by peer"}
        assert {reason for _, reason in smsc.closed} == {"unbound"}
        assert not server.connections


async def test_link_reconnects_after_server_restart() -> None:
    first = SmscHandler()
    second = SmscHandler()
    async with running_server(first) as server:
        port = server.port
        async with running_link(link_config(port, binds=2)) as link:
            await link.wait_bound(2, timeout=2.0)
            old = set(link.bound)
            await server.close(unbind_timeout=0.5)
            await eventually(lambda: not link.bound, what="binds dropped")
            await asyncio.sleep(0.1)  # a few failed reconnects while the server is down
            async with running_server(second, port=port):
                await link.wait_bound(2, timeout=3.0)
                assert not old & set(link.bound)
                assert len(second.bound) == 2
                assert isinstance(await link.request(submit(1), timeout=1.0), SubmitSmResp)
            assert link.stats.disconnects >= 2 and link.stats.reconnects >= 2
            assert link.stats.connect_failures >= 1


async def test_keepalive_keeps_an_idle_link_up() -> None:
    session = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=0.2, enquire_link_interval=0.05, session_init_timeout=5.0
    )
    smsc = SmscHandler()
    async with running_server(smsc) as server, running_link(link_config(server.port), session) as link:
        await link.wait_bound(1, timeout=2.0)
        (conn,) = link.bound
        writes = conn.stats.writes
        await asyncio.sleep(0.5)  # ten intervals, no traffic
        assert link.bound == [conn] and link.stats.disconnects == 0
        assert conn.stats.writes - writes >= 5, "enquire_link sent about once per interval"
        assert conn.stats.bytes_in >= 5 * 16


async def test_dead_peer_is_detected_within_interval_plus_timeout() -> None:
    interval, timeout = 0.1, 0.2
    session = SessionConfig(
        role=Role.ESME,
        window_size=10,
        response_timeout=timeout,
        enquire_link_interval=interval,
        session_init_timeout=5.0,
    )
    smsc = SmscHandler()
    handler = EsmeHandler()
    async with (
        running_server(smsc) as server,
        FaultProxy(HOST, server.port) as proxy,
        running_link(link_config(proxy.port), session, handler) as link,
    ):
        await link.wait_bound(1, timeout=2.0)
        (conn,) = link.bound
        loop = asyncio.get_running_loop()
        proxy.stall("both")  # TCP stays up, the peer stops answering
        start = loop.time()
        async with asyncio.timeout(2.0):
            await conn.wait_closed()
        elapsed = loop.time() - start
        assert elapsed <= interval + timeout + 0.1, elapsed
        assert handler.closed[0][1] == "no response to ENQUIRE_LINK"
        await link.wait_bound(1, timeout=2.0)  # a new connection through the proxy
        assert link.bound[0] is not conn


async def test_unanswered_request_times_out_over_real_sockets() -> None:
    session = SessionConfig(
        role=Role.ESME, window_size=10, response_timeout=0.2, enquire_link_interval=0.05, session_init_timeout=5.0
    )
    smsc = SmscHandler(answering=False)
    async with running_server(smsc) as server, running_link(link_config(server.port), session) as link:
        await link.wait_bound(1, timeout=2.0)
        with pytest.raises(RequestFateUnknownError) as info:
            async with asyncio.timeout(2.0):
                await link.request(submit(1))
        assert info.value.reason == "timeout"
        assert smsc.seen[b"m1"] == 1
        assert len(link.bound) == 1, "a timed-out request does not drop the bind"


class SlowBindSmsc(SmscHandler):
    """Holds every bind request until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[SmppConnection] = []

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        self.bind_requests.append(pdu)
        self.pending.append(conn)

    def release(self) -> None:
        for conn in self.pending:
            conn.accept_bind("smsc")
        self.pending.clear()


async def test_stop_while_binding_returns() -> None:
    smsc = SlowBindSmsc()
    async with running_server(smsc) as server:
        link = ClientLink(link_config(server.port), ESME, EsmeHandler(), rng=random.Random(SEED))
        task = asyncio.create_task(link.run())
        try:
            await eventually(lambda: bool(smsc.pending), what="bind request at the server")
            stopping = asyncio.create_task(link.stop(unbind_timeout=0.2))
            await asyncio.sleep(0)
            smsc.release()
            await stopping
            done, _ = await asyncio.wait([task], timeout=0.5)
            assert task in done, "run() still running 0.5 s after stop()"
        finally:
            if not task.done():
                for conn in list(link.connections):
                    conn.abort("test cleanup")
                await asyncio.wait_for(task, 1.0)
