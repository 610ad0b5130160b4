"""A fault-injecting TCP proxy for adversity tests (asyncio, works on uvloop too).

    proxy = FaultProxy("127.0.0.1", server_port)
    await proxy.start()              # listens on 127.0.0.1, port 0 → proxy.port
    ... point the client at proxy.port ...
    proxy.cut("rst")                 # every current connection: RST both ways ("fin": orderly close both ways)
    proxy.stall("up")                # stop forwarding client → server ("down": server → client, "both")
    proxy.resume()                   # forward again (what was held back is delivered)
    proxy.half_close("client")       # send FIN toward the client only (or "server"); the other direction still flows
    proxy.drop_bytes("up", 3, after=5)  # in the next bytes going up: pass 5, drop 3, pass the rest (mid-PDU)
    proxy.refuse_new = True          # accept new connections and reset them at once (server "down")
    await proxy.close()

Directions: ``up`` is client → server, ``down`` is server → client. Faults apply to the connections open at the time
of the call; new connections start clean (``refuse_new`` aside). A stall pauses reading from the source, so TCP
flow control holds the bytes back: nothing is lost and memory stays bounded.

Ownership: the proxy owns its listener, every connection pair and the tasks that open upstream connections;
``close`` ends all of them. It never raises into the event loop's exception handler.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Literal

Direction = Literal["up", "down", "both"]
Toward = Literal["client", "server"]

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


def _directions(direction: Direction) -> tuple[str, ...]:
    if direction == "both":
        return ("up", "down")
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be up, down or both, not {direction!r}")
    return (direction,)


class _DropRule:
    """Pass ``after`` bytes, drop ``count``, then pass everything (spans chunk boundaries)."""

    __slots__ = ("count", "skip")

    def __init__(self, count: int, after: int) -> None:
        self.skip = after
        self.count = count

    def apply(self, data: bytes) -> bytes:
        head = data[: self.skip]
        self.skip -= len(head)
        rest = data[len(head) :]
        dropped = rest[: self.count]
        self.count -= len(dropped)
        return head + rest[len(dropped) :]

    @property
    def done(self) -> bool:
        return self.count == 0


class _Side(asyncio.Protocol):
    """One end of a pair: ``client`` (accepted by the proxy) or ``server`` (the proxy's upstream connection)."""

    def __init__(self, pair: _Pair, name: Toward) -> None:
        self.pair = pair
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.eof_sent = False
        self.eof_received_flag = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.pair.forward(self.name, data)

    def eof_received(self) -> bool:
        self.eof_received_flag = True
        self.pair.on_eof(self.name)
        return True  # keep our write side open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.on_lost(self.name, exc)


class _Pair:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, "client")
        self.server = _Side(self, "server")
        self.drops: dict[str, _DropRule] = {}
        self.stalled: set[str] = set()
        self.closed = False

    def _source_of(self, direction: str) -> _Side:
        return self.client if direction == "up" else self.server

    def _target_of(self, direction: str) -> _Side:
        return self.server if direction == "up" else self.client

    def forward(self, source: Toward, data: bytes) -> None:
        direction = "up" if source == "client" else "down"
        rule = self.drops.get(direction)
        if rule is not None:
            data = rule.apply(data)
            if rule.done:
                del self.drops[direction]
        self.proxy.bytes[direction] += len(data)
        target = self._target_of(direction)
        transport = target.transport
        if data and transport is not None and not target.eof_sent and not transport.is_closing():
            transport.write(data)

    def on_eof(self, source: Toward) -> None:
        self._write_eof(self.server if source == "client" else self.client)
        if self.client.eof_received_flag and self.server.eof_received_flag:
            self.close_both()

    def on_lost(self, side: Toward, exc: Exception | None) -> None:
        other = self.server if side == "client" else self.client
        if other.transport is not None and not other.transport.is_closing():
            if exc is None:
                other.transport.close()
            else:
                other.transport.abort()
        self.closed = True
        self.proxy._pairs.discard(self)

    def _write_eof(self, side: _Side) -> None:
        transport = side.transport
        if transport is not None and not side.eof_sent and not transport.is_closing() and transport.can_write_eof():
            side.eof_sent = True
            transport.write_eof()

    # ------------------------------------------------------------------ faults

    def stall(self, direction: str) -> None:
        self.stalled.add(direction)
        transport = self._source_of(direction).transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume(self, direction: str) -> None:
        self.stalled.discard(direction)
        if direction == "up" and self.server.transport is None:
            return  # still connecting upstream: _open_upstream resumes the client side
        transport = self._source_of(direction).transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def half_close(self, toward: Toward) -> None:
        self._write_eof(self.client if toward == "client" else self.server)

    def cut(self, mode: Literal["rst", "fin"]) -> None:
        for side in (self.client, self.server):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            if mode == "rst":
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                transport.abort()
            else:
                transport.close()
        self.closed = True
        self.proxy._pairs.discard(self)

    def close_both(self) -> None:
        for side in (self.client, self.server):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()


class FaultProxy:
    """A TCP proxy from ``listen_host:port`` to ``target_host:target_port`` with fault controls (see module doc)."""

    def __init__(self, target_host: str, target_port: int, *, connect_timeout: float = 2.0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.connect_timeout = connect_timeout
        self.refuse_new = False
        self.accepted = 0
        self.refused = 0
        self.bytes: dict[str, int] = {"up": 0, "down": 0}
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._accepted_changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FaultProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, host, port, reuse_address=True)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active(self) -> int:
        """Connection pairs currently open."""
        return len(self._pairs)

    async def close(self) -> None:
        """Stop listening, reset every connection and end the proxy's tasks."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for pair in list(self._pairs):
            pair.cut("fin")
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost run for the transports just closed

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_accepted(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` connections have been accepted in total (refused ones included)."""
        async with asyncio.timeout(timeout):
            while self.accepted < count:
                self._accepted_changed.clear()
                await self._accepted_changed.wait()

    # ------------------------------------------------------------------ faults (on the connections open now)

    def cut(self, mode: Literal["rst", "fin"] = "rst") -> None:
        """End every open connection in both directions: ``rst`` (abort with SO_LINGER 0) or ``fin`` (close)."""
        if mode not in ("rst", "fin"):
            raise ValueError(f"mode must be rst or fin, not {mode!r}")
        for pair in list(self._pairs):
            pair.cut(mode)

    def stall(self, direction: Direction = "both") -> None:
        """Stop forwarding in ``direction``; bytes stay in the kernel buffers until ``resume``."""
        for name in _directions(direction):
            for pair in self._pairs:
                pair.stall(name)

    def resume(self, direction: Direction = "both") -> None:
        for name in _directions(direction):
            for pair in self._pairs:
                pair.resume(name)

    def half_close(self, toward: Toward) -> None:
        """Send FIN toward ``client`` or ``server`` (shutdown of the proxy's write side); nothing else changes."""
        if toward not in ("client", "server"):
            raise ValueError(f"toward must be client or server, not {toward!r}")
        for pair in self._pairs:
            pair.half_close(toward)

    def drop_bytes(self, direction: Literal["up", "down"], count: int, *, after: int = 0) -> None:
        """In the next bytes forwarded in ``direction``: pass ``after`` bytes, drop ``count`` bytes, pass the rest."""
        if count < 1 or after < 0:
            raise ValueError("count must be >= 1 and after >= 0")
        (name,) = _directions(direction)
        for pair in self._pairs:
            pair.drops[name] = _DropRule(count, after)

    # ------------------------------------------------------------------ internals

    def _accept(self) -> asyncio.Protocol:
        self.accepted += 1
        self._accepted_changed.set()
        if self.refuse_new:
            self.refused += 1
            return _Reset()
        pair = _Pair(self)
        self._pairs.add(pair)
        task = asyncio.get_running_loop().create_task(self._open_upstream(pair))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _Accepted(pair)

    async def _open_upstream(self, pair: _Pair) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: pair.server, self.target_host, self.target_port)
        except (OSError, TimeoutError):
            pair.cut("rst")
            return
        client = pair.client.transport
        if pair.closed or client is None or client.is_closing():
            pair.cut("fin")
            return
        if "up" not in pair.stalled:
            client.resume_reading()


class _Accepted(_Side):
    """The client side: holds reading until the upstream connection is open."""

    def __init__(self, pair: _Pair) -> None:
        super().__init__(pair, "client")
        pair.client = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]


class _Reset(asyncio.Protocol):
    """A refused connection: reset at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()  # type: ignore[attr-defined]


__all__ = ["Direction", "FaultProxy", "Toward"]
