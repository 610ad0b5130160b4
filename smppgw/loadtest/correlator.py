"""Receipts ↔ submits: every submit_sm part gets an index; its submit_sm_resp id and the ids of receipts meet here.

Sans-IO: time is an argument. Memory is per part (three array slots, one status byte, the id's index keys), bounded
by the run's count; receipts that arrive before their submit_sm_resp are *parked* (bounded by ``max_parked``, the
oldest dropped first and counted).

Id matching. With explicit radixes (``hex`` for responses, ``decimal`` for receipts...) each id has exactly one key
(``smpp.receipt.message_id_key``) and matching is a dict lookup. In ``auto`` mode (no radixes given) an id has every
key of ``smpp.receipt.message_id_keys`` - its first, most plausible reading is the *primary* key. Matching goes by
tiers:

1. the receipt's primary key equals a response's primary key: the same reading on both sides - accepted at once;
2. any other pair of keys (hex on one side, decimal on the other, for ids made only of digits): a guess. While
   responses are still outstanding the right part may simply not have its response yet, so such a receipt is parked;
   once the caller calls ``settle()`` (no response outstanding any more) parked receipts are resolved by all tiers,
   preferring parts that have no final receipt yet, and later receipts are matched by all tiers at once.

Counting (``CorrelationCounts``): ``receipts = matched + intermediate + duplicates + unmatched + parked``; ``matched``
is the number of parts with a final receipt; ``missing`` (at ``finish``) is the acknowledged parts without one.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum, IntEnum
from typing import Final

import msgspec

from smppgw.smpp.receipt import IdRadix, message_id_key, message_id_keys, normalise_message_id

from .histogram import LatencyHistogram

KeyFunction = Callable[[str], tuple[str, ...]]


class PartStatus(IntEnum):
    WAITING = 0  # sent, no response yet
    ACKED = 1  # submit_sm_resp ESME_ROK: waiting for the receipt
    REJECTED = 2  # submit_sm_resp with an error status
    FATE_UNKNOWN = 3  # no response (timeout, disconnect)
    RECEIPTED = 4  # a final receipt matched


class ReceiptOutcome(Enum):
    MATCHED = "matched"  # first final receipt of a part
    INTERMEDIATE = "intermediate"  # a non-final receipt of a known part
    DUPLICATE = "duplicate"  # another final receipt of a part that already has one
    PARKED = "parked"  # no part (yet): kept until its response lands or the run ends
    DROPPED = "dropped"  # no part and no room to park (max_parked 0)


class CorrelationCounts(msgspec.Struct, frozen=True, kw_only=True):
    parts: int  # submit_sm PDUs registered
    acked: int
    rejected: int
    fate_unknown: int
    acked_without_id: int  # ESME_ROK with an empty message_id: such a part can never be matched
    receipts: int
    matched: int
    intermediate: int
    duplicates: int
    unmatched: int
    missing: int  # acknowledged parts without a final receipt (final only after ``finish``)
    parked: int  # parked right now
    parked_peak: int
    parked_dropped: int  # parked receipts evicted by the bound (also counted in unmatched)
    guessed: int  # matches across readings (tier 2): hex one side, decimal the other
    reused_ids: int  # a response repeated an id still on record (an SMSC bug: the newer part takes the id)


class _Parked:
    __slots__ = ("arrival", "finals", "intermediates", "keys")

    def __init__(self, keys: tuple[str, ...], arrival: float) -> None:
        self.keys = keys
        self.arrival = arrival
        self.finals = 0
        self.intermediates = 0


_WAITING: Final = PartStatus.WAITING.value
_ACKED: Final = PartStatus.ACKED.value
_RECEIPTED: Final = PartStatus.RECEIPTED.value


def _keys_in(radix: IdRadix) -> KeyFunction:
    def keys(raw: str) -> tuple[str, ...]:
        key = message_id_key(raw, radix)
        if key is None:  # not valid in the radix: compare as text, never equal to a numeric key of another id
            key = "~" + normalise_message_id(raw)
        return (key,)

    return keys


class Correlator:
    """Tracks parts from send to final receipt and counts every receipt exactly once."""

    def __init__(
        self, *, max_parked: int = 100_000, resp_radix: IdRadix | None = None, receipt_radix: IdRadix | None = None
    ) -> None:
        if (resp_radix is None) != (receipt_radix is None):
            raise ValueError("give both radixes or neither")
        self.max_parked = max_parked
        self._resp_keys: KeyFunction = message_id_keys if resp_radix is None else _keys_in(resp_radix)
        self._receipt_keys: KeyFunction = message_id_keys if receipt_radix is None else _keys_in(receipt_radix)
        self.scheduled = array("d")
        self.sent = array("d")
        self.status = bytearray()
        self.receipt_from_scheduled = LatencyHistogram()
        self.receipt_from_sent = LatencyHistogram()
        self._primary: dict[str, int] = {}
        self._secondary: dict[str, int] = {}
        self._parked: OrderedDict[str, _Parked] = OrderedDict()
        self._settled = False
        self.acked = self.rejected = self.fate_unknown = self.acked_without_id = 0
        self.receipts = self.matched = self.intermediate = self.duplicates = self.unmatched = 0
        self.parked_peak = self.parked_dropped = self.guessed = self.reused_ids = 0
        self._missing: int | None = None

    # ------------------------------------------------------------------ parts

    @property
    def parts(self) -> int:
        return len(self.status)

    @property
    def awaiting_receipts(self) -> int:
        """Acknowledged parts still without a final receipt."""
        return self.acked - self.matched

    @property
    def parked(self) -> int:
        return len(self._parked)

    def add_part(self, scheduled: float, sent: float) -> int:
        """Register a submit_sm part as sent; returns its index."""
        self.scheduled.append(scheduled)
        self.sent.append(sent)
        self.status.append(_WAITING)
        return len(self.status) - 1

    def on_response(self, part: int, message_id: str, now: float) -> None:
        """The part's submit_sm_resp with ESME_ROK and the SMSC's ``message_id``."""
        if self.status[part] != _WAITING:
            return
        self.status[part] = _ACKED
        self.acked += 1
        keys = self._resp_keys(message_id)
        if not keys:
            self.acked_without_id += 1
            return
        primary = self._primary
        if keys[0] in primary:
            self.reused_ids += 1
        primary[keys[0]] = part
        if len(keys) > 1:
            secondary = self._secondary
            for key in keys[1:]:
                secondary.setdefault(key, part)
        if self._parked:
            entry = self._parked.pop(keys[0], None)
            if entry is not None:
                self._apply(part, entry)

    def on_failure(self, part: int, *, fate_unknown: bool) -> None:
        """The part was refused (error status) or its fate is unknown (no response)."""
        if self.status[part] != _WAITING:
            return
        if fate_unknown:
            self.status[part] = PartStatus.FATE_UNKNOWN
            self.fate_unknown += 1
        else:
            self.status[part] = PartStatus.REJECTED
            self.rejected += 1

    # ------------------------------------------------------------------ receipts

    def on_receipt(self, message_id: str, final: bool, now: float) -> ReceiptOutcome:
        """A delivery receipt for ``message_id`` arrived at ``now``; ``final`` when its state is final."""
        self.receipts += 1
        keys = self._receipt_keys(message_id)
        part = self._primary.get(keys[0]) if keys else None
        if part is None and self._settled and keys:
            part = self._guess(keys)
        if part is not None:
            return self._count(part, final, now)
        return self._park(keys or ("",), final, now)

    def settle(self) -> None:
        """No response is outstanding any more: resolve parked receipts by every tier, and later ones at once."""
        self._settled = True
        for key, entry in list(self._parked.items()):
            part = self._lookup(entry.keys)
            if part is not None:
                del self._parked[key]
                self._apply(part, entry)

    def finish(self) -> CorrelationCounts:
        """End of the run: settle, count what is still parked as unmatched and the parts without receipt as missing."""
        if not self._settled:
            self.settle()
        while self._parked:
            _, entry = self._parked.popitem(last=False)
            self.unmatched += entry.finals + entry.intermediates
        self._missing = self.acked - self.matched
        return self.counts()

    def counts(self) -> CorrelationCounts:
        parked = sum(e.finals + e.intermediates for e in self._parked.values()) if self._parked else 0
        return CorrelationCounts(
            parts=self.parts,
            acked=self.acked,
            rejected=self.rejected,
            fate_unknown=self.fate_unknown,
            acked_without_id=self.acked_without_id,
            receipts=self.receipts,
            matched=self.matched,
            intermediate=self.intermediate,
            duplicates=self.duplicates,
            unmatched=self.unmatched,
            missing=self._missing if self._missing is not None else 0,
            parked=parked,
            parked_peak=self.parked_peak,
            parked_dropped=self.parked_dropped,
            guessed=self.guessed,
            reused_ids=self.reused_ids,
        )

    # ------------------------------------------------------------------ internals

    def _count(self, part: int, final: bool, arrival: float) -> ReceiptOutcome:
        if not final:
            self.intermediate += 1
            return ReceiptOutcome.INTERMEDIATE
        if self.status[part] == _RECEIPTED:
            self.duplicates += 1
            return ReceiptOutcome.DUPLICATE
        self.status[part] = _RECEIPTED
        self.matched += 1
        self.receipt_from_scheduled.record(arrival - self.scheduled[part])
        self.receipt_from_sent.record(arrival - self.sent[part])
        return ReceiptOutcome.MATCHED

    def _apply(self, part: int, entry: _Parked) -> None:
        for _ in range(entry.intermediates):
            self._count(part, False, entry.arrival)
        for _ in range(entry.finals):
            self._count(part, True, entry.arrival)

    def _park(self, keys: tuple[str, ...], final: bool, now: float) -> ReceiptOutcome:
        parked = self._parked
        entry = parked.get(keys[0])
        if entry is None:
            if self.max_parked <= 0:
                self.unmatched += 1
                self.parked_dropped += 1
                return ReceiptOutcome.DROPPED
            while len(parked) >= self.max_parked:
                _, old = parked.popitem(last=False)
                dropped = old.finals + old.intermediates
                self.unmatched += dropped
                self.parked_dropped += dropped
            entry = parked[keys[0]] = _Parked(keys, now)
            self.parked_peak = max(self.parked_peak, len(parked))
        if final:
            entry.finals += 1
        else:
            entry.intermediates += 1
        return ReceiptOutcome.PARKED

    def _lookup(self, keys: tuple[str, ...]) -> int | None:
        """Every tier: the primary reading first, then guesses (parts without a final receipt preferred)."""
        if not keys:
            return None
        part = self._primary.get(keys[0])
        return part if part is not None else self._guess(keys)

    def _guess(self, keys: tuple[str, ...]) -> int | None:
        candidates = [self._primary.get(key) for key in keys[1:]]
        candidates += [self._secondary.get(key) for key in keys]
        found = [part for part in candidates if part is not None]
        if not found:
            return None
        self.guessed += 1
        for part in found:
            if self.status[part] != _RECEIPTED:
                return part
        return found[0]
