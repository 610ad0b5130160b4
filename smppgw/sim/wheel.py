"""Sans-IO scheduling helpers of the simulator: a timer wheel and a token bucket. Time is always an argument.

The wheel replaces one ``call_later`` per message: the simulator pushes (deadline, item) pairs and one periodic
timer pops everything due, so 40,000 receipts a second cost a few hundred timer callbacks, not 40,000.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class TimerWheel(Generic[T]):
    """Items bucketed by deadline at ``tick`` resolution. ``pop_due(now)`` never returns an item early; it may be up
    to one tick late (plus the timer's own lateness). Push is O(1); pop is O(due items + elapsed ticks) and falls
    back to the occupied buckets when the wheel sat idle for longer than it holds buckets."""

    __slots__ = ("_buckets", "_count", "_cursor", "_inv_tick", "tick")

    def __init__(self, tick: float) -> None:
        if tick <= 0:
            raise ValueError("tick must be > 0")
        self.tick = tick
        self._inv_tick = 1.0 / tick
        self._buckets: dict[int, list[T]] = {}
        self._cursor: int | None = None  # no bucket below this one is occupied
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def push(self, deadline: float, item: T) -> None:
        index = int(deadline * self._inv_tick) + 1  # the first bucket boundary strictly after the deadline
        bucket = self._buckets.get(index)
        if bucket is None:
            self._buckets[index] = [item]
            if self._cursor is None or index < self._cursor:
                self._cursor = index
        else:
            bucket.append(item)
        self._count += 1

    def pop_due(self, now: float) -> list[T]:
        """Every item whose deadline is <= now, in deadline order (bucket by bucket, FIFO within a bucket)."""
        cursor = self._cursor
        if cursor is None:
            return []
        upto = int(now * self._inv_tick)
        if upto < cursor:
            return []
        buckets = self._buckets
        if upto - cursor > len(buckets):
            indexes = sorted(index for index in buckets if index <= upto)
        else:
            indexes = [index for index in range(cursor, upto + 1) if index in buckets]
        due: list[T] = []
        for index in indexes:
            due += buckets.pop(index)
        self._count -= len(due)
        self._cursor = (upto + 1) if buckets else None
        return due

    def next_deadline(self) -> float | None:
        """When ``pop_due`` next returns something (bucket boundary), or None if empty. O(buckets)."""
        if not self._buckets:
            return None
        return min(self._buckets) * self.tick

    def drain(self) -> list[T]:
        """Remove and return everything, due or not."""
        items = [item for index in sorted(self._buckets) for item in self._buckets[index]]
        self._buckets.clear()
        self._cursor = None
        self._count = 0
        return items


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored; ``take(now)`` spends one token if there is one."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def take(self, now: float) -> bool:
        tokens = self._tokens
        if now > self._stamp:
            tokens = min(self.burst, tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False
