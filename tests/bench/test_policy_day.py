"""``bench/policy_day.py`` on short spans: the policies hold (no violation) while every path is exercised (held,
released, cap-rejected, stop-listed, expired), and its independent checker does catch a gateway that breaks them.
Deterministic (seeded, injected clock), never timing-based."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest

from smppgw.core.message import TrafficClass
from smppgw.core.policy.windows import DailyWindow, QuietHours

from .scripts import load_bench_script

EVENING = ["--start", "2026-03-05T21:00:00+03:00", "--per-minute", "20", "--seed", "7"]  # Thursday 21:00 Moscow


policy_day = load_bench_script("policy_day")


def test_three_evening_hours_keep_every_policy_and_use_every_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert policy_day.main([*EVENING, "--hours", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["problems"] == []
    checks = report["verification"]
    assert checks["window_violations"] == checks["cap_violations"] == checks["stop_violations"] == 0
    assert checks["window_checked"] > 0 and checks["cap_recipients"] > 0 and checks["stop_checked"] > 0
    collection, marketing = report["classes"]["collection"], report["classes"]["marketing"]
    assert collection["held"] > 0 and collection["released"] > 0  # Kamchatka and Chukotka open at 23:00 Moscow
    assert collection["cap_exceeded"] > 0 and marketing["stop_listed"] > 0
    assert collection["expired"] + marketing["expired"] > 0
    assert marketing["held"] > 0
    for name in ("otp", "transactional", "service"):
        row = report["classes"][name]
        assert row["held"] == 0 and row["immediate"] == row["accepted"] == row["submitted"] > 0


def test_the_checker_catches_a_gateway_that_sends_outside_the_window() -> None:
    day = policy_day.PolicyDay(policy_day.Options(seed=7, per_minute=10, hours=2.0, start=_at("2026-03-06T06:00")))
    wide = QuietHours(DailyWindow(6 * 60, 22 * 60), DailyWindow(9 * 60, 20 * 60))  # 06:00 instead of 08:00
    day.gateway.policies.hours[TrafficClass.COLLECTION] = wide
    asyncio.run(day.run())
    verifier = policy_day.Verifier(day)
    verifier.run()
    assert verifier.counts["window"] > 0
    assert any("outside working hours" in v for v in verifier.violations)


def test_an_opt_out_while_held_is_honoured() -> None:
    assert policy_day.main([*EVENING, "--hours", "12", "--per-minute", "10", "--late-stops", "200", "--json"]) == 0


def _at(local_moscow: str) -> datetime:
    return datetime.fromisoformat(local_moscow + ":00+03:00")
