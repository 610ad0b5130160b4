"""Two gateway workers on one SQLite file (what ``smppgw run --workers 2`` runs, here in one test process with a
port each so the test decides which worker a session lands on). The simulators deliver receipts round robin over
every receiver bind of the account, so about half of them reach the worker that does not own the message."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from smppgw.app import GatewayApp
from smppgw.config import CapsConfig, GatewayConfig, PolicyConfig
from smppgw.core.workers import WorkerSlot
from smppgw.service.errors import SubmitRefusedError
from smppgw.service.gateway import Stored, TextSubmit
from smppgw.smpp.constants import CommandStatus, MessageState
from smppgw.smpp.pdu import CancelSm
from tests.store.helpers import committed

from .helpers import (
    ACCOUNT,
    STEP,
    bind_upstream,
    eventually,
    free_port,
    gateway_config,
    number,
    running_gateway,
    running_operators,
)

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def two_workers(config: GatewayConfig) -> AsyncIterator[tuple[GatewayApp, GatewayApp]]:
    async with (
        running_gateway(config, worker=WorkerSlot(0, 2)) as first,
        running_gateway(config, worker=WorkerSlot(1, 2)) as second,
    ):
        yield first, second


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


async def test_receipts_cross_workers_both_ways(tmp_path: Path) -> None:
    """Submitted on worker 0 (tx), receipts owed on worker 1 (rx): every receipt is matched by the owner whichever
    worker's operator bind it arrived on, and delivered upstream exactly once on the other worker's session."""
    db = tmp_path / "gw.sqlite3"
    async with running_operators() as operators:
        config = gateway_config(db, {name: op.sim.port for name, op in operators.items()})
        async with two_workers(config) as (first, second):
            sender = await bind_upstream(first.smpp_port, mode="tx")
            receiver = await bind_upstream(second.smpp_port, mode="rx")
            try:
                responses = await sender.submit_many((number("mts", i), f"code {i}") for i in range(120))
                assert all(r.status == CommandStatus.ESME_ROK for r in responses)
                ids = {r.message_id for r in responses}
                assert all(first.worker.owns(i) and not second.worker.owns(i) for i in ids)
                await eventually(lambda: len(receiver.receipts()) >= len(ids), 15.0, "every receipt upstream")
                await asyncio.sleep(0.3)  # a duplicate would arrive by now
                assert sorted(receiver.receipt_ids()) == sorted(ids)
                assert all(state is MessageState.DELIVERED for _, _, state, _ in receiver.receipts())
                assert first.exchange is not None and second.exchange is not None
                assert first.exchange.receipts_matched > 0, "no receipt crossed workers: the test proves nothing"
                assert second.exchange.deliveries_claimed == len(ids)
            finally:
                await sender.close()
                await receiver.close()
    assert _rows(db, "SELECT count(*) FROM receipts WHERE message_id IS NULL") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM receipts_due") == [(0,)]
    assert _rows(db, "SELECT count(DISTINCT message_id) FROM receipt_deliveries") == [(len(ids),)]


async def _persist(app: GatewayApp, submit: TextSubmit) -> Stored:
    gateway = app.gateway
    message = gateway.accept_text(gateway.accounts[ACCOUNT], submit)
    outcome: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
    gateway.persist(message, outcome.set_result)
    return await outcome


async def test_an_idempotency_key_is_taken_once_across_workers(tmp_path: Path) -> None:
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        async with two_workers(config) as (first, second):
            submit = TextSubmit(to=number("mts", 1), sender="Bank", text="once", client_ref="crm-42")
            outcomes = await asyncio.gather(_persist(first, submit), _persist(second, submit))
            assert sorted(o is True for o in outcomes) == [False, True]
            refused = next(o for o in outcomes if o is not True)
            assert isinstance(refused, SubmitRefusedError) and refused.code == "duplicate"
            await eventually(lambda: len(operators["mts"].arrived) >= 1, 5.0, "one sent")
            await asyncio.sleep(0.2)
            assert len(operators["mts"].arrived) == 1


async def test_a_collection_cap_holds_across_workers(tmp_path: Path) -> None:
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        caps = CapsConfig(per_day=1, per_day_overdue=1, per_week=4, per_month=16)
        config = msgspec.structs.replace(config, policy=PolicyConfig(collection_caps=caps))
        async with two_workers(config) as (first, second):
            debtor = number("beeline", 7)
            submit = TextSubmit(to=debtor, sender="Bank", text="pay", traffic_class="collection")
            outcomes = await asyncio.gather(_persist(first, submit), _persist(second, submit))
            assert sorted(o is True for o in outcomes) == [False, True]
            refused = next(o for o in outcomes if o is not True)
            assert isinstance(refused, SubmitRefusedError) and refused.code == "cap_exceeded"
            assert refused.status == 0x0401
            with pytest.raises(SubmitRefusedError):  # the winner's own ledger knows the slot is taken
                winner = first if outcomes[0] is True else second
                await _persist(winner, submit)


async def test_a_stop_on_one_worker_reaches_the_other(tmp_path: Path) -> None:
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        async with two_workers(config) as (first, second):
            msisdn = number("megafon", 3)
            assert second.gateway.set_stopped(ACCOUNT, msisdn, True, "test")
            await eventually(
                lambda: first.gateway.policies.stoplist.contains(ACCOUNT, msisdn), 5.0, "the stop on worker 0"
            )
            submit = TextSubmit(to=msisdn, sender="Shop", text="sale", traffic_class="marketing")
            with pytest.raises(SubmitRefusedError) as refused:
                await _persist(first, submit)
            assert refused.value.code == "stop_listed"
            assert second.gateway.set_stopped(ACCOUNT, msisdn, False, "test")
            await eventually(
                lambda: not first.gateway.policies.stoplist.contains(ACCOUNT, msisdn), 5.0, "the release on worker 0"
            )
            assert await _persist(first, submit) is True


async def test_each_worker_resumes_only_what_it_owns(tmp_path: Path) -> None:
    """Messages queued for an unreachable operator on both workers are resumed after a restart by their owner
    alone: each reaches the handset once."""
    db = tmp_path / "gw.sqlite3"
    async with running_operators() as operators:
        ports = {name: op.sim.port for name, op in operators.items()}
        down = gateway_config(db, {**ports, "tele2": free_port()})  # nothing listens there: tele2 stays queued
        async with (
            running_gateway(down, worker=WorkerSlot(0, 2), wait_bound=False) as first,
            running_gateway(down, worker=WorkerSlot(1, 2), wait_bound=False) as second,
        ):
            for app in (first, second):
                for i in range(6):
                    submit = TextSubmit(to=number("tele2", i), sender="Bank", text=f"w{app.worker.index} {i}")
                    assert await _persist(app, submit) is True
        async with two_workers(gateway_config(db, ports)) as (first, second):
            await eventually(lambda: len(operators["tele2"].arrived) >= 12, 10.0, "resumed messages sent")
            await asyncio.sleep(0.3)
            assert len(operators["tele2"].arrived) == 12
            assert sorted(operators["tele2"].counts.values()) == [1] * 12


async def test_an_opt_out_right_after_a_release_elsewhere_is_recorded(tmp_path: Path) -> None:
    """Worker 1 still believes the number stopped when its MO STOP arrives just after worker 0 released it: the stop
    is recorded anyway, and both end with the number stopped."""
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        async with two_workers(config) as (first, second):
            msisdn = number("tele2", 9)
            assert second.gateway.set_stopped(ACCOUNT, msisdn, True, "mo")
            await eventually(lambda: first.gateway.policies.stoplist.contains(ACCOUNT, msisdn), 5.0, "followed")
            assert first.gateway.set_stopped(ACCOUNT, msisdn, False, "http")
            assert await committed(first.store)
            second.gateway.set_stopped(ACCOUNT, msisdn, True, "mo")  # its memory may not have followed yet
            for app in (first, second):
                await eventually(
                    lambda app=app: app.gateway.policies.stoplist.contains(ACCOUNT, msisdn), 5.0, "stopped everywhere"
                )
            await asyncio.sleep(0.3)
            assert all(app.gateway.policies.stoplist.contains(ACCOUNT, msisdn) for app in (first, second))


async def test_a_second_process_for_the_same_worker_index_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("smppgw.app.WORKER_LOCK_WAIT", 0.5)  # it waits that long for the other to go away
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        async with running_gateway(config, worker=WorkerSlot(0, 2)):
            with pytest.raises(RuntimeError, match="already running"):
                async with running_gateway(config, worker=WorkerSlot(0, 2)):
                    pass


async def test_cancel_sm_on_another_workers_session_reaches_the_owner(tmp_path: Path) -> None:
    """A scheduled message accepted on worker 0 is cancelled from a session on worker 1 (the owner cancels it and
    the answer waits for that); one already sent cannot be cancelled from there either."""
    async with running_operators() as operators:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in operators.items()})
        async with two_workers(config) as (first, second):
            submitter = await bind_upstream(first.smpp_port)
            canceller = await bind_upstream(second.smpp_port)
            try:
                later = await submitter.submit(number("mts", 5), "later", schedule_delivery_time="000000001000000R")
                sent = await submitter.submit(number("mts", 6), "now")
                assert later.status == sent.status == CommandStatus.ESME_ROK
                await eventually(lambda: len(operators["mts"].arrived) >= 1, 5.0, "the unscheduled one sent")
                assert canceller.conn is not None
                ok = await canceller.conn.request(CancelSm(message_id=later.message_id), timeout=STEP)
                refused = await canceller.conn.request(CancelSm(message_id=sent.message_id), timeout=STEP)
                unknown = await canceller.conn.request(CancelSm(message_id="not-an-id"), timeout=STEP)
                assert ok.status == CommandStatus.ESME_ROK
                assert refused.status == unknown.status == CommandStatus.ESME_RCANCELFAIL
                assert first.gateway.stats.cancelled == 1
                assert later.message_id not in first.gateway.live
            finally:
                await submitter.close()
                await canceller.close()
