"""IntMultimap against a plain dict-of-lists model: any sequence of adds and removes, keys that collide on purpose
(a small key range, the reserved 0 and 1, negatives, the int64 extremes), growth and rebuilds."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.compact import IntMultimap

KEYS = st.one_of(st.integers(-3, 40), st.sampled_from([-(2**63), 2**63 - 1, 0, 1, 1024, 2048]))
VALUES = st.integers(0, 2**62)
OPS = st.lists(st.tuples(st.sampled_from(["add", "remove"]), KEYS, st.integers(0, 5)), max_size=400)


@settings(max_examples=200)
@given(ops=OPS)
def test_behaves_like_a_multimap(ops: list[tuple[str, int, int]]) -> None:
    table = IntMultimap()
    model: dict[int, Counter[int]] = {}
    for op, key, value in ops:
        if op == "add":
            table.add(key, value)
            model.setdefault(key, Counter())[value] += 1
        else:
            expected = model.get(key, Counter())[value] > 0
            assert table.remove(key, value) is expected
            if expected:
                model[key][value] -= 1
    for key, values in model.items():
        assert Counter(table.get(key)) == +values
    assert len(table) == sum(sum(v.values()) for v in model.values())


def test_grows_and_reuses_deleted_slots() -> None:
    table = IntMultimap()
    for i in range(5000):
        table.add(i * 7919, i)
    assert table.capacity >= 10_000 and len(table) == 5000
    for i in range(0, 5000, 2):
        assert table.remove(i * 7919, i)
    capacity = table.capacity
    for round_ in range(20):  # churn: deleted slots are cleaned up by rebuilds, not by growing forever
        for i in range(1000):
            table.add(-(i + 1) * 31 - round_ * 100_003, i)
        for i in range(1000):
            assert table.remove(-(i + 1) * 31 - round_ * 100_003, i)
    assert table.capacity <= capacity * 2
    assert all(table.get(i * 7919) == ([i] if i % 2 else []) for i in range(5000))
