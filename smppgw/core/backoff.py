"""Exponential backoff with jitter (pure: the random source is an argument)."""

from __future__ import annotations

import random

import msgspec


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """``initial * factor**(attempt-1)`` capped at ``maximum``, spread by ±``jitter`` (a fraction) so that many
    binds reconnecting after one outage do not arrive together."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, min(attempt - 1, 64)))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0)))
