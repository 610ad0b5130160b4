"""SequenceAllocator: range 1..0x7FFFFFFF, wrap to 1, skip values in flight, bounded scan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.constants import MAX_SEQUENCE
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.sequence import SequenceAllocator
from smppgw.smpp.window import Window


def test_starts_at_one_and_counts_up() -> None:
    alloc = SequenceAllocator()
    assert [alloc.next() for _ in range(3)] == [1, 2, 3]
    assert alloc.peek == 4


def test_wraps_from_max_to_one_never_zero() -> None:
    alloc = SequenceAllocator(MAX_SEQUENCE - 1)
    assert [alloc.next() for _ in range(4)] == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 1, 2]


def test_max_sequence_is_0x7fffffff() -> None:
    assert MAX_SEQUENCE == 0x7FFF_FFFF
    assert SequenceAllocator(MAX_SEQUENCE).next() == MAX_SEQUENCE


@pytest.mark.parametrize("start", [0, -1, MAX_SEQUENCE + 1])
def test_rejects_start_out_of_range(start: int) -> None:
    with pytest.raises(ValueError, match="sequence_number"):
        SequenceAllocator(start)


def test_rejects_max_scan_below_one() -> None:
    with pytest.raises(ValueError, match="max_scan"):
        SequenceAllocator(max_scan=0)


def test_skips_values_in_a_set() -> None:
    alloc = SequenceAllocator(5)
    assert alloc.next({5, 6, 8}) == 7
    assert alloc.next({5, 6, 8}) == 9


def test_skips_in_flight_values_across_the_wrap() -> None:
    alloc = SequenceAllocator(MAX_SEQUENCE - 1)
    in_flight = {MAX_SEQUENCE - 1, MAX_SEQUENCE, 1, 2}
    assert alloc.next(in_flight) == 3
    assert alloc.peek == 4


def test_skip_at_max_wraps_to_one() -> None:
    alloc = SequenceAllocator(MAX_SEQUENCE)
    assert alloc.next({MAX_SEQUENCE}) == 1


def test_predicate_in_use() -> None:
    alloc = SequenceAllocator(10)
    assert alloc.next(lambda seq: seq % 4 != 0) == 12


def test_window_as_in_use() -> None:
    window: Window[str] = Window(4)
    alloc = SequenceAllocator(MAX_SEQUENCE)
    for _ in range(3):
        seq = alloc.next(window)
        window.offer(seq, "req", 0.0, 1.0)
    assert [e.sequence for e in window.drain()] == [MAX_SEQUENCE, 1, 2]
    # 1 still in flight after a full lap: it is skipped.
    window.offer(1, "stuck", 0.0, 1.0)
    lap = SequenceAllocator(1)
    assert lap.next(window) == 2


def test_free_value_returned_without_scanning() -> None:
    calls: list[int] = []

    def busy(seq: int) -> bool:
        calls.append(seq)
        return False

    assert SequenceAllocator(7).next(busy) == 7
    assert calls == [7]


def test_callable_container_is_used_as_predicate() -> None:
    class Both:
        def __call__(self, seq: int) -> bool:
            return seq == 1

        def __contains__(self, seq: object) -> bool:
            return False

    assert SequenceAllocator(1).next(Both()) == 2


def test_every_value_busy_raises_after_bounded_scan() -> None:
    calls = 0

    def busy(seq: int) -> bool:
        nonlocal calls
        calls += 1
        return True

    alloc = SequenceAllocator(MAX_SEQUENCE - 2, max_scan=1000)
    with pytest.raises(LocalProtocolError, match="no free sequence_number"):
        alloc.next(busy)
    assert calls == 1000
    assert alloc.peek == MAX_SEQUENCE - 2  # state unchanged by the failure


def test_sized_container_bounds_scan_to_len_plus_one() -> None:
    class LyingFull:
        """Claims to hold 3 values but reports every value as present."""

        def __len__(self) -> int:
            return 3

        def __contains__(self, seq: object) -> bool:
            return True

    with pytest.raises(LocalProtocolError) as info:
        SequenceAllocator().next(LyingFull())
    assert "among 4 candidates" in str(info.value)


def test_full_sized_range_is_scanned_only_len_plus_one() -> None:
    in_use = set(range(1, 101))
    alloc = SequenceAllocator(1, max_scan=101)
    assert alloc.next(in_use) == 101


def test_repr() -> None:
    assert repr(SequenceAllocator(9)) == "SequenceAllocator(next=9)"


@settings(max_examples=300)
@given(
    start=st.one_of(st.integers(1, 50), st.integers(MAX_SEQUENCE - 50, MAX_SEQUENCE)),
    busy=st.sets(st.one_of(st.integers(1, 120), st.integers(MAX_SEQUENCE - 120, MAX_SEQUENCE)), max_size=60),
)
def test_returns_first_free_value_cyclically(start: int, busy: set[int]) -> None:
    got = SequenceAllocator(start).next(busy)
    expected = start
    while expected in busy:
        expected = 1 if expected == MAX_SEQUENCE else expected + 1
    assert got == expected
    assert MAX_SEQUENCE >= got >= 1
    assert got not in busy
