"""Messages awaiting receipts beyond what memory should hold.

A message sent whole (SUBMITTED) waits for its receipts, often for seconds, sometimes for days (receipt_timeout). Kept
whole it costs about 1.3 KB of memory; a million of them would need 1.4 GB. Once ``hot_limit`` newer messages have
been sent after it, a message still waiting leaves memory: its correlator entries become compact references (about
50 bytes a key, ``Correlator.retire``) and its deadline an id in a per-minute bucket. A receipt that matches a
reference, or a deadline that falls due, reads the message back from the store (in batches) and the gateway goes on
as if it had never left. The store holds everything needed: the message, its parts' SMSC ids and the receipts so far.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import deque
from typing import TYPE_CHECKING

from smppgw.core.message import Message, State
from smppgw.obs.logging import get_logger
from smppgw.smpp.constants import MessageState
from smppgw.store.base import ReceiptRecord

if TYPE_CHECKING:
    from .connector import Connector
    from .gateway import Gateway

log = get_logger("smppgw.retired")

BUCKET_SECONDS = 60.0
"""Deadlines of retired messages are kept per minute: one ends at most this late after validity + receipt grace."""

BATCH = 500
"""Messages read back from the store per query round."""


def reference(message_id: str, part: int) -> int:
    """The compact reference of one part: the message id (a 64-bit number) and the part, in one int64."""
    return (int(message_id, 16) << 8) | part


def unpack(ref: int) -> tuple[str, int]:
    return f"{ref >> 8:016x}", ref & 0xFF


class RetiredMessages:
    """The gateway's side of retirement: who leaves memory, and what brings a message back."""

    def __init__(self, gateway: Gateway, hot_limit: int) -> None:
        self.gateway = gateway
        self.hot_limit = hot_limit
        self._sent: deque[str] = deque()  # ids of messages sent whole, oldest first
        self._deadlines: dict[int, array[int]] = {}  # minute → ids (as numbers) of retired messages due then
        self._receipts: list[tuple[Connector, list[int], ReceiptRecord, MessageState | None]] = []
        self._expiring: list[str] = []
        self._wakeup = asyncio.Event()
        self.count = 0  # messages retired so far
        self.restored = 0  # messages read back (a receipt or a deadline)

    # ------------------------------------------------------------------ leaving memory

    def sent_whole(self, message: Message) -> None:
        """``message`` is SUBMITTED: it may leave memory once ``hot_limit`` newer ones have been sent."""
        self._sent.append(message.id)
        if len(self._sent) > self.hot_limit:
            self._retire(self._sent.popleft())

    def _retire(self, message_id: str) -> None:
        gateway = self.gateway
        message = gateway.live.get(message_id)
        if message is None or message.state is not State.SUBMITTED:
            return  # finished (usually: its receipt came), or not waiting for receipts only
        connector = gateway.connectors.get(message.connector)
        if connector is None:
            return
        for part, smsc_id in enumerate(message.smsc_ids):
            if smsc_id is not None and message.part_states[part] is None:
                connector.correlator.retire(smsc_id, (message, part), reference(message.id, part))
        del gateway.live[message_id]
        due = message.expires_at + connector.config.receipt_timeout
        minute = int(due // BUCKET_SECONDS) + 1  # the bucket's minute starts after ``due``: never early
        bucket = self._deadlines.get(minute)
        if bucket is None:
            bucket = self._deadlines[minute] = array("q")
        bucket.append(int(message_id, 16))
        self.count += 1

    # ------------------------------------------------------------------ coming back

    def receipt(self, connector: Connector, record: ReceiptRecord, state: MessageState | None) -> bool:
        """A receipt that matched no message in memory: True if it may be a retired one's (read back, then applied;
        the receipt is stored unlinked meanwhile and linked then, like a parked one)."""
        refs = connector.correlator.match_retired(record.smsc_id) if record.smsc_id else []
        if not refs:
            return False
        self._receipts.append((connector, refs, record, state))
        self._wakeup.set()
        return True

    def expire(self, now: float) -> None:
        """From the sweeper: retired messages whose receipt grace has ended are read back to be ended."""
        limit = int(now // BUCKET_SECONDS)
        for minute in [m for m in self._deadlines if m <= limit]:
            self._expiring.extend(f"{i:016x}" for i in self._deadlines.pop(minute))
        if self._expiring:
            self._wakeup.set()

    async def run(self) -> None:
        """Read retired messages back when a receipt or a deadline needs them (one batch query per round)."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._receipts or self._expiring:
                receipts, self._receipts = self._receipts[:BATCH], self._receipts[BATCH:]
                expiring, self._expiring = self._expiring[:BATCH], self._expiring[BATCH:]
                try:
                    await self._restore(receipts, expiring)
                except Exception as exc:  # a read failed: the same work is tried again (the receipts are stored)
                    log.error("retired_restore_failed", error=repr(exc), receipts=len(receipts))
                    self._receipts[:0] = receipts
                    self._expiring[:0] = expiring
                    await asyncio.sleep(1.0)

    async def _restore(
        self,
        receipts: list[tuple[Connector, list[int], ReceiptRecord, MessageState | None]],
        expiring: list[str],
    ) -> None:
        wanted = {unpack(ref)[0] for _, refs, _, _ in receipts for ref in refs}.union(expiring)
        # What earlier rounds applied (a part's receipt linked, a message ended) must be in the store before it is
        # read back, or a message's second part would find its first still waiting.
        committed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.gateway.store.after_commit(committed.set_result)
        if not await committed:
            raise RuntimeError("the store failed")
        loaded = {m.id: m for m in await self.gateway.store.load_open(sorted(wanted))}
        for message in loaded.values():
            self.gateway.read_part_states(message)
            if None not in message.smsc_ids:  # as recovery does: the store records SUBMITTING, not SUBMITTED
                message.state = State.SUBMITTED
        self.restored += len(loaded)
        for connector, refs, record, state in receipts:
            self._apply(connector, refs, record, state, loaded)
        for message_id in expiring:
            due = loaded.get(message_id)
            if due is not None and not due.state.is_final:
                self._forget(due)
                self.gateway.end_unanswered(due)

    def _apply(
        self,
        connector: Connector,
        refs: list[int],
        record: ReceiptRecord,
        state: MessageState | None,
        loaded: dict[str, Message],
    ) -> None:
        candidates: list[tuple[int, Message, int, str]] = []
        for ref in refs:
            message_id, part = unpack(ref)
            message = loaded.get(message_id)
            if message is None or message.state.is_final or part >= len(message.smsc_ids):
                continue
            smsc_id = message.smsc_ids[part]
            if message.part_states[part] is not None:
                continue  # that part was answered for good already (earlier in this round): as if forgotten
            if smsc_id is not None and connector.correlator.same_id(smsc_id, record.smsc_id):
                candidates.append((ref, message, part, smsc_id))  # else a hash collision, not this message
        if not candidates:
            self.gateway.park_unmatched(connector, record, state)  # retired meanwhile, ended, or a collision
            return
        # Several messages fit (an id like "100" also reads as hex 0x100 = 256): the one written the same way as the
        # receipt's id wins, as for messages in memory (``Correlator.match``).
        exact = [c for c in candidates if connector.correlator.written_alike(c[3], record.smsc_id)]
        ref, message, part, smsc_id = (exact or candidates)[0]
        if state is not None and state.is_final:
            connector.correlator.forget_retired(smsc_id, ref)
        self.gateway.apply_restored(connector, message, part, record, state)
        if _ended(message):  # mypy narrows ``message.state.is_final`` from the check above; this reads it again
            self._forget(message)

    def _forget(self, message: Message) -> None:
        """A restored message ended: its other parts' references go too."""
        connector = self.gateway.connectors.get(message.connector)
        if connector is None:
            return
        for part, smsc_id in enumerate(message.smsc_ids):
            if smsc_id is not None:
                connector.correlator.forget_retired(smsc_id, reference(message.id, part))


def _ended(message: Message) -> bool:
    return message.state.is_final
