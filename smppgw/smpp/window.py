"""The request window: requests sent and not yet answered, keyed by sequence_number (Cloudhopper semantics, sans-IO).

A request enters with ``offer`` and leaves exactly once: by ``complete`` (its response arrived), ``expire`` (its
deadline passed) or ``drain`` (the connection is gone; its fate is unknown and the caller must report it, never
blindly resend it). Time is an argument (monotonic seconds); the window never reads a clock and never waits.

Waiting for a free slot is *not* done here: ``offer`` on a full window raises ``WindowFullError`` at once. The asyncio
adapter owns waiting (bounded, with its own timeout), the futures, and the single connection timer, which it re-arms
from ``next_deadline()`` after every event. It also measures the window *wait* time (queued before ``offer``); the
window measures the *response* time (``offer`` to ``complete``), as Cloudhopper keeps the two apart.

Cost model: ``offer`` and ``complete`` are O(1); ``expire`` and ``next_deadline`` are amortised O(1) per entry.
Timeouts are nearly always one constant per connection, so deadlines arrive in non-decreasing order and go into a
FIFO (``deque``). A deadline earlier than the FIFO's tail (a shorter timeout, or a clock that went back) goes into a
heap instead. A completed entry is removed from the index at once; its FIFO/heap slot is dropped lazily: immediately
when it is at the head (the common case: responses come back roughly in order), otherwise when it reaches the head or
at the next compaction, which runs once the stale slots exceed ``max(size, 64)``. Memory stays O(size).
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush
from math import isnan
from typing import Generic, TypeVar

from .constants import MAX_SEQUENCE, CommandStatus
from .errors import LocalProtocolError

T = TypeVar("T")

_MIN_STALE_LIMIT = 64
"""Compaction never runs more often than every 64 out-of-order completions, whatever the window size."""


class WindowFullError(LocalProtocolError):
    """``offer`` on a full window. ESME_RTHROTTLED: too many requests outstanding; retry when a slot frees."""

    def __init__(self, size: int) -> None:
        super().__init__(f"window full: {size} requests in flight", CommandStatus.ESME_RTHROTTLED)
        self.size = size


class DuplicateSequenceError(LocalProtocolError):
    """``offer`` with a sequence_number already in flight: a bug in the caller's allocation (ESME_RSYSERR)."""

    def __init__(self, sequence: int) -> None:
        super().__init__(f"sequence_number {sequence} is already in flight", CommandStatus.ESME_RSYSERR)
        self.sequence = sequence


class WindowEntry(Generic[T]):
    """One request in flight. ``response_time`` (seconds, offer to response) is set by ``complete``; it stays
    ``None`` for an entry that left by ``expire`` or ``drain``."""

    __slots__ = ("_live", "deadline", "offered_at", "request", "response_time", "sequence")

    def __init__(self, sequence: int, request: T, offered_at: float, deadline: float) -> None:
        self.sequence = sequence
        self.request = request
        self.offered_at = offered_at
        self.deadline = deadline
        self.response_time: float | None = None
        self._live = True  # False once completed while still referenced by the FIFO or the heap

    def __repr__(self) -> str:
        return (
            f"WindowEntry(sequence={self.sequence}, request={self.request!r}, offered_at={self.offered_at}, "
            f"deadline={self.deadline}, response_time={self.response_time})"
        )


class Window(Generic[T]):
    """At most ``size`` requests in flight, each with a deadline. Not thread-safe; owned by one connection.

    ``seq in window`` and ``len(window)`` make it a valid ``in_use`` argument for ``SequenceAllocator.next``.
    """

    __slots__ = ("_entries", "_fifo", "_heap", "_pushes", "_size", "_stale", "_stale_limit")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._size = size
        self._entries: dict[int, WindowEntry[T]] = {}  # the index, in offer order; holds live entries only
        self._fifo: deque[WindowEntry[T]] = deque()  # non-decreasing deadlines; head always live
        self._heap: list[tuple[float, int, WindowEntry[T]]] = []  # out-of-order deadlines; head always live
        self._pushes = 0  # heap tie-breaker: equal deadlines leave in push order
        self._stale = 0  # completed entries still referenced by the FIFO or the heap
        self._stale_limit = max(size, _MIN_STALE_LIMIT)

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_flight(self) -> int:
        return len(self._entries)

    @property
    def free_slots(self) -> int:
        return self._size - len(self._entries)

    @property
    def is_full(self) -> bool:
        return len(self._entries) >= self._size

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, sequence: object) -> bool:
        return sequence in self._entries

    def get(self, sequence: int) -> WindowEntry[T] | None:
        """The entry in flight under ``sequence``, without removing it."""
        return self._entries.get(sequence)

    def offer(self, sequence: int, request: T, now: float, timeout: float) -> WindowEntry[T]:
        """Add a request sent at ``now`` that expires at ``now + timeout``. Never waits.

        Raises ``DuplicateSequenceError`` if ``sequence`` is in flight, ``WindowFullError`` if no slot is free,
        ``LocalProtocolError`` for a sequence_number outside 1..0x7FFFFFFF or a NaN deadline.
        """
        entries = self._entries
        if sequence in entries:
            raise DuplicateSequenceError(sequence)
        if len(entries) >= self._size:
            raise WindowFullError(self._size)
        if not 0 < sequence <= MAX_SEQUENCE:
            raise LocalProtocolError(f"sequence_number out of range: {sequence}")
        deadline = now + timeout
        if isnan(deadline):
            raise LocalProtocolError(f"deadline is NaN (now={now}, timeout={timeout})")
        entry = WindowEntry(sequence, request, now, deadline)
        entries[sequence] = entry
        fifo = self._fifo
        if not fifo or deadline >= fifo[-1].deadline:
            fifo.append(entry)
        else:
            self._pushes += 1
            heappush(self._heap, (deadline, self._pushes, entry))
        return entry

    def complete(self, sequence: int, now: float) -> WindowEntry[T] | None:
        """Remove and return the entry answered at ``now``, with ``response_time`` set.

        ``None`` if ``sequence`` is not in flight: a late (already expired or drained) or unsolicited response;
        the caller counts it.
        """
        entry = self._entries.pop(sequence, None)
        if entry is None:
            return None
        entry.response_time = now - entry.offered_at
        entry._live = False
        fifo = self._fifo
        if fifo and fifo[0] is entry:  # fast path: answered in order, nothing goes stale
            fifo.popleft()
            if fifo and not fifo[0]._live:
                self._drop_stale_heads()
            return entry
        self._stale += 1
        self._drop_stale_heads()
        if self._stale > self._stale_limit:
            self._compact()
        return entry

    def next_deadline(self) -> float | None:
        """The earliest deadline in flight (``None`` if empty): when to call ``expire``. O(1)."""
        fifo, heap = self._fifo, self._heap
        if fifo:
            deadline = fifo[0].deadline
            if heap and heap[0][0] < deadline:
                return heap[0][0]
            return deadline
        if heap:
            return heap[0][0]
        return None

    def expire(self, now: float) -> list[WindowEntry[T]]:
        """Remove and return every entry whose deadline is ``<= now``, earliest deadline first."""
        expired: list[WindowEntry[T]] = []
        fifo, heap, entries = self._fifo, self._heap, self._entries
        while True:
            if fifo and (not heap or fifo[0].deadline <= heap[0][0]):
                if fifo[0].deadline > now:
                    break
                entry = fifo.popleft()
            elif heap and heap[0][0] <= now:
                entry = heappop(heap)[2]
            else:
                break
            del entries[entry.sequence]
            expired.append(entry)
            self._drop_stale_heads()
        return expired

    def drain(self) -> list[WindowEntry[T]]:
        """Remove and return every entry in flight, in offer order (on disconnect: their fate is unknown)."""
        drained = list(self._entries.values())
        self._entries.clear()
        self._fifo.clear()
        self._heap.clear()
        self._stale = 0
        return drained

    def _drop_stale_heads(self) -> None:
        """Restore the invariant "the FIFO's and the heap's heads are live" after a removal."""
        fifo, heap = self._fifo, self._heap
        while fifo and not fifo[0]._live:
            fifo.popleft()
            self._stale -= 1
        while heap and not heap[0][2]._live:
            heappop(heap)
            self._stale -= 1

    def _compact(self) -> None:
        """Drop every stale slot: O(size), run at most once per ``stale_limit`` completions."""
        live = [entry for entry in self._fifo if entry._live]
        self._fifo.clear()
        self._fifo.extend(live)
        self._heap[:] = [item for item in self._heap if item[2]._live]
        heapify(self._heap)
        self._stale = 0

    def __repr__(self) -> str:
        return f"Window(size={self._size}, in_flight={len(self._entries)}, next_deadline={self.next_deadline()})"
