"""What worker processes tell each other through the store (``smppgw run --workers N``).

Each worker polls four things: receipts another worker received but could not match (the message may be ours),
stop-list changes made by another worker, cancel_sm requests for its messages that reached another worker, and
receipts owed to upstream accounts that this worker holds a receiver session of. Polling costs four indexed reads
per interval, nothing per message.
"""

from __future__ import annotations

import asyncio
import time

from smppgw.core.message import Message
from smppgw.obs.logging import get_logger
from smppgw.store.base import Store

from .gateway import Gateway

log = get_logger("smppgw.exchange")

PAGE = 2000
"""Rows read per kind and round; a full page makes the next round start at once."""

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
        self.cancels_after = 0
        self.receipts_matched = 0
        self.deliveries_claimed = 0
        self._next_prune = 0.0

    async def start(self) -> None:
        self.receipts_after = await self.store.last_handoff()
        self.stops_after = await self.store.last_stop_change()
        self.cancels_after = await self.store.last_cancel_handoff()
        worker = self.gateway.worker
        await self.store.release_claims(worker.index, worker.count)  # what this worker held died with it

    async def run(self) -> None:
        busy = False
        while True:
            await asyncio.sleep(0 if busy else self.interval)  # a full page: read on at once, the backlog first
            try:
                busy = await self.poll()
            except Exception as exc:  # a busy or failing store: the next turn tries again, nothing is lost
                busy = False
                log.warning("exchange_poll_failed", error=repr(exc))

    async def poll(self) -> bool:
        """One round; True if a page came back full (more is waiting)."""
        me = self.gateway.worker.index
        handed_receipts = await self.store.receipt_handoffs(self.receipts_after, PAGE)
        for handed in handed_receipts:
            self.receipts_after = handed.seq  # one bad row must not stop the others (nor be read again forever)
            try:
                if handed.worker != me and self.gateway.handed_receipt(handed.record):
                    self.receipts_matched += 1
            except Exception as exc:
                log.error("handed_receipt_failed", receipt=handed.record.id, error=repr(exc))
        changes = await self.store.stop_changes(self.stops_after, PAGE)
        for change in changes:
            self.gateway.stop_changed_elsewhere(change.scope, change.msisdn, change.stopped)
        if changes:
            self.stops_after = changes[-1].seq
        cancels = await self.store.cancel_handoffs(self.cancels_after, PAGE)
        for seq, message_id, account, at in cancels:
            self.cancels_after = seq
            if not self.gateway.owned_elsewhere(message_id):
                self.gateway.cancel_asked(message_id, account, at)
        upstream = self.gateway.upstream
        accounts = [name for name, account in self.gateway.accounts.items() if upstream.can_deliver(account)]
        if upstream.pending_count >= upstream.max_pending:
            accounts = []  # full: what it took now it would give back at once, and take again next round
        claimed: list[Message] = await self.store.claim_deliveries(accounts, me, PAGE) if accounts else []
        for message in claimed:
            self.deliveries_claimed += 1
            upstream.take_leased(message)
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + 60.0
            self.store.prune_handoffs(now - HANDOFF_RETENTION)
        return PAGE in (len(handed_receipts), len(changes), len(cancels), len(claimed))
