"""Issue 4, point 4: an operator answering ESME_RTHROTTLED (0x58) above its TPS loses nothing, sends nothing twice
and keeps the order of messages to each destination; the connector's backoff does not idle the link for long."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from smppgw.smpp.constants import CommandStatus, MessageState

from .helpers import (
    OPERATORS,
    eventually,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    sim_config,
    upstream_session,
)


class Outcome(msgspec.Struct, kw_only=True):
    arrived: list[tuple[str, str]]  # (destination, text) at the throttled simulator, in arrival order
    sent_ids: list[str]
    receipts: list[tuple[str, MessageState]]
    sim_throttled: int
    connector_throttled: int
    connector_failed: int
    fate_unknown: int
    elapsed: float


async def run_throttled(
    tmp_path: Path,
    *,
    destinations: int,
    per_destination: int,
    sim_tps: float,
    sim_burst: float,
    connector: dict[str, Any],
    timeout: float,
    grouped: bool = True,
) -> Outcome:
    """Offer messages to MegaFon faster than its simulator's TPS (one message to each other operator besides).
    ``grouped``: all of one destination's messages back to back (a reversal of neighbours shows as disorder)."""
    configs = {
        "megafon": sim_config(
            500, faults={"throttle_tps": sim_tps, "throttle_burst": sim_burst}, receipts={"delay_ms": "uniform:1-5"}
        )
    }
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        config = gateway_config(tmp_path / "gw.sqlite3", ports, connector=connector)
        async with running_gateway(config) as app, upstream_session(app.smpp_port, window=200) as esme:
            if grouped:
                pairs = [(d, seq) for d in range(destinations) for seq in range(per_destination)]
            else:
                pairs = [(d, seq) for seq in range(per_destination) for d in range(destinations)]
            items = [(number("megafon", 7000 + d), f"order {d} {seq}") for d, seq in pairs]
            items += [(number(op, 1), "bystander") for op in OPERATORS if op != "megafon"]
            started = time.monotonic()
            responses = await esme.submit_many(items)
            assert all(r.status == CommandStatus.ESME_ROK for r in responses)
            expected = destinations * per_destination
            await eventually(lambda: len(ops["megafon"].arrived) >= expected, timeout, "all at the SMSC")
            elapsed = time.monotonic() - started
            await eventually(lambda: len(esme.receipts()) == len(items), 5.0, "all receipts upstream")
            connector_stats = app.gateway.connectors["megafon"].stats
            return Outcome(
                arrived=ops["megafon"].texts(),
                sent_ids=[r.message_id for r in responses],
                receipts=[(tlv_id, state) for tlv_id, _, state, _ in esme.receipts()],
                sim_throttled=ops["megafon"].sim.stats.throttled,
                connector_throttled=connector_stats.throttled,
                connector_failed=connector_stats.failed,
                fate_unknown=connector_stats.fate_unknown,
                elapsed=elapsed,
            )


SMALL_WINDOW = {
    "destinations": 2,
    "per_destination": 30,
    "sim_tps": 100.0,
    "sim_burst": 3.0,
    "connector": {"rate": 200.0, "window": 5},
    "timeout": 10.0,
}


async def test_throttled_operator_gets_every_message_exactly_once(tmp_path: Path) -> None:
    outcome = await run_throttled(tmp_path, **SMALL_WINDOW)
    assert outcome.sim_throttled > 0 and outcome.connector_throttled == outcome.sim_throttled
    assert outcome.connector_failed == 0 and outcome.fate_unknown == 0
    expected = {(number("megafon", 7000 + d), f"order {d} {seq}") for d in range(2) for seq in range(30)}
    counts = collections.Counter(outcome.arrived)
    assert set(counts) == expected and set(counts.values()) == {1}
    assert sorted(tlv_id for tlv_id, _ in outcome.receipts) == sorted(outcome.sent_ids)
    assert {state for _, state in outcome.receipts} == {MessageState.DELIVERED}


def disorder(arrived: list[tuple[str, str]]) -> dict[str, list[int]]:
    per_destination: dict[str, list[int]] = collections.defaultdict(list)
    for dest, text in arrived:
        per_destination[dest].append(int(text.split()[2]))
    return {d: seqs for d, seqs in per_destination.items() if seqs != sorted(seqs)}


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_throttling_keeps_per_destination_order(tmp_path: Path) -> None:
    """Regression: throttled parts were put back with lane.appendleft one response at a time; responses come in
    send order, so two neighbours throttled together went out again swapped (seen: 3,4 → 4,3)."""
    outcome = await run_throttled(tmp_path, **SMALL_WINDOW)
    bad = disorder(outcome.arrived)
    assert not bad, {d: seqs[:12] for d, seqs in bad.items()}


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_throttling_backoff_does_not_stall_the_link(tmp_path: Path) -> None:
    """200 messages, operator TPS 400, window 50: each window gets ~20 accepted and ~30 throttled. Regression: the
    backoff attempt grew with each of the ~30 throttled responses to one burst, so every window ended in a
    Backoff.maximum (5 s) pause: ~3 messages/s instead of 400. Bound: the operator's own pace plus 2 s."""
    await run_throttled(
        tmp_path,
        destinations=8,
        per_destination=25,
        sim_tps=400.0,
        sim_burst=20.0,
        connector={"rate": 5000.0, "window": 50},
        timeout=200 / 400.0 + 2.0,
        grouped=False,
    )
