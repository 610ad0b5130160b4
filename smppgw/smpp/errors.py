"""Errors of the sans-IO SMPP layer.

Split as in h11: ``LocalProtocolError`` means *we* tried to break the protocol (a bug or bad input on our side, never
sent); ``RemoteProtocolError`` means the *peer* did. Every remote error carries the command_status to answer with,
and a decoding error keeps the header so the reply goes out with the right sequence_number.
"""

from __future__ import annotations

from .constants import CommandStatus


class SmppError(Exception):
    """Base class of every error raised by ``smppgw.smpp``."""


class LocalProtocolError(SmppError):
    """We were asked to produce something the protocol forbids (too long field, PDU not allowed in this state)."""

    def __init__(self, message: str, status: int = CommandStatus.ESME_RSYSERR) -> None:
        super().__init__(message)
        self.status = status


class RemoteProtocolError(SmppError):
    """The peer sent something the protocol forbids. ``status`` is the command_status to answer with."""

    def __init__(self, message: str, status: int = CommandStatus.ESME_RUNKNOWNERR) -> None:
        super().__init__(message)
        self.status = status


class FramingError(RemoteProtocolError):
    """The byte stream cannot be split into PDUs (bad command_length): the connection must be closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CommandStatus.ESME_RINVCMDLEN)


class PduDecodeError(RemoteProtocolError):
    """A complete frame whose body is malformed or whose command_id is unknown.

    The header survives, so the session can answer a request with its response type (or generic_nack) carrying the
    same sequence_number and ``status``.
    """

    def __init__(self, message: str, *, command_id: int, sequence: int, status: int) -> None:
        super().__init__(message, status)
        self.command_id = command_id
        self.sequence = sequence
