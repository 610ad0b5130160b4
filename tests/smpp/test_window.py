"""Window: offer / complete / expire / drain, deadlines, bounded memory, and a stateful model check."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from smppgw.smpp.constants import MAX_SEQUENCE, CommandStatus
from smppgw.smpp.errors import LocalProtocolError
from smppgw.smpp.sequence import SequenceAllocator
from smppgw.smpp.window import DuplicateSequenceError, Window, WindowEntry, WindowFullError


def _storage(window: Window[Any]) -> int:
    """Slots held by the deadline structures (live + stale): the leak check."""
    return len(window._fifo) + len(window._heap)


def test_rejects_size_below_one() -> None:
    with pytest.raises(ValueError, match="size"):
        Window(0)


def test_properties_track_offers_and_completions() -> None:
    window: Window[str] = Window(2)
    assert (window.size, window.in_flight, window.free_slots, window.is_full, len(window)) == (2, 0, 2, False, 0)
    window.offer(1, "a", 0.0, 10.0)
    assert (window.in_flight, window.free_slots, window.is_full) == (1, 1, False)
    window.offer(2, "b", 0.0, 10.0)
    assert (window.in_flight, window.free_slots, window.is_full, len(window)) == (2, 0, True, 2)
    window.complete(1, 1.0)
    assert (window.in_flight, window.free_slots, window.is_full) == (1, 1, False)


def test_offer_records_times_and_request() -> None:
    window: Window[str] = Window(4)
    entry = window.offer(7, "submit_sm", 100.0, 30.0)
    assert isinstance(entry, WindowEntry)
    assert (entry.sequence, entry.request, entry.offered_at, entry.deadline) == (7, "submit_sm", 100.0, 130.0)
    assert entry.response_time is None
    assert 7 in window
    assert 8 not in window
    assert window.get(7) is entry
    assert window.get(8) is None
    assert "sequence=7" in repr(entry)
    assert "in_flight=1" in repr(window)


def test_offer_on_full_window_raises_throttled() -> None:
    window: Window[str] = Window(1)
    window.offer(1, "a", 0.0, 1.0)
    with pytest.raises(WindowFullError) as info:
        window.offer(2, "b", 0.0, 1.0)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.status == CommandStatus.ESME_RTHROTTLED
    assert info.value.size == 1
    assert 2 not in window
    assert window.in_flight == 1


def test_offer_duplicate_sequence_raises() -> None:
    window: Window[str] = Window(4)
    first = window.offer(3, "a", 0.0, 1.0)
    with pytest.raises(DuplicateSequenceError) as info:
        window.offer(3, "b", 0.5, 1.0)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.sequence == 3
    assert info.value.status == CommandStatus.ESME_RSYSERR
    assert window.get(3) is first
    assert window.in_flight == 1


@pytest.mark.parametrize("sequence", [0, -5, MAX_SEQUENCE + 1])
def test_offer_rejects_sequence_out_of_range(sequence: int) -> None:
    window: Window[str] = Window(4)
    with pytest.raises(LocalProtocolError, match="out of range"):
        window.offer(sequence, "a", 0.0, 1.0)
    assert window.in_flight == 0


def test_offer_accepts_max_sequence() -> None:
    window: Window[str] = Window(4)
    window.offer(MAX_SEQUENCE, "a", 0.0, 1.0)
    assert MAX_SEQUENCE in window


def test_offer_rejects_nan_deadline() -> None:
    window: Window[str] = Window(4)
    with pytest.raises(LocalProtocolError, match="NaN"):
        window.offer(1, "a", 0.0, math.nan)
    assert window.in_flight == 0
    assert window.next_deadline() is None


def test_infinite_timeout_never_expires() -> None:
    window: Window[str] = Window(4)
    window.offer(1, "a", 0.0, math.inf)
    assert window.next_deadline() == math.inf
    assert window.expire(1e18) == []


def test_complete_returns_entry_with_response_time() -> None:
    window: Window[str] = Window(4)
    window.offer(1, "a", 10.0, 30.0)
    entry = window.complete(1, 10.25)
    assert entry is not None
    assert entry.request == "a"
    assert entry.response_time == pytest.approx(0.25)
    assert (1 in window) is False
    assert window.in_flight == 0


def test_complete_unknown_or_twice_returns_none() -> None:
    window: Window[str] = Window(4)
    assert window.complete(99, 0.0) is None
    window.offer(1, "a", 0.0, 1.0)
    assert window.complete(1, 0.5) is not None
    assert window.complete(1, 0.6) is None


def test_late_response_after_expire_returns_none() -> None:
    window: Window[str] = Window(4)
    window.offer(1, "a", 0.0, 1.0)
    [expired] = window.expire(1.0)
    assert expired.response_time is None
    assert window.complete(1, 2.0) is None


def test_sequence_reusable_after_complete() -> None:
    window: Window[str] = Window(4)
    window.offer(1, "old", 0.0, 100.0)
    window.offer(2, "other", 0.0, 100.0)
    window.complete(1, 1.0)
    window.offer(1, "new", 1.0, 5.0)  # out of order deadline: goes to the heap
    assert window.next_deadline() == 6.0
    [expired] = window.expire(6.0)
    assert expired.request == "new"
    assert window.next_deadline() == 100.0


def test_expire_boundary_is_inclusive() -> None:
    window: Window[str] = Window(4)
    window.offer(1, "a", 0.0, 5.0)
    assert window.expire(4.999) == []
    assert [e.sequence for e in window.expire(5.0)] == [1]
    assert window.expire(10.0) == []


def test_expire_on_empty_window() -> None:
    window: Window[str] = Window(4)
    assert window.expire(1e9) == []


def test_expire_orders_mixed_timeouts_by_deadline() -> None:
    window: Window[str] = Window(10)
    window.offer(1, "submit", 0.0, 30.0)  # 30
    window.offer(2, "enquire", 1.0, 5.0)  # 6   (heap)
    window.offer(3, "submit", 2.0, 30.0)  # 32
    window.offer(4, "quick", 3.0, 1.0)  # 4   (heap)
    window.offer(5, "submit", 4.0, 30.0)  # 34
    window.offer(6, "same", 4.0, 26.0)  # 30  (heap, ties 1)
    assert window.next_deadline() == 4.0
    assert [e.sequence for e in window.expire(5.0)] == [4]
    assert window.next_deadline() == 6.0
    got = window.expire(33.0)
    assert [e.sequence for e in got] == [2, 1, 6, 3]
    deadlines = [e.deadline for e in got]
    assert deadlines == sorted(deadlines)
    assert window.next_deadline() == 34.0
    assert [e.sequence for e in window.expire(100.0)] == [5]
    assert window.next_deadline() is None


def test_next_deadline_after_completes() -> None:
    window: Window[str] = Window(10)
    assert window.next_deadline() is None
    window.offer(1, "a", 0.0, 10.0)  # 10
    window.offer(2, "b", 1.0, 10.0)  # 11
    window.offer(3, "c", 2.0, 10.0)  # 12
    window.offer(4, "d", 2.5, 2.0)  # 4.5 (heap)
    assert window.next_deadline() == 4.5
    window.complete(4, 3.0)  # heap head answered
    assert window.next_deadline() == 10.0
    window.complete(2, 3.0)  # middle answered: head unchanged
    assert window.next_deadline() == 10.0
    window.complete(1, 3.0)  # head answered; 2 (stale) is skipped
    assert window.next_deadline() == 12.0
    window.complete(3, 3.0)
    assert window.next_deadline() is None
    assert _storage(window) == 0
    assert window._stale == 0


def test_drain_returns_all_in_offer_order_and_empties() -> None:
    window: Window[str] = Window(10)
    for seq, timeout in [(5, 30.0), (3, 1.0), (9, 30.0), (1, 2.0)]:
        window.offer(seq, f"r{seq}", 0.0, timeout)
    window.complete(9, 0.5)
    drained = window.drain()
    assert [e.sequence for e in drained] == [5, 3, 1]
    assert all(e.response_time is None for e in drained)
    assert window.in_flight == 0
    assert window.next_deadline() is None
    assert window.expire(1e9) == []
    assert _storage(window) == 0
    assert window.drain() == []
    window.offer(5, "again", 1.0, 1.0)
    assert window.next_deadline() == 2.0


def test_stalled_head_does_not_leak_completed_entries() -> None:
    window: Window[int] = Window(100)
    window.offer(1, 0, 0.0, 30.0)  # never answered
    for i in range(10_000):
        seq = 2 + i % 50
        window.offer(seq, i, 1.0 + i * 1e-4, 30.0)
        window.complete(seq, 1.0 + i * 1e-4)
        assert _storage(window) <= window.in_flight + window._stale_limit + 1
    assert window.in_flight == 1
    assert window.next_deadline() == 30.0


def test_heap_path_does_not_leak_completed_entries() -> None:
    window: Window[int] = Window(100)
    window.offer(1, 0, 0.0, 1e9)  # a long deadline at the FIFO tail pushes later offers to the heap
    for i in range(10_000):
        seq = 2 + i % 50
        window.offer(seq, i, 1.0, 30.0 + (i % 7))
        extra = 60 + i % 30
        if i % 3 == 0 and extra not in window:
            window.offer(extra, i, 1.0, 10.0)  # some entries stay in flight in the heap
        window.complete(seq, 1.5)
        assert _storage(window) <= window.in_flight + window._stale_limit + 1
    assert window.next_deadline() == 11.0
    remaining = window.expire(1e8)
    assert [e.deadline for e in remaining] == sorted(e.deadline for e in remaining)
    assert window.in_flight == 1
    assert window.next_deadline() == 1e9


def test_allocator_and_window_together_across_wrap() -> None:
    window: Window[str] = Window(3)
    alloc = SequenceAllocator(MAX_SEQUENCE - 1)
    a = alloc.next(window)
    window.offer(a, "stuck", 0.0, 100.0)
    seen = []
    for _ in range(5):
        seq = alloc.next(window)
        window.offer(seq, "x", 0.0, 10.0)
        window.complete(seq, 0.1)
        seen.append(seq)
    assert a == MAX_SEQUENCE - 1
    assert seen == [MAX_SEQUENCE, 1, 2, 3, 4]
    # A lap later, the stuck value is still in flight and is skipped.
    lap = SequenceAllocator(MAX_SEQUENCE - 1)
    assert lap.next(window) == MAX_SEQUENCE


# --- stateful model check ---

TIMEOUTS = st.one_of(st.sampled_from([0.0, 1.0, 5.0, 5.0, 5.0, 30.0]), st.floats(0.0, 40.0))
STEPS = st.floats(0.0, 4.0)
SEQS = st.integers(1, 12)


class WindowMachine(RuleBasedStateMachine):
    """The window against a dict model: seq -> (deadline, token), plus a ledger of how each token left."""

    def __init__(self) -> None:
        super().__init__()
        self.window: Window[int] = Window(1)
        self.model: dict[int, tuple[float, int]] = {}
        self.now = 0.0
        self.tokens = 0
        self.left: Counter[int] = Counter()
        self.accepted: set[int] = set()

    @initialize(size=st.integers(1, 8), stale_limit=st.integers(0, 2))
    def create(self, size: int, stale_limit: int) -> None:
        self.window = Window(size)
        self.window._stale_limit = stale_limit  # small limit: compaction runs often enough to be tested

    def _leave(self, entry: WindowEntry[int]) -> None:
        deadline, token = self.model.pop(entry.sequence)
        assert entry.request == token
        assert entry.deadline == deadline
        self.left[token] += 1
        assert self.left[token] == 1

    @rule(seq=SEQS, timeout=TIMEOUTS, dt=STEPS)
    def offer(self, seq: int, timeout: float, dt: float) -> None:
        self.now += dt
        self.tokens += 1
        if seq in self.model:
            with pytest.raises(DuplicateSequenceError):
                self.window.offer(seq, self.tokens, self.now, timeout)
        elif len(self.model) >= self.window.size:
            with pytest.raises(WindowFullError):
                self.window.offer(seq, self.tokens, self.now, timeout)
        else:
            entry = self.window.offer(seq, self.tokens, self.now, timeout)
            assert (entry.offered_at, entry.deadline) == (self.now, self.now + timeout)
            self.model[seq] = (entry.deadline, self.tokens)
            self.accepted.add(self.tokens)

    @rule(seq=SEQS, dt=STEPS)
    def complete(self, seq: int, dt: float) -> None:
        self.now += dt
        entry = self.window.complete(seq, self.now)
        if seq not in self.model:
            assert entry is None
            return
        assert entry is not None
        assert entry.response_time == self.now - entry.offered_at
        self._leave(entry)

    @rule(dt=STEPS)
    def expire(self, dt: float) -> None:
        self.now += dt
        self._check_expire()

    @precondition(lambda self: self.window.next_deadline() not in (None, math.inf))
    @rule()
    def expire_exactly_at_next_deadline(self) -> None:
        deadline = self.window.next_deadline()
        assert deadline is not None
        self.now = max(self.now, deadline)
        assert self._check_expire()

    def _check_expire(self) -> list[WindowEntry[int]]:
        due = {seq for seq, (deadline, _) in self.model.items() if deadline <= self.now}
        got = self.window.expire(self.now)
        assert {e.sequence for e in got} == due
        assert len(got) == len(due)
        assert all(e.deadline <= self.now for e in got)
        assert [e.deadline for e in got] == sorted(e.deadline for e in got)
        assert all(e.response_time is None for e in got)
        for entry in got:
            self._leave(entry)
        return got

    @rule()
    def drain(self) -> None:
        expected = list(self.model)
        got = self.window.drain()
        assert [e.sequence for e in got] == expected
        for entry in got:
            self._leave(entry)

    @invariant()
    def matches_model(self) -> None:
        window = self.window
        assert window.in_flight == len(self.model) <= window.size
        assert window.free_slots == window.size - len(self.model)
        assert window.is_full == (len(self.model) == window.size)
        deadlines = [deadline for deadline, _ in self.model.values()]
        assert window.next_deadline() == (min(deadlines) if deadlines else None)
        for seq in range(1, 13):
            assert (seq in window) == (seq in self.model)

    @invariant()
    def memory_is_bounded(self) -> None:
        window = self.window
        assert window._stale == _storage(window) - window.in_flight
        assert window._stale <= window._stale_limit
        assert not window._fifo or window._fifo[0]._live
        assert not window._heap or window._heap[0][2]._live

    def teardown(self) -> None:
        for entry in self.window.drain():
            self._leave(entry)
        assert not self.model
        assert set(self.left) == self.accepted  # every accepted offer left ...
        assert all(count == 1 for count in self.left.values())  # ... exactly once


WindowMachine.TestCase.settings = settings(max_examples=500, stateful_step_count=40, deadline=None)
test_window_state_machine = WindowMachine.TestCase
