"""Receipts ↔ submits: parking, id forms, duplicates, missing, the parking bound, and a randomised property."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.loadtest.correlator import CorrelationCounts, Correlator, PartStatus, ReceiptOutcome
from smppgw.smpp.receipt import IdRadix


def sent(c: Correlator, n: int, at: float = 0.0) -> list[int]:
    return [c.add_part(at, at) for _ in range(n)]


def check_invariant(counts: CorrelationCounts) -> None:
    assert counts.receipts == (
        counts.matched + counts.intermediate + counts.duplicates + counts.unmatched + counts.parked
    )


def test_receipt_after_response() -> None:
    c = Correlator()
    (p,) = sent(c, 1, at=1.0)
    c.on_response(p, "12345678901", 1.1)
    assert c.on_receipt("12345678901", True, 1.5) is ReceiptOutcome.MATCHED
    counts = c.finish()
    assert (counts.matched, counts.missing, counts.unmatched) == (1, 0, 0)
    assert c.receipt_from_sent.max_us == 500_000
    assert c.status[p] == PartStatus.RECEIPTED


def test_receipt_before_response_is_parked_then_matched() -> None:
    c = Correlator()
    (p,) = sent(c, 1, at=1.0)
    assert c.on_receipt("ABC123", True, 1.2) is ReceiptOutcome.PARKED
    assert c.counts().parked == 1
    c.on_response(p, "abc123", 1.3)
    counts = c.finish()
    assert (counts.matched, counts.parked, counts.parked_peak, counts.unmatched) == (1, 0, 1, 0)
    assert c.receipt_from_sent.max_us == 200_000  # the receipt's own arrival time counts


def test_id_forms_in_auto_mode() -> None:
    u = uuid.UUID(int=0x1234_5678_9ABC_DEF0_1122_3344_5566_7788)
    pairs = [
        ("1A2B3C", "1715004"),  # hex response, decimal receipt
        ("1715005", "1a2b3d"),  # decimal response, hex receipt
        ("000000000123456789", "123456789"),  # leading zeros
        ("DEADBEEF", "deadbeef"),  # case
        (str(u), u.hex.upper()),  # dashed UUID vs 32 hex digits
        ("msg-7f/x", "MSG-7F/X"),  # opaque text
    ]
    c = Correlator()
    parts = sent(c, len(pairs))
    for part, (resp_id, _) in zip(parts, pairs, strict=True):
        c.on_response(part, resp_id, 0.1)
    outcomes = [c.on_receipt(receipt_id, True, 0.2) for _, receipt_id in pairs]
    assert outcomes == [ReceiptOutcome.MATCHED] * len(pairs)
    assert all(c.status[p] == PartStatus.RECEIPTED for p in parts)


def test_all_digit_hex_response_with_decimal_receipt_is_matched_once_settled() -> None:
    c = Correlator()
    (p,) = sent(c, 1)
    c.on_response(p, "12345678", 0.1)  # hex, but made of digits only: read as decimal first
    assert c.on_receipt(str(0x12345678), True, 0.2) is ReceiptOutcome.PARKED  # a guess: wait for more responses
    c.settle()
    counts = c.finish()
    assert (counts.matched, counts.guessed, counts.unmatched) == (1, 1, 0)


def test_small_sequential_ids_with_early_receipts_are_not_mismatched() -> None:
    # decimal "10" also reads as hex 0x10 = 16: the early receipt of message "16" must not go to message "10"
    c = Correlator()
    parts = sent(c, 30)
    for i in range(10):
        c.on_response(parts[i], str(i + 1), 0.1)
    for i in range(10, 30):
        assert c.on_receipt(str(i + 1), True, 0.2) is ReceiptOutcome.PARKED
    for i in range(10, 30):
        c.on_response(parts[i], str(i + 1), 0.3)
    for i in range(10):
        assert c.on_receipt(str(i + 1), True, 0.4) is ReceiptOutcome.MATCHED
    counts = c.finish()
    assert (counts.matched, counts.duplicates, counts.unmatched, counts.guessed) == (30, 0, 0, 0)


def test_explicit_radixes() -> None:
    c = Correlator(resp_radix=IdRadix.HEX, receipt_radix=IdRadix.DECIMAL)
    parts = sent(c, 2)
    c.on_response(parts[0], "12345678", 0.1)
    c.on_response(parts[1], "ff", 0.1)
    assert c.on_receipt(str(0x12345678), True, 0.2) is ReceiptOutcome.MATCHED
    assert c.on_receipt("0255", True, 0.2) is ReceiptOutcome.MATCHED
    assert c.on_receipt("12345678", True, 0.2) is ReceiptOutcome.PARKED  # decimal 12345678 was never issued
    counts = c.finish()
    assert (counts.matched, counts.unmatched, counts.guessed) == (2, 1, 0)


def test_duplicates_missing_intermediate_and_unknown() -> None:
    c = Correlator()
    parts = sent(c, 4)
    for i, p in enumerate(parts):
        c.on_response(p, f"{1000 + i}", 0.1)
    assert c.on_receipt("1000", False, 0.2) is ReceiptOutcome.INTERMEDIATE  # ENROUTE first
    assert c.on_receipt("1000", True, 0.3) is ReceiptOutcome.MATCHED
    assert c.on_receipt("1000", True, 0.4) is ReceiptOutcome.DUPLICATE
    assert c.on_receipt("1001", True, 0.3) is ReceiptOutcome.MATCHED
    assert c.on_receipt("999999", True, 0.3) is ReceiptOutcome.PARKED  # nobody's
    c.on_receipt("", True, 0.3)  # empty id: unmatched
    assert c.awaiting_receipts == 2
    counts = c.finish()
    assert (counts.matched, counts.duplicates, counts.intermediate, counts.missing, counts.unmatched) == (2, 1, 1, 2, 2)
    check_invariant(counts)


def test_failures_are_not_awaited() -> None:
    c = Correlator()
    parts = sent(c, 3)
    c.on_failure(parts[0], fate_unknown=False)
    c.on_failure(parts[1], fate_unknown=True)
    c.on_response(parts[2], "", 0.1)  # ESME_ROK without an id
    c.on_response(parts[0], "55", 0.2)  # a late response after a failure is ignored
    counts = c.finish()
    assert (counts.rejected, counts.fate_unknown, counts.acked, counts.acked_without_id) == (1, 1, 1, 1)
    assert counts.missing == 1


def test_parking_is_bounded_oldest_dropped() -> None:
    c = Correlator(max_parked=2)
    parts = sent(c, 3)
    for i in range(3):
        c.on_receipt(str(500 + i), True, 0.1)
    c.on_receipt("502", True, 0.1)  # a duplicate joins its parked entry, no new slot
    counts = c.counts()
    assert (counts.parked, counts.parked_peak, counts.parked_dropped) == (3, 2, 1)
    for i, p in enumerate(parts):
        c.on_response(p, str(500 + i), 0.2)
    counts = c.finish()
    assert (counts.matched, counts.duplicates, counts.unmatched, counts.missing) == (2, 1, 1, 1)
    check_invariant(counts)


def test_no_parking_at_all() -> None:
    c = Correlator(max_parked=0)
    assert c.on_receipt("1", True, 0.0) is ReceiptOutcome.DROPPED
    assert c.finish().unmatched == 1


FORMS: dict[str, Callable[[int], str]] = {
    "dec": str,
    "dec0": lambda n: f"{n:020d}",
    "hex": lambda n: f"{n:X}",
    "hex0": lambda n: f"{n:016x}",
    "uuid": lambda n: str(uuid.UUID(int=n)),
    "uuidhex": lambda n: uuid.UUID(int=n).hex,
}
COMPATIBLE = [("dec", "dec"), ("dec", "dec0"), ("hex", "dec"), ("hex0", "dec"), ("dec", "hex"), ("uuid", "uuidhex")]
RADIX = {
    "dec": IdRadix.DECIMAL,
    "dec0": IdRadix.DECIMAL,
    "hex": IdRadix.HEX,
    "hex0": IdRadix.HEX,
    "uuid": IdRadix.TEXT,
    "uuidhex": IdRadix.TEXT,
}
SAME_RADIX = [(a, b) for a, b in COMPATIBLE if RADIX[a] is RADIX[b]]
"""Without configured radixes (auto), an SMSC writing responses in hex and receipts in decimal is ambiguous by
nature: ids 0x64 and 0x100 answered as "64" and "100" get receipts "100" and "256", and receipt "100" fits
response "100" as written and response "64" read as hex. Auto mode is only required to be exact when both sides
use one radix; cross-radix SMSCs are configured (``--id-radix hex:decimal``)."""


@settings(max_examples=500, deadline=None)
@given(
    mode=st.sampled_from([(pair, True) for pair in COMPATIBLE] + [(pair, False) for pair in SAME_RADIX]),
    ids=st.lists(st.integers(1, 2**40), min_size=1, max_size=40, unique=True),
    early=st.lists(st.booleans(), min_size=40, max_size=40),
    dup=st.lists(st.booleans(), min_size=40, max_size=40),
    drop=st.lists(st.booleans(), min_size=40, max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_every_receipt_counted_once(
    mode: tuple[tuple[str, str], bool],
    ids: list[int],
    early: list[bool],
    dup: list[bool],
    drop: list[bool],
    order: object,
) -> None:
    """Whatever the id forms, arrival order, duplicates and lost receipts: each receipt counted exactly once,
    every delivered part matched, and the lost ones reported missing."""
    pair, configured = mode
    resp_form, receipt_form = FORMS[pair[0]], FORMS[pair[1]]
    c = Correlator(resp_radix=RADIX[pair[0]], receipt_radix=RADIX[pair[1]]) if configured else Correlator()
    parts = sent(c, len(ids))
    events: list[tuple[str, int]] = []
    for i in range(len(ids)):
        receipts = [] if drop[i] else [("receipt", i)] * (2 if dup[i] else 1)
        events += [*receipts, ("resp", i)] if early[i] else [("resp", i), *receipts]
    order.shuffle(events)  # type: ignore[attr-defined]
    # a receipt cannot be sent before its submit was acknowledged by the SMSC, but it may overtake the response
    for kind, i in events:
        if kind == "resp":
            c.on_response(parts[i], resp_form(ids[i]), 1.0)
        else:
            c.on_receipt(receipt_form(ids[i]), True, 2.0)
    counts = c.finish()
    delivered = sum(1 for i in range(len(ids)) if not drop[i])
    assert counts.matched == delivered
    assert counts.duplicates == sum(1 for i in range(len(ids)) if dup[i] and not drop[i])
    assert counts.unmatched == 0
    assert counts.missing == len(ids) - delivered
    check_invariant(counts)


def test_a_reused_id_is_counted_and_goes_to_the_newer_part() -> None:
    c = Correlator()
    old, new = sent(c, 2)
    c.on_response(old, "777", 0.1)
    c.on_response(new, "0777", 0.2)  # the SMSC repeated an id still on record
    assert c.on_receipt("777", True, 0.3) is ReceiptOutcome.MATCHED
    counts = c.finish()
    assert (counts.reused_ids, counts.matched, counts.missing) == (1, 1, 1)
    assert c.status[new] == PartStatus.RECEIPTED
