"""Errors of the network layer. OS and asyncio errors are translated into these at the adapter boundary."""

from __future__ import annotations

from smppgw.smpp.constants import describe_status


class NetError(Exception):
    """Base of every error raised by ``smppgw.net``."""


class ConnectionClosedError(NetError):
    """The connection is closed or was never established."""


class NotBoundError(NetError):
    """A request was attempted on a session that is not bound (or no bound session is available)."""


class SlotUnavailableError(NetError):
    """A request was sent without a free window slot (check ``has_free_slot`` or wait for one first)."""


class WindowTimeoutError(NetError):
    """No window slot became free within the caller's bound."""


class BindError(NetError):
    """The peer refused our bind (``status``) or did not answer it."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"bind failed: {describe_status(status)}{': ' + detail if detail else ''}")
        self.status = status


class RequestFateUnknownError(NetError):
    """No usable response arrived (timeout, disconnect, undecodable response): the peer may or may not have acted
    on the request. Never resend it blindly; the owner decides by policy."""

    def __init__(self, reason: str, sequence: int, command_id: int) -> None:
        super().__init__(f"request {sequence} (0x{command_id:08X}): fate unknown ({reason})")
        self.reason = reason
        self.sequence = sequence
        self.command_id = command_id
