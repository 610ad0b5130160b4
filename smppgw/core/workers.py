"""Which worker process this is, when ``smppgw run --workers N`` runs N gateways on one store.

Every message belongs to one worker: the one whose index is its id modulo the worker count (ids are handed out by
each worker in its own residue class). The owner keeps it in memory, sends it, matches its receipts and recovers it
after a restart. Anything another worker learns about it (a receipt on that worker's bind, a receipt owed to an
upstream bind that worker holds) goes through the store's hand-off tables.
"""

from __future__ import annotations

import msgspec


class WorkerSlot(msgspec.Struct, frozen=True):
    """This process's place among the workers (``count == 1``: the only one, nothing is shared)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"worker index {self.index} is not in 0..{self.count - 1}")

    @property
    def shared(self) -> bool:
        return self.count > 1

    def owns(self, message_id: str) -> bool:
        """Whether this worker owns the message (its id is in this worker's residue class)."""
        return self.count == 1 or int(message_id, 16) % self.count == self.index

    def share_of_rate(self, rate: float) -> float:
        """This worker's part of a rate configured for the whole gateway (operator and account throttles)."""
        return rate / self.count

    def share_of_binds(self, binds: int) -> int:
        """This worker's binds of a connector configured with ``binds`` in all: spread evenly, at least one each
        (a worker without a bind could not send what it accepts)."""
        return max(1, binds // self.count + (1 if self.index < binds % self.count else 0))

    def align(self, floor: int) -> int:
        """The largest number at or below ``floor`` in this worker's residue class (a counter's starting point)."""
        return floor - ((floor - self.index) % self.count)


SOLE_WORKER = WorkerSlot()
"""The default: one process, nothing shared."""
