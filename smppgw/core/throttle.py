"""Token buckets counting segments (not messages): the rate an operator or an account allows.

Pure: time is an argument. ``take`` never blocks; it says how long to wait instead."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored. Starts full."""

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, count: float, now: float) -> bool:
        """Take ``count`` tokens if they are all there."""
        self._refill(now)
        if self._tokens >= count:
            self._tokens -= count
            return True
        return False

    def wait_time(self, count: float, now: float) -> float:
        """Seconds until ``count`` tokens will be there (0 if now). A request larger than the burst waits for a
        full bucket, so a long message is never starved forever."""
        self._refill(now)
        needed = min(count, self.burst) - self._tokens
        return 0.0 if needed <= 0 else needed / self.rate

    def take(self, count: float, now: float) -> None:
        """Take ``count`` tokens unconditionally (may go negative: later callers wait longer)."""
        self._refill(now)
        self._tokens -= count

    def drain(self, now: float) -> None:
        """Empty the bucket (after the operator said ESME_RTHROTTLED)."""
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)


def default_burst(rate: float, burst: float = 0.0) -> float:
    """A configured burst, or one tenth of a second of traffic (at least one segment)."""
    return burst if burst > 0 else max(1.0, rate / 10.0)
