"""Pure core pieces: token bucket, backoff, receipt correlation, message ids."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.backoff import Backoff
from smppgw.core.correlation import Correlator, IdForm
from smppgw.core.message import MessageIdGenerator
from smppgw.core.throttle import TokenBucket, default_burst

# ---------------------------------------------------------------------------------------------------- token bucket


def test_bucket_starts_full_and_refills_at_rate() -> None:
    bucket = TokenBucket(rate=100.0, burst=10.0, now=0.0)
    assert bucket.try_take(10, 0.0)
    assert not bucket.try_take(1, 0.0)
    assert bucket.wait_time(5, 0.0) == pytest.approx(0.05)
    assert bucket.try_take(5, 0.05)
    assert bucket.available(10.0) == 10.0  # never above burst


def test_request_larger_than_burst_waits_for_a_full_bucket_not_forever() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0, now=0.0)
    bucket.take(2, 0.0)
    assert bucket.wait_time(5, 0.0) == pytest.approx(0.2)  # min(count, burst) / rate


def test_drain_after_operator_throttling() -> None:
    bucket = TokenBucket(rate=10.0, burst=10.0, now=0.0)
    bucket.drain(0.0)
    assert bucket.available(0.0) == 0.0
    assert bucket.wait_time(1, 0.0) == pytest.approx(0.1)


def test_default_burst() -> None:
    assert default_burst(1000.0) == 100.0
    assert default_burst(5.0) == 1.0
    assert default_burst(1000.0, 7.0) == 7.0
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, burst=1.0, now=0.0)


@settings(max_examples=500)
@given(
    rate=st.floats(1.0, 10_000.0),
    burst=st.floats(1.0, 1_000.0),
    steps=st.lists(st.tuples(st.floats(0.0, 0.5), st.integers(1, 20)), min_size=1, max_size=60),
)
def test_bucket_never_admits_more_than_rate_times_time_plus_burst(
    rate: float, burst: float, steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, admitted = 0.0, 0
    for advance, count in steps:
        now += advance
        if bucket.try_take(count, now):
            admitted += count
    assert admitted <= rate * now + burst + 1e-6


# ---------------------------------------------------------------------------------------------------- backoff


@settings(max_examples=500)
@given(attempt=st.integers(1, 1000), seed=st.integers(0, 2**32))
def test_backoff_stays_within_jittered_bounds(attempt: int, seed: int) -> None:
    policy = Backoff(initial=0.5, maximum=30.0, factor=2.0, jitter=0.2)
    delay = policy.delay(attempt, random.Random(seed))
    base = min(30.0, 0.5 * 2.0 ** (attempt - 1))
    assert base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


def test_backoff_grows_then_caps() -> None:
    policy = Backoff(initial=1.0, maximum=8.0, jitter=0.0)
    rng = random.Random(1)
    assert [policy.delay(n, rng) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


# ---------------------------------------------------------------------------------------------------- correlation


def test_same_id_in_other_forms_matches() -> None:
    c: Correlator[str, str] = Correlator()
    c.register("1A2B3C", "seg-hex")
    assert c.match("1715004") == "seg-hex"  # decimal form of 0x1A2B3C
    assert c.match("001a2b3c") == "seg-hex"
    c.register("550E8400-E29B-41D4-A716-446655440000", "seg-uuid")
    assert c.match("550e8400e29b41d4a716446655440000") == "seg-uuid"


def test_literal_form_wins_when_two_readings_collide() -> None:
    c: Correlator[str, str] = Correlator()
    c.register("26", "decimal-26")  # could also be read as hex 0x26 = 38
    c.register("1A", "hex-26")  # 0x1A = 26
    assert c.match("26") == "decimal-26"


def test_configured_radices_never_guess() -> None:
    c: Correlator[str, str] = Correlator(response_form=IdForm.HEX, receipt_form=IdForm.DECIMAL)
    c.register("64", "resp-0x64")
    c.register("100", "resp-0x100")
    assert c.match("100") == "resp-0x64"  # receipt ids are decimal: 100 == 0x64
    assert c.match("256") == "resp-0x100"


def test_receipt_before_response_is_parked_then_matched() -> None:
    c: Correlator[str, str] = Correlator(max_parked=10, parked_ttl=60.0)
    assert c.match("abc123") is None
    assert c.park("abc123", "receipt-1", now=0.0) is None
    assert c.parked >= 1
    assert c.register("ABC123", "segment") == ["receipt-1"]
    assert c.parked == 0


def test_parking_is_bounded_and_expires() -> None:
    c: Correlator[str, str] = Correlator(max_parked=2, parked_ttl=10.0)
    c.park("zz1", "r1", now=0.0)
    c.park("zz2", "r2", now=1.0)
    evicted = c.park("zz3", "r3", now=2.0)
    assert evicted == "r1"
    assert c.parked_evicted == 1
    assert c.expire_parked(11.5) == ["r2"]
    assert c.expire_parked(100.0) == ["r3"]
    assert c.parked == 0


def test_forget_removes_every_key() -> None:
    c: Correlator[str, str] = Correlator()
    c.register("10", "seg")  # keys "10" and "16"
    c.forget("10", "seg")
    assert len(c) == 0
    assert c.match("10") is None


@settings(max_examples=500)
@given(numbers=st.lists(st.integers(1, 2**48), min_size=1, max_size=30, unique=True), seed=st.integers(0, 1000))
def test_every_live_segment_is_found_by_its_own_id_in_any_case(numbers: list[int], seed: int) -> None:
    rng = random.Random(seed)
    c: Correlator[int, str] = Correlator()
    written = {n: rng.choice([f"{n:x}", f"{n:X}", f"{n:020x}", "s" + f"{n:x}"]) for n in numbers}
    for n, text in written.items():
        c.register(text, n)
    for n, text in written.items():
        assert c.match(text.upper() if rng.random() < 0.5 else text) == n
    for n, text in written.items():
        c.forget(text, n)
    assert len(c) == 0


# ---------------------------------------------------------------------------------------------------- message ids


@settings(max_examples=500)
@given(clock=st.lists(st.integers(0, 2**40), min_size=1, max_size=50))
def test_message_ids_strictly_increase_even_if_the_clock_goes_back(clock: list[int]) -> None:
    generator = MessageIdGenerator()
    ids = [generator.next(ms) for ms in clock]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 for i in ids)


def test_message_ids_continue_after_restart_floor() -> None:
    first = MessageIdGenerator().next(1_000)
    restarted = MessageIdGenerator(int(first, 16))
    assert restarted.next(999) > first  # the clock stepped back across the restart


def test_forget_takes_an_equal_segment_not_only_the_same_object() -> None:
    """The gateway forgets a part with a new ``(message, part)`` tuple: the entry must go (it once stayed, holding
    every finished message in memory)."""
    correlator: Correlator[tuple[object, int], object] = Correlator()
    message = object()
    correlator.register("1A2B", (message, 0))
    correlator.register("1A2C", (message, 1))
    correlator.forget("1A2B", (message, 0))
    assert correlator.match("1A2B") is None and len(correlator) == 1
    correlator.forget("1A2C", (object(), 1))  # another message's part: not this one
    assert correlator.match("1A2C") == (message, 1)
