"""What worker processes tell each other through the store (``smppgw run --workers N``).

Each worker polls three things: receipts another worker received but could not match (the message may be ours),
stop-list changes made by another worker, and receipts owed to upstream accounts that this worker holds a receiver
session of. Polling costs three indexed reads per interval, nothing per message.
"""

from __future__ import annotations

import asyncio
import time

from smppgw.obs.logging import get_logger
from smppgw.store.base import Store

from .gateway import Gateway

log = get_logger("smppgw.exchange")

HANDOFF_RETENTION = 3600.0
"""Seconds a receipt announcement is kept: an owner that missed it (down meanwhile) finds the receipt among the
unmatched ones when it recovers."""


class WorkerExchange:
    """One worker's side of the hand-offs. ``start`` before recovery (so nothing committed in between is missed),
    then ``run`` until cancelled."""

    def __init__(self, gateway: Gateway, store: Store, *, interval: float = 0.1) -> None:
        self.gateway = gateway
        self.store = store
        self.interval = interval
        self.receipts_after = 0
        self.stops_after = 0
        self.receipts_matched = 0
        self.deliveries_claimed = 0
        self._next_prune = 0.0

    async def start(self) -> None:
        self.receipts_after = await self.store.last_handoff()
        self.stops_after = await self.store.last_stop_change()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception as exc:  # a busy or failing store: the next turn tries again, nothing is lost
                log.warning("exchange_poll_failed", error=repr(exc))

    async def poll(self) -> None:
        me = self.gateway.worker.index
        for handed in await self.store.receipt_handoffs(self.receipts_after):
            self.receipts_after = handed.seq
            if handed.worker != me and self.gateway.handed_receipt(handed.record):
                self.receipts_matched += 1
        for change in await self.store.stop_changes(self.stops_after):
            self.stops_after = change.seq
            self.gateway.stop_changed_elsewhere(change.scope, change.msisdn, change.stopped)
        accounts = [
            name for name, account in self.gateway.accounts.items() if self.gateway.upstream.can_deliver(account)
        ]
        if accounts:
            for message in await self.store.claim_deliveries(accounts):
                self.deliveries_claimed += 1
                self.gateway.upstream.deliver(message)
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + 60.0
            self.store.prune_handoffs(now - HANDOFF_RETENTION)
