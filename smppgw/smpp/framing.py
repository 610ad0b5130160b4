"""Split a TCP byte stream into complete SMPP frames (spec 3.2: every PDU starts with its own command_length)."""

from __future__ import annotations

import struct

from .constants import DEFAULT_MAX_PDU_SIZE, HEADER_SIZE
from .errors import FramingError

_LENGTH = struct.Struct(">I")
_unpack_length = _LENGTH.unpack_from


class Framer:
    """Bytes in, complete frames out, guarded by a maximum PDU size.

    A command_length below 16 or above ``max_pdu_size`` raises ``FramingError``: the stream cannot be resynchronised,
    so the connection must be closed. After that error the framer stays broken (every later ``feed`` raises again).
    """

    __slots__ = ("_error", "_needed", "_pending", "max_pdu_size")

    def __init__(self, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        if max_pdu_size < HEADER_SIZE:
            raise ValueError(f"max_pdu_size must be at least {HEADER_SIZE}")
        self.max_pdu_size = max_pdu_size
        self._pending = bytearray()  # the start of an incomplete frame; appended to in O(1) amortised
        self._needed = 4  # octets the pending data must reach before parsing is worth trying
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a complete frame."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data`` and return every frame it completed, in order."""
        if self._error is not None:
            raise self._error
        if self._pending:
            self._pending += data
            if len(self._pending) < self._needed:
                return []
            data = bytes(self._pending)
            self._pending.clear()
        return self._split(data)

    def _split(self, buffer: bytes) -> list[bytes]:
        frames: list[bytes] = []
        pos = 0
        end = len(buffer)
        max_size = self.max_pdu_size
        while end - pos >= 4:
            (length,) = _unpack_length(buffer, pos)
            if length < HEADER_SIZE or length > max_size:
                self._error = FramingError(f"command_length {length} outside {HEADER_SIZE}..{max_size}")
                raise self._error
            if end - pos < length:
                self._needed = length
                break
            frames.append(buffer[pos : pos + length])
            pos += length
        else:
            self._needed = 4
        if pos < end:
            self._pending += buffer[pos:]
        return frames
