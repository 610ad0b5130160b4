"""Masking of personal data in logs and scrape-time metrics."""

from __future__ import annotations

import json

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from smppgw.obs.logging import configure_logging, get_logger, mask_personal_data
from smppgw.obs.masking import mask_phone, mask_text
from smppgw.obs.metrics import CounterSource, ScrapeTimeCollector


def test_mask_phone_keeps_prefix_and_last_two() -> None:
    assert mask_phone("79161234567") == "7916*****67"
    assert mask_phone("+79161234567") == "+791******67"
    assert mask_phone("MFO-Zaim") == "MFO-Zaim"  # alphanumeric sender: not personal data
    assert mask_phone("900") == "900"


@settings(max_examples=500)
@given(st.from_regex(r"\+?7?9\d{9}", fullmatch=True))
def test_masked_phone_never_contains_the_full_number(number: str) -> None:
    masked = mask_phone(number)
    assert masked != number
    assert len(masked) == len(number)
    assert masked.count("*") >= 5


def test_mask_text() -> None:
    assert mask_text("Ваш код 1234") == "<12 chars>"
    assert mask_text(b"\x04\x12") == "<2 octets>"


def test_processor_masks_above_debug_only() -> None:
    event = {"event": "x", "destination_addr": "79161234567", "text": "код 1234", "connector": "mts"}
    assert mask_personal_data(None, "info", dict(event)) == {
        "event": "x",
        "destination_addr": "7916*****67",
        "text": "<8 chars>",
        "connector": "mts",
    }
    assert mask_personal_data(None, "debug", dict(event)) == event


def test_configured_logger_writes_masked_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    try:
        get_logger("test").info("submitted", to="79161234567", text="секрет")
        get_logger("test").debug("hidden at info level", to="79161234567")
    finally:
        structlog.reset_defaults()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["to"] == "7916*****67"
    assert record["text"] == "<6 chars>"
    assert record["level"] == "info"
    assert "79161234567" not in lines[0]


def test_scrape_time_counters() -> None:
    counts = {"mts": 3, "beeline": 5}
    registry = CollectorRegistry()
    collector = ScrapeTimeCollector()
    collector.add(
        CounterSource(
            "smppgw_test_segments", "Segments sent", ("connector",), lambda: {(k,): v for k, v in counts.items()}
        )
    )
    registry.register(collector)
    counts["mts"] = 10
    text = generate_latest(registry).decode()
    assert 'smppgw_test_segments_total{connector="mts"} 10.0' in text
    assert 'smppgw_test_segments_total{connector="beeline"} 5.0' in text
    with pytest.raises(ValueError):
        collector.add(CounterSource("smppgw_test_segments", "dup", (), dict))
