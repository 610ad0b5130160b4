"""Issue 4, point 1: numbers land on their operator's connector; refusals carry the right SMPP status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smppgw.core.numbering import NumberingPlan
from smppgw.net.errors import BindError
from smppgw.smpp.constants import CommandStatus, MessageState

from .helpers import (
    ACCOUNT,
    INN,
    OPERATORS,
    PASSWORD,
    UNALLOCATED,
    eventually,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    upstream_session,
)


def test_numbers_match_the_numbering_plan() -> None:
    """The prefixes the suite uses really belong to those operators in smppgw/data/def9xx.csv."""
    plan = NumberingPlan.load()
    for operator in OPERATORS:
        for n in (0, 1234567, 9_999_999):
            info = plan.lookup(number(operator, n))
            assert info is not None and info.operator == operator and info.inn == INN[operator], (operator, n)
    assert plan.lookup(UNALLOCATED) is None


async def test_each_number_lands_on_its_operator(tmp_path: Path) -> None:
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            items = [(number(op, 100 + i), f"to {op} #{i}") for i in range(5) for op in OPERATORS]
            responses = await esme.submit_many(items)
            assert [r.status for r in responses] == [CommandStatus.ESME_ROK] * len(items)
            ids = [r.message_id for r in responses]
            assert len(set(ids)) == len(ids)
            await eventually(lambda: sum(len(op.arrived) for op in ops.values()) == len(items), what="all arrived")
            await eventually(lambda: len(esme.receipts()) == len(items), what="all receipts upstream")
        for name, op in ops.items():
            expected = sorted((number(name, 100 + i), f"to {name} #{i}") for i in range(5))
            assert sorted(op.texts()) == expected, name
            assert op.sim.stats.submit_sm == 5, name
        assert sorted(esme.receipt_ids()) == sorted(ids)
        assert {state for _, _, state, _ in esme.receipts()} == {MessageState.DELIVERED}


@pytest.mark.parametrize("dest", [UNALLOCATED, "7916abc", "", "+7 (916) 12"])
async def test_invalid_or_unallocated_number_is_refused(tmp_path: Path, dest: str) -> None:
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            response = await esme.submit(dest, "hello")
            assert response.status == CommandStatus.ESME_RINVDSTADR
            assert response.message_id == ""
            ok = await esme.submit(number("mts", 1), "still fine")  # the session carries on
            assert ok.status == CommandStatus.ESME_ROK
            await eventually(lambda: len(ops["mts"].arrived) == 1)
        assert sum(op.sim.stats.submit_sm for op in ops.values()) == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        (ACCOUNT, "wrong", CommandStatus.ESME_RINVPASWD),
        (ACCOUNT, "", CommandStatus.ESME_RINVPASWD),
        ("nobody", PASSWORD, CommandStatus.ESME_RINVSYSID),
    ],
)
async def test_bind_refusals(tmp_path: Path, system_id: str, password: str, status: int) -> None:
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app:
            with pytest.raises(BindError) as refused:
                async with upstream_session(app.smpp_port, system_id=system_id, password=password):
                    pass
            assert refused.value.status == status
            async with upstream_session(app.smpp_port) as esme:  # the right credentials still bind
                assert (await esme.submit(number("tele2", 7), "ok")).status == CommandStatus.ESME_ROK


async def test_over_the_account_rate_is_throttled(tmp_path: Path) -> None:
    """rate 50 segments/s, burst 5: 40 submits at once → the first 5 accepted, the rest ESME_RTHROTTLED; after a
    pause the account may send again. Only accepted messages reach an operator."""
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        config = gateway_config(tmp_path / "gw.sqlite3", ports, account={"rate": 50.0})
        async with running_gateway(config) as app, upstream_session(app.smpp_port) as esme:
            responses = await esme.submit_many([(number("beeline", i), f"burst {i}") for i in range(40)])
            statuses = [r.status for r in responses]
            accepted = statuses.count(CommandStatus.ESME_ROK)
            assert 5 <= accepted <= 7, statuses  # the burst, plus what refilled while the 40 were read
            assert statuses.count(CommandStatus.ESME_RTHROTTLED) == 40 - accepted
            await asyncio.sleep(0.2)  # refills 10 tokens
            assert (await esme.submit(number("beeline", 99), "later")).status == CommandStatus.ESME_ROK
            await eventually(lambda: len(ops["beeline"].arrived) == accepted + 1)
            await asyncio.sleep(0.05)
        assert ops["beeline"].sim.stats.submit_sm == accepted + 1


async def test_long_message_within_a_small_account_rate_is_accepted(tmp_path: Path) -> None:
    """An account allowed 20 segments/s (burst 2) sends one 3-part message after idling: well under its rate.
    Regression: the account bucket was asked for all 3 tokens at once, more than it can ever hold, so such a
    message was refused with ESME_RTHROTTLED forever."""
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        config = gateway_config(tmp_path / "gw.sqlite3", ports, account={"rate": 20.0})
        async with running_gateway(config) as app, upstream_session(app.smpp_port) as esme:
            await asyncio.sleep(0.2)
            response = await esme.submit(number("mts", 5), "Д" * 150)  # 3 UCS-2 parts
            assert response.status == CommandStatus.ESME_ROK
