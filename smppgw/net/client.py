"""SMPP client: ``connect`` one session, or keep a ``ClientLink`` of N binds to one SMSC up.

A link reconnects each bind with exponential backoff and jitter, keeps it alive with enquire_link (the session's
keepalive), and detects dead links (unanswered enquire_link). Requests in flight when a bind drops complete with
``RequestFateUnknownError``; the link never resends them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import Callable

import msgspec

from smppgw.core.backoff import Backoff
from smppgw.smpp.pdu import BindReceiver, BindTransceiver, BindTransmitter, Pdu
from smppgw.smpp.session import Role, SessionConfig

from .connection import ConnectionHandler, SmppConnection
from .errors import ConnectionClosedError, NetError, NotBoundError, WindowTimeoutError

BIND_TYPES_BY_MODE: dict[str, type[BindTransmitter | BindReceiver | BindTransceiver]] = {
    "tx": BindTransmitter,
    "rx": BindReceiver,
    "trx": BindTransceiver,
}


async def connect(
    host: str, port: int, config: SessionConfig, handler: ConnectionHandler, *, timeout: float = 10.0
) -> SmppConnection:
    """Open one TCP connection with an ESME session (not yet bound)."""
    if config.role is not Role.ESME:
        raise ValueError("a client's session has the ESME role")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(lambda: SmppConnection(config, handler), host, port)
    except (OSError, TimeoutError) as exc:
        raise ConnectionClosedError(f"connect to {host}:{port} failed: {exc or type(exc).__name__}") from exc
    return conn


class LinkConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One SMSC account: where, who, how many binds of which mode."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    mode: str = "trx"  # tx | rx | trx
    binds: int = 1
    connect_timeout: float = 10.0
    bind_timeout: float = 10.0
    backoff: Backoff = Backoff()


class LinkStats:
    __slots__ = ("bind_failures", "connect_failures", "disconnects", "reconnects")

    def __init__(self) -> None:
        self.connect_failures = 0
        self.bind_failures = 0
        self.disconnects = 0
        self.reconnects = 0


class ClientLink:
    """N binds to one SMSC, each kept up by its own task inside ``run``'s TaskGroup."""

    def __init__(
        self,
        config: LinkConfig,
        session: SessionConfig,
        handler: ConnectionHandler,
        *,
        rng: random.Random | None = None,
        on_state_change: Callable[[ClientLink], None] | None = None,
    ) -> None:
        if config.mode not in BIND_TYPES_BY_MODE:
            raise ValueError(f"bind mode must be one of {sorted(BIND_TYPES_BY_MODE)}")
        self.config = config
        self.session_config = session
        self.handler = handler
        self.stats = LinkStats()
        self.connections: list[SmppConnection] = []
        self._rng = rng or random.Random()
        self._on_state_change = on_state_change
        self._stopping = asyncio.Event()
        self._next = 0
        self._up = asyncio.Event()
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def bound(self) -> list[SmppConnection]:
        return [conn for conn in self.connections if conn.is_bound]

    @property
    def has_bound(self) -> bool:
        """At least one bind is up (no list built: checked per accepted message)."""
        return any(conn.is_bound for conn in self.connections)

    async def run(self) -> None:
        """Keep every bind up until ``stop``; returns after all binds are unbound."""
        async with asyncio.TaskGroup() as group:
            for index in range(self.config.binds):
                group.create_task(self._keep_bound(index), name=f"bind-{index}")

    async def wait_bound(self, count: int = 1, timeout: float | None = None) -> None:
        """Wait until at least ``count`` binds are up (``NotBoundError`` after ``timeout``)."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.bound) < count:
                    self._up.clear()
                    await self._up.wait()
        except TimeoutError:
            raise NotBoundError(f"{len(self.bound)} of {count} binds up after {timeout} s") from None

    def pick(self) -> SmppConnection | None:
        """A bound connection with a free window slot, round robin; None if there is none right now."""
        conns = self.connections
        for offset in range(len(conns)):
            conn = conns[(self._next + offset) % len(conns)]
            if conn.has_free_slot:
                self._next = (self._next + offset + 1) % len(conns)
                return conn
        return None

    async def acquire(self, timeout: float | None = None) -> SmppConnection:
        """A connection with a free slot, waiting (bounded) for one on any bind: every connection signals the link
        when a slot may have freed, so waiting and picking can never disagree about which connection to use."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    conn = self.pick()
                    if conn is not None:
                        return conn
                    await self._wait_for_signal()
        except TimeoutError:
            raise WindowTimeoutError(f"no bind of the link had a free slot within {timeout} s") from None

    async def _wait_for_signal(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        woken = False
        try:
            await waiter
            woken = True
        finally:
            if not woken:
                if waiter.done() and not waiter.cancelled():
                    self._on_slot(None)  # woken but leaving (cancelled, timed out): pass the wake-up on
                else:
                    waiter.cancel()
                    with contextlib.suppress(ValueError):
                        self._slot_waiters.remove(waiter)

    def _on_slot(self, conn: SmppConnection | None) -> None:
        """A slot may be free (response, disconnect, new bind): wake one waiter per free slot we can see."""
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if conn is not None and conn.has_free_slot:
                    return

    async def request(self, pdu: Pdu, *, timeout: float | None = None, slot_timeout: float | None = None) -> Pdu:
        """Send on any bound connection (waiting up to ``slot_timeout`` for a slot) and return the response."""
        conn = await self.acquire(slot_timeout)
        return await conn.request(pdu, timeout=timeout)

    async def stop(self, unbind_timeout: float = 5.0) -> None:
        """Unbind every connection (bounded) and stop reconnecting."""
        self._stopping.set()
        await asyncio.gather(*(conn.unbind(unbind_timeout) for conn in list(self.connections)), return_exceptions=True)

    async def _keep_bound(self, index: int) -> None:
        attempt = 0
        while not self._stopping.is_set():
            conn = await self._connect_and_bind()
            if conn is not None and self._stopping.is_set():  # stop() came while we were binding
                await conn.unbind()
                return
            if conn is not None:
                attempt = 0
                await self._serve(conn)
                if self._stopping.is_set():
                    return
                self.stats.disconnects += 1
            attempt += 1
            delay = self.config.backoff.delay(attempt, self._rng)
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                self.stats.reconnects += 1

    async def _connect_and_bind(self) -> SmppConnection | None:
        cfg = self.config
        try:
            conn = await connect(cfg.host, cfg.port, self.session_config, self.handler, timeout=cfg.connect_timeout)
        except NetError:
            self.stats.connect_failures += 1
            return None
        bind = BIND_TYPES_BY_MODE[cfg.mode](system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type)
        try:
            await conn.bind(bind, timeout=cfg.bind_timeout)
        except (NetError, TimeoutError):
            self.stats.bind_failures += 1
            conn.abort("bind failed")
            return None
        return conn

    async def _serve(self, conn: SmppConnection) -> None:
        conn.slot_listener = self._on_slot
        self.connections.append(conn)
        self._up.set()
        self._wake_all()
        self._notify()
        try:
            await conn.wait_closed()
        finally:
            self.connections.remove(conn)
            self._wake_all()
            self._notify()

    def _wake_all(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _notify(self) -> None:
        if self._on_state_change is not None:
            self._on_state_change(self)


__all__ = ["BIND_TYPES_BY_MODE", "ClientLink", "LinkConfig", "NotBoundError", "connect"]
