"""SMPP server: accepts ESME binds (role SMSC) and hands every connection to one application handler.

Over ``max_connections`` a new connection is closed at once. When the process runs out of file descriptors
(EMFILE/ENFILE) asyncio and uvloop pause accepting and retry; the server keeps serving its existing connections.
"""

from __future__ import annotations

import asyncio
import socket

from smppgw.smpp.session import Role, SessionConfig

from .connection import PDU_COUNTS, ConnectionHandler, SmppConnection


class _Refuse(asyncio.Protocol):
    """Protocol for connections over the limit: close immediately."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class SmppServer:
    """Listen on ``host:port``; ``close`` unbinds every session (bounded) and stops listening."""

    def __init__(
        self,
        handler: ConnectionHandler,
        config: SessionConfig,
        *,
        max_connections: int = 1000,
        count_pdus: bool = True,
    ) -> None:
        """``count_pdus=False`` keeps this server's PDUs out of the process-wide ``PDU_COUNTS`` (an in-process
        simulator must not look like the gateway's own traffic)."""
        if config.role is not Role.SMSC:
            raise ValueError("a server's sessions have the SMSC role")
        self.handler = handler
        self.config = config
        self.max_connections = max_connections
        self.connections: set[SmppConnection] = set()
        self.refused_connections = 0
        self._count_pdus = count_pdus
        self._server: asyncio.Server | None = None

    def _make_protocol(self) -> asyncio.Protocol:
        if len(self.connections) >= self.max_connections:
            self.refused_connections += 1
            return _Refuse()
        conn = SmppConnection(self.config, self.handler, counts=PDU_COUNTS if self._count_pdus else None)
        self.connections.add(conn)
        conn.add_close_callback(lambda: self.connections.discard(conn))
        return conn

    async def start(self, host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_protocol, host, port, reuse_address=True, reuse_port=reuse_port or None, backlog=backlog
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0 in tests)."""
        assert self._server is not None
        for sock in self._server.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                return int(sock.getsockname()[1])
        raise RuntimeError("server has no TCP socket")

    async def close(self, unbind_timeout: float = 5.0) -> None:
        """Stop accepting, unbind bound sessions (each bounded by ``unbind_timeout``), close the rest."""
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        await asyncio.gather(*(conn.unbind(unbind_timeout) for conn in conns), return_exceptions=True)
        for conn in conns:
            conn.abort("server closed")
        if self._server is not None:
            await self._server.wait_closed()
