"""Worker slots: every id has exactly one owner, ids of different workers never collide, shares add up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppgw.core.message import MessageIdGenerator
from smppgw.core.workers import WorkerSlot


@given(
    count=st.integers(1, 8),
    floor=st.integers(0, 2**52),
    clocks=st.lists(st.integers(0, 2**40), min_size=1, max_size=30),
)
def test_workers_hand_out_disjoint_increasing_ids_they_own(count: int, floor: int, clocks: list[int]) -> None:
    seen: set[str] = set()
    for index in range(count):
        slot = WorkerSlot(index, count)
        ids = MessageIdGenerator(floor, index=index, count=count)
        issued = [ids.next(ms) for ms in clocks]
        assert issued == sorted(issued) and len(set(issued)) == len(issued)
        assert all(int(i, 16) > floor for i in issued)
        assert all(slot.owns(i) for i in issued)
        assert all(not WorkerSlot(other, count).owns(issued[0]) for other in range(count) if other != index)
        assert seen.isdisjoint(issued)
        seen.update(issued)


@given(count=st.integers(1, 8), floor=st.integers(0, 10**9))
def test_align_is_the_highest_own_number_at_or_below(count: int, floor: int) -> None:
    for index in range(count):
        aligned = WorkerSlot(index, count).align(floor)
        assert aligned <= floor < aligned + count
        assert aligned % count == index % count


@given(count=st.integers(1, 8), binds=st.integers(1, 64))
def test_binds_are_spread_and_never_zero(count: int, binds: int) -> None:
    shares = [WorkerSlot(i, count).share_of_binds(binds) for i in range(count)]
    assert min(shares) >= 1
    assert sum(shares) == max(binds, count) if binds < count else sum(shares) == binds
    assert max(shares) - min(shares) <= 1


def test_a_single_worker_shares_nothing() -> None:
    slot = WorkerSlot()
    assert not slot.shared and slot.owns("ffff") and slot.share_of_rate(100.0) == 100.0
    assert MessageIdGenerator().next(1) == f"{1 << 12:016x}"


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0)])
def test_an_index_outside_the_workers_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="worker index"):
        WorkerSlot(index, count)
