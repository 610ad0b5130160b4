"""The stop list: per scope and global, as integers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.policy.stoplist import GLOBAL_SCOPE, StopList


def test_scope_then_global() -> None:
    stop = StopList()
    assert stop.add("brand", "79161234567") and not stop.add("brand", "79161234567")
    assert stop.stopped("brand", "79161234567") == "brand"
    assert stop.stopped("other", "79161234567") is None
    stop.add(GLOBAL_SCOPE, "79160000000")
    assert stop.stopped("other", "79160000000") == GLOBAL_SCOPE
    assert stop.remove("brand", "79161234567") and not stop.remove("brand", "79161234567")
    assert stop.stopped("brand", "79161234567") is None
    assert len(stop) == 1 and dict(stop.scopes()) == {"brand": 0, GLOBAL_SCOPE: 1}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", GLOBAL_SCOPE]), st.integers(79000000000, 79999999999), st.booleans()))
)
def test_matches_a_set_model(ops: list[tuple[str, int, bool]]) -> None:
    stop = StopList()
    model: set[tuple[str, int]] = set()
    for scope, number, add in ops:
        if add:
            assert stop.add(scope, str(number)) == ((scope, number) not in model)
            model.add((scope, number))
        else:
            assert stop.remove(scope, str(number)) == ((scope, number) in model)
            model.discard((scope, number))
    for scope, number, _ in ops:
        expected = scope if (scope, number) in model else (GLOBAL_SCOPE if (GLOBAL_SCOPE, number) in model else None)
        assert stop.stopped(scope, str(number)) == expected
