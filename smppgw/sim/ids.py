"""Message ids the simulator hands out: hex, decimal or UUID, unique within one run, cheap to make.

Ids come from a counter that starts at a random offset (so two runs, or two simulators, rarely reuse ids), written in
the configured form. A UUID is a random per-run prefix with the counter in its last 48 bits (version 4 and the
RFC 4122 variant set), so it is a well-formed UUID without a ``uuid4()`` call per message.
The receipt may write the same number in another radix (``receipts.id_format``): a quirk of real SMSCs that the
gateway's correlation must survive.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .config import IdFormat, ReceiptIdFormat

IdPair = tuple[str, str]
"""(id in submit_sm_resp, id in the receipt)."""

_COUNTER_START = (1 << 32, 1 << 40)
"""Counters start between 2**32 and 2**40: 9-11 hex digits, 10-13 decimal digits, like operators' ids."""


class IdGenerator:
    """``next()`` returns the next (response id, receipt id) pair."""

    __slots__ = ("_counter", "_prefix", "next", "response_format")

    def __init__(self, response_format: IdFormat, receipt_format: ReceiptIdFormat, rng: random.Random) -> None:
        self.response_format = response_format
        self._counter = rng.randrange(*_COUNTER_START)
        self._prefix = _uuid_prefix(rng)
        self.next: Callable[[], IdPair] = self._choose(response_format, receipt_format)

    def _choose(self, response: IdFormat, receipt: ReceiptIdFormat) -> Callable[[], IdPair]:
        if response == "uuid":
            return self._uuid
        effective = response if receipt == "same" else receipt
        if response == "hex":
            return self._hex if effective == "hex" else self._hex_dec
        return self._dec if effective == "dec" else self._dec_hex

    def _step(self) -> int:
        self._counter += 1
        return self._counter

    def _hex(self) -> IdPair:
        self._counter += 1
        text = f"{self._counter:x}"
        return text, text

    def _dec(self) -> IdPair:
        self._counter += 1
        text = str(self._counter)
        return text, text

    def _hex_dec(self) -> IdPair:
        n = self._step()
        return f"{n:x}", str(n)

    def _dec_hex(self) -> IdPair:
        n = self._step()
        return str(n), f"{n:x}"

    def _uuid(self) -> IdPair:
        self._counter += 1
        text = f"{self._prefix}{self._counter & 0xFFFF_FFFF_FFFF:012x}"
        return text, text


def _uuid_prefix(rng: random.Random) -> str:
    """``xxxxxxxx-xxxx-4xxx-Vxxx-`` with V in 8..b (RFC 4122 variant)."""
    a, b, c, d = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(14)
    return f"{a:08x}-{b:04x}-4{c:03x}-{0x8000 | d:04x}-"
