"""Pure parts of the simulator: delay distributions, stat mix, id formats, config validation, TOML, CLI precedence."""

from __future__ import annotations

import argparse
import random
import re
import statistics
import uuid
from collections import Counter
from pathlib import Path

import pytest

from smppgw.sim.cli import build_config, configure, parse_listen
from smppgw.sim.config import (
    ConfigError,
    Delay,
    SimConfig,
    StatMix,
    config_from_dict,
    config_to_dict,
    load_profile,
    with_overrides,
)
from smppgw.sim.ids import IdGenerator
from smppgw.sim.wheel import TimerWheel, TokenBucket
from smppgw.smpp.constants import MessageState
from smppgw.smpp.receipt import message_id_keys

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "sim.example.toml"


# ---------------------------------------------------------------------------------------------------- Delay


@pytest.mark.parametrize(
    ("spec", "kind", "a", "b"),
    [
        ("0", "fixed", 0, 0),
        (5, "fixed", 5, 0),
        (2.5, "fixed", 2.5, 0),
        ("fixed:7", "fixed", 7, 0),
        ("uniform:1-10", "uniform", 1, 10),
        ("exp:200", "exponential", 200, 0),
        ("exponential:3", "exponential", 3, 0),
        ({"kind": "uniform", "min": 2, "max": 4}, "uniform", 2, 4),
        ({"kind": "exponential", "mean": 9}, "exponential", 9, 0),
        ({"ms": 3}, "fixed", 3, 0),
    ],
)
def test_delay_parses_every_form(spec: object, kind: str, a: float, b: float) -> None:
    delay = Delay.parse(spec)
    assert (delay.kind, delay.a, delay.b) == (kind, a, b)
    assert Delay.parse(delay.spec()) == delay


@pytest.mark.parametrize(
    "spec", ["", "x", "uniform:5", "uniform:9-1", "-1", "fixed:-3", "gauss:3", "nan", True, [1], {"kind": "uniform"}]
)
def test_delay_rejects_nonsense(spec: object) -> None:
    with pytest.raises(ConfigError):
        Delay.parse(spec)


def test_delay_samples_in_seconds_within_bounds() -> None:
    rng = random.Random(1)
    assert Delay.parse("0").is_zero and Delay.parse("fixed:0").sample(rng) == 0.0
    assert Delay.parse(250).sample(rng) == 0.25
    uniform = Delay.parse("uniform:10-20").sampler(rng)
    draws = [uniform() for _ in range(2000)]
    assert min(draws) >= 0.010 and max(draws) <= 0.020
    assert statistics.fmean(draws) == pytest.approx(0.015, rel=0.05)
    exponential = Delay.parse("exp:100")
    draws = [exponential.sample(rng) for _ in range(5000)]
    assert statistics.fmean(draws) == pytest.approx(0.1, rel=0.1)
    assert max(draws) <= Delay.EXP_CAP * 0.1
    sampler = exponential.sampler(rng)
    assert statistics.fmean(sampler() for _ in range(5000)) == pytest.approx(0.1, rel=0.1)


def test_delay_is_immutable() -> None:
    delay = Delay.parse(5)
    with pytest.raises(AttributeError):
        delay.a = 6


# ---------------------------------------------------------------------------------------------------- StatMix


def test_stat_mix_parses_normalises_and_picks_by_weight() -> None:
    mix = StatMix.parse("DELIVRD=0.9,UNDELIV=0.05,EXPIRED=0.03,REJECTD=0.02")
    assert mix.states == (
        MessageState.DELIVERED,
        MessageState.UNDELIVERABLE,
        MessageState.EXPIRED,
        MessageState.REJECTED,
    )
    assert sum(mix.weights) == pytest.approx(1.0)
    assert StatMix.parse({"delivrd": 9, "undeliv": 0.5, "EXPIRED": 0.3, "REJECTD": 0.2}) == mix
    rng = random.Random(7)
    counts = Counter(mix.pick(rng.random()) for _ in range(20_000))
    assert counts[MessageState.DELIVERED] / 20_000 == pytest.approx(0.9, abs=0.01)
    assert counts[MessageState.REJECTED] / 20_000 == pytest.approx(0.02, abs=0.005)
    assert mix.pick(0.0) is MessageState.DELIVERED
    assert mix.pick(0.9999999999) is MessageState.REJECTED
    assert StatMix.parse(mix.spec()) == mix


def test_stat_mix_accepts_spelling_variants_and_drops_zero_weights() -> None:
    mix = StatMix.parse("DELIVERED=1, FAILED=1, EXPIRD=0")
    assert mix.states == (MessageState.DELIVERED, MessageState.UNDELIVERABLE)


@pytest.mark.parametrize("spec", ["", "DELIVRD", "NOPE=1", "ENROUTE=1", "ACCEPTD=1", "DELIVRD=-1", "DELIVRD=0", "X=y"])
def test_stat_mix_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        StatMix.parse(spec)


# ---------------------------------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("response", "receipt"), [("hex", "same"), ("dec", "same"), ("uuid", "same"), ("hex", "dec"), ("dec", "hex")]
)
def test_ids_are_unique_and_well_formed(response: str, receipt: str) -> None:
    ids = IdGenerator(response, receipt, random.Random(3))  # type: ignore[arg-type]
    pairs = [ids.next() for _ in range(1000)]
    assert len({resp for resp, _ in pairs}) == 1000
    pattern = {"hex": r"[0-9a-f]{9,11}", "dec": r"[0-9]{10,13}"}
    for resp, rcpt in pairs:
        if response == "uuid":
            parsed = uuid.UUID(resp)
            assert str(parsed) == resp and parsed.version == 4 and parsed.variant == uuid.RFC_4122
            assert rcpt == resp
            continue
        assert re.fullmatch(pattern[response], resp)
        assert re.fullmatch(pattern[response if receipt == "same" else receipt], rcpt)
        # the gateway's correlation keys agree on the number whatever radix each side wrote it in
        assert set(message_id_keys(resp)) & set(message_id_keys(rcpt))


def test_ids_differ_between_seeds() -> None:
    first = IdGenerator("hex", "same", random.Random(1)).next()
    second = IdGenerator("hex", "same", random.Random(2)).next()
    assert first != second


# ---------------------------------------------------------------------------------------------------- wheel, bucket


def test_wheel_never_fires_early_and_keeps_order() -> None:
    wheel: TimerWheel[int] = TimerWheel(0.005)
    rng = random.Random(5)
    deadlines = {i: 100.0 + rng.random() for i in range(2000)}
    for item, deadline in deadlines.items():
        wheel.push(deadline, item)
    assert len(wheel) == 2000
    now, seen = 100.0, []
    while len(wheel):
        now += 0.003
        due = wheel.pop_due(now)
        assert all(deadlines[item] <= now for item in due)
        assert all(deadlines[item] > now - 0.003 - 0.005 for item in due)  # at most a tick late
        seen += due
    assert sorted(seen) == list(range(2000))
    assert wheel.pop_due(now + 10) == [] and wheel.next_deadline() is None


def test_wheel_handles_long_idle_gaps_and_past_deadlines() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.002)
    wheel.push(1.0, "a")
    wheel.push(1_000_000.0, "far")
    assert wheel.pop_due(500_000.0) == ["a"]  # jumps over half a million empty ticks
    wheel.push(3.0, "late")  # a deadline already in the past fires on the next pop
    assert wheel.pop_due(500_000.001) == ["late"]
    assert wheel.next_deadline() == pytest.approx(1_000_000.002)
    assert wheel.drain() == ["far"] and len(wheel) == 0


def test_token_bucket_rate_and_burst() -> None:
    bucket = TokenBucket(rate=100.0, burst=10.0, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(50)) == 10
    assert sum(bucket.take(0.5) for _ in range(100)) == 10  # refilled to the burst, not 50
    granted = sum(bucket.take(0.5 + i / 1000) for i in range(1, 1001))  # 1 s at 1000 attempts/s
    assert granted == pytest.approx(100, abs=2)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)


# ---------------------------------------------------------------------------------------------------- config


def test_defaults_are_valid_and_round_trip() -> None:
    config = SimConfig()
    assert config_from_dict(config_to_dict(config)) == config
    assert config.response.delay_ms.is_zero


def test_example_profile_loads() -> None:
    config = load_profile(EXAMPLE)
    assert config.receipts.mix.states[0] is MessageState.DELIVERED
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"faults": {"drop_fraction": 1.5}}, "drop_fraction"),
        ({"faults": {"drop_fraction": 0.6, "error_fraction": 0.6}}, "exceed 1"),
        ({"faults": {"error_status": 0}}, "error_status"),
        ({"receipts": {"no_final_fraction": -0.1}}, "no_final_fraction"),
        ({"receipts": {"delay_ms": "uniform:9-1"}}, "min <= max"),
        ({"receipts": {"mix": "DELIVRD=0"}}, "sum to zero"),
        ({"receipts": {"errors": {"NOPE": 1}}}, "unknown stat"),
        ({"receipts": {"max_attempts": 0}}, "max_attempts"),
        ({"receipts": {"delay": 5}}, "unknown field"),
        ({"id_format": "base64"}, "id_format"),
        ({"id_format": "uuid", "receipts": {"id_format": "dec"}}, "uuid"),
        ({"window": 0}, "window"),
        ({"tick_ms": 0.1}, "tick_ms"),
        ({"accounts": [{"system_id": "a"}, {"system_id": "a"}]}, "twice"),
        ({"system_id": "x" * 16}, "15"),
        ({"faults": {"throttle_tps": "fast"}}, "throttle_tps"),
    ],
)
def test_invalid_settings_are_rejected_with_the_field_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_overrides_validate_and_reject_unknown_names() -> None:
    config = with_overrides(SimConfig(), {"receipts.delay_ms": "exp:50", "faults.throttle_tps": 10})
    assert config.receipts.delay_ms == Delay("exponential", 50) and config.faults.throttle_tps == 10
    with pytest.raises(ConfigError, match="unknown setting"):
        with_overrides(SimConfig(), {"receipts.nope": 1})
    with pytest.raises(ConfigError):
        with_overrides(SimConfig(), {"faults.drop_fraction": 2})


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_cli_flags_override_the_profile_and_only_when_given(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        'id_format = "dec"\n[receipts]\ndelay_ms = "uniform:1-2"\nmix = "DELIVRD=1"\n[faults]\nthrottle_tps = 5\n'
    )
    config = build_config(_args("--profile", str(profile), "--receipt-delay-ms", "7", "--stat-mix", "UNDELIV=1"))
    assert config.id_format == "dec"  # from the profile
    assert config.faults.throttle_tps == 5  # from the profile
    assert config.receipts.delay_ms == Delay("fixed", 7)  # the flag wins
    assert config.receipts.mix.states == (MessageState.UNDELIVERABLE,)
    config = build_config(
        _args("--receipt-format", "tlv", "--account", "a:pw", "--error-status", "0x45", "--receipt-before-response")
    )
    assert (config.receipts.text, config.receipts.tlvs, config.receipts.before_response) == (False, True, True)
    assert config.accounts[0].system_id == "a" and config.faults.error_status == 0x45
    with pytest.raises(ConfigError):
        build_config(_args("--account", "nopassword"))


def test_bad_profile_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("id_format = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:2775") == ("127.0.0.1", 2775)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":2775") == ("0.0.0.0", 2775)
    for bad in ("2775", "host:", "host:99999", "host:x"):
        with pytest.raises(ConfigError):
            parse_listen(bad)
