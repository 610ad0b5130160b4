"""Receipt correlation for one connector: SMSC message id → the segment it belongs to.

Ids are compared by key (``smppgw.smpp.receipt``): the same id written as hex, decimal, with leading zeros or in
another case matches. With ``IdForm.AUTO`` a submit_sm_resp id is stored under every plausible reading and a receipt id
is looked up under its readings in order; when one key fits several live segments, the one whose id is written the
same way wins. A connector known to write ids one way (e.g. hex in responses, decimal in receipts) is configured
with fixed radices and then never guesses.

A receipt that arrives before its submit_sm_resp was recorded is parked (bounded count, TTL) and returned by
``register`` when the response lands. Pure: time is an argument.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum
from typing import Generic, TypeVar

from smppgw.smpp.receipt import IdRadix, message_id_key, message_id_keys, normalise_message_id

from .compact import IntMultimap

T = TypeVar("T")  # what a segment reference is (the service uses (Message, part))
R = TypeVar("R")  # what a parked receipt is


class IdForm(StrEnum):
    AUTO = "auto"
    TEXT = "text"
    DECIMAL = "decimal"
    HEX = "hex"


def _keys(raw: str, form: IdForm) -> tuple[str, ...]:
    if form is IdForm.AUTO:
        return message_id_keys(raw)
    key = message_id_key(raw, IdRadix(form.value))
    return () if key is None else (key,)


class Correlator(Generic[T, R]):
    """The live segments of one connector and its parked receipts."""

    def __init__(
        self,
        *,
        response_form: IdForm = IdForm.AUTO,
        receipt_form: IdForm = IdForm.AUTO,
        max_parked: int = 100_000,
        parked_ttl: float = 600.0,
    ) -> None:
        self.response_form = response_form
        self.receipt_form = receipt_form
        self.max_parked = max_parked
        self.parked_ttl = parked_ttl
        # key → (normalised id, segment), or a list of them when several live segments share the key (rare): one
        # tuple per segment shared by its keys, and no list for the usual single entry (memory per awaiting part)
        self._live: dict[str, tuple[str, T] | list[tuple[str, T]]] = {}
        self._parked: OrderedDict[str, tuple[float, str, R]] = OrderedDict()  # key → (parked at, raw id, receipt)
        self.ambiguous_matches = 0
        self.parked_evicted = 0
        # Segments whose message left memory: hash of each key → a reference (message id and part, packed by the
        # caller). About 50 bytes a key instead of a live entry's 200 and its message's 1,300.
        self._retired = IntMultimap()

    def __len__(self) -> int:
        """Number of live keys (a numeric id may be stored under two)."""
        return len(self._live)

    @property
    def parked(self) -> int:
        return len(self._parked)

    def register(self, smsc_id: str, segment: T) -> list[R]:
        """Remember ``smsc_id`` for ``segment``; returns receipts parked for it (now matched and unparked)."""
        normalised = normalise_message_id(smsc_id)
        keys = _keys(smsc_id, self.response_form)
        entry = (normalised, segment)
        for key in keys:
            current = self._live.get(key)
            if current is None:
                self._live[key] = entry
            elif isinstance(current, list):
                current.append(entry)
            else:
                self._live[key] = [current, entry]
        if not self._parked:
            return []
        matched = []
        for key in keys:
            parked = self._parked.pop(key, None)
            if parked is not None:
                matched.append(parked[2])
                self._unpark_aliases(parked[1])
        return matched

    def match(self, receipt_id: str) -> T | None:
        """The live segment ``receipt_id`` refers to, or None."""
        normalised: str | None = None
        for key in _keys(receipt_id, self.receipt_form):
            candidates = self._live.get(key)
            if candidates is None:
                continue
            if not isinstance(candidates, list):
                return candidates[1]
            normalised = normalised or normalise_message_id(receipt_id)
            for written, segment in candidates:
                if written == normalised:
                    return segment
            self.ambiguous_matches += 1
            return candidates[0][1]
        return None

    def forget(self, smsc_id: str, segment: T) -> None:
        """Drop ``segment`` (its final receipt arrived, or it timed out). Segments compare by value: callers pass a
        new ``(message, part)`` tuple (equal: the same message object, the same part; tuple equality checks the
        message's identity first, so this costs no field comparison)."""
        for key in _keys(smsc_id, self.response_form):
            candidates = self._live.get(key)
            if candidates is None:
                continue
            if not isinstance(candidates, list):
                if candidates[1] == segment:
                    del self._live[key]
                continue
            remaining = [c for c in candidates if c[1] != segment]
            if len(remaining) > 1:
                self._live[key] = remaining
            elif remaining:
                self._live[key] = remaining[0]
            else:
                del self._live[key]

    @property
    def retired(self) -> int:
        """Keys of retired segments (a numeric id may be stored under two)."""
        return len(self._retired)

    def retire(self, smsc_id: str, segment: T, reference: int) -> None:
        """Keep only ``reference`` for ``segment`` (its message leaves memory); ``match_retired`` finds it."""
        self.forget(smsc_id, segment)
        for key in _keys(smsc_id, self.response_form):
            self._retired.add(hash(key), reference)

    def match_retired(self, receipt_id: str) -> list[int]:
        """References retired under a reading of ``receipt_id``: candidates (hashes may collide), which the caller
        checks against the stored SMSC id with ``same_id``."""
        found: list[int] = []
        for key in _keys(receipt_id, self.receipt_form):
            found.extend(r for r in self._retired.get(hash(key)) if r not in found)
        return found

    def forget_retired(self, smsc_id: str, reference: int) -> None:
        for key in _keys(smsc_id, self.response_form):
            self._retired.remove(hash(key), reference)

    def same_id(self, smsc_id: str, receipt_id: str) -> bool:
        """Whether a receipt's id refers to the id an SMSC answered (under this connector's reading of ids)."""
        return not set(_keys(smsc_id, self.response_form)).isdisjoint(_keys(receipt_id, self.receipt_form))

    @staticmethod
    def written_alike(smsc_id: str, receipt_id: str) -> bool:
        """The same id written the same way (case and leading zeros aside): what decides between several fits."""
        return normalise_message_id(smsc_id) == normalise_message_id(receipt_id)

    def park(self, receipt_id: str, receipt: R, now: float) -> R | None:
        """Keep an unmatched receipt until its id is registered; returns one evicted to stay within bounds."""
        keys = _keys(receipt_id, self.receipt_form) or (receipt_id,)
        evicted: R | None = None
        if len(self._parked) + len(keys) > self.max_parked and self._parked:
            _, (_, raw, evicted) = self._parked.popitem(last=False)
            self._unpark_aliases(raw)
            self.parked_evicted += 1
        for key in keys:
            self._parked[key] = (now, receipt_id, receipt)
        return evicted

    def expire_parked(self, now: float) -> list[R]:
        """Remove and return receipts parked for longer than ``parked_ttl`` (oldest first)."""
        expired: list[R] = []
        deadline = now - self.parked_ttl
        while self._parked:
            key, (parked_at, raw, receipt) = next(iter(self._parked.items()))
            if parked_at > deadline:
                break
            del self._parked[key]
            self._unpark_aliases(raw)
            expired.append(receipt)
        return expired

    def _unpark_aliases(self, raw_id: str) -> None:
        for key in _keys(raw_id, self.receipt_form) or (raw_id,):
            self._parked.pop(key, None)
