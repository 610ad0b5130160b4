"""sequence_number allocation (SMPP 3.4 spec 5.1.4).

Values run 1..``MAX_SEQUENCE`` (0x7FFFFFFF) and wrap to 1; 0 is never produced. A value still in flight (a request
whose response has not arrived, typically ``seq in window``) is never handed out again: after a wrap the allocator
skips it. The scan for a free value is bounded, so a caller that somehow keeps every value busy gets a
``LocalProtocolError`` instead of a hang.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sized

from .constants import MAX_SEQUENCE
from .errors import LocalProtocolError

InUse = Callable[[int], bool] | Container[int]
"""What is still in flight: a predicate, or any container (a ``Window``, a set, a dict keyed by sequence)."""


def _check_sequence(value: int) -> None:
    if not 1 <= value <= MAX_SEQUENCE:
        raise ValueError(f"sequence_number must be in 1..0x{MAX_SEQUENCE:08X}, got {value}")


class SequenceAllocator:
    """Hands out sequence_numbers in order, wrapping to 1, skipping values still in flight.

    ``max_scan`` bounds how many candidates one ``next()`` call may examine. The default (every value) only matters
    for a predicate; for a sized container (``Window``, set, dict) the scan is further bounded by ``len(in_use) + 1``,
    which by pigeonhole always finds a free value unless the container really holds every sequence_number.
    """

    __slots__ = ("_max_scan", "_next")

    def __init__(self, start: int = 1, *, max_scan: int = MAX_SEQUENCE) -> None:
        _check_sequence(start)
        if max_scan < 1:
            raise ValueError(f"max_scan must be >= 1, got {max_scan}")
        self._next = start
        self._max_scan = min(max_scan, MAX_SEQUENCE)

    @property
    def peek(self) -> int:
        """The value ``next()`` will try first (it may skip it if that value is still in flight)."""
        return self._next

    def next(self, in_use: InUse | None = None) -> int:
        """Return the next free sequence_number and advance past it.

        ``in_use`` is either a predicate (called with the candidate) or a container tested with ``in``; a callable is
        always treated as a predicate. Raises ``LocalProtocolError`` if no free value is found within the scan bound.
        """
        candidate = self._next
        if in_use is not None:
            is_busy: Callable[[int], bool] = in_use if callable(in_use) else in_use.__contains__
            if is_busy(candidate):
                candidate = self._skip_busy(candidate, in_use, is_busy)
        self._next = 1 if candidate >= MAX_SEQUENCE else candidate + 1
        return candidate

    def _skip_busy(self, candidate: int, in_use: InUse, is_busy: Callable[[int], bool]) -> int:
        """Slow path: scan forward (wrapping) from a busy candidate; at most ``limit`` candidates in all."""
        limit = self._max_scan
        if not callable(in_use) and isinstance(in_use, Sized):
            limit = min(limit, len(in_use) + 1)
        for _ in range(limit - 1):
            candidate = 1 if candidate >= MAX_SEQUENCE else candidate + 1
            if not is_busy(candidate):
                return candidate
        raise LocalProtocolError(f"no free sequence_number among {limit} candidates: every one is in flight")

    def __repr__(self) -> str:
        return f"SequenceAllocator(next={self._next})"
