"""Issue 4, point 6: receipts owed upstream while no receiver is bound wait (durably) and go out when the ESME binds
again, also across a gateway restart; receipts that arrive before their submit_sm_resp are matched."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from smppgw.app import GatewayApp
from smppgw.smpp.constants import CommandStatus, MessageState
from smppgw.smpp.pdu import Pdu

from .helpers import (
    OPERATORS,
    STEP,
    bind_upstream,
    eventually,
    free_port,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    sim_config,
    submit_pdu,
    upstream_session,
)
from .test_long_messages import TEXT


def items() -> list[tuple[str, str]]:
    out = [(number(op, 500 + i), f"owed {op} {i}") for op in OPERATORS for i in range(4)]
    out.append((number("mts", 600), TEXT))
    return out


async def test_receipts_wait_for_a_receiver_across_a_restart(tmp_path: Path) -> None:
    """A transmitter-only ESME submits (receipt before response on every simulator) and leaves; the receipts all
    come in while nobody can receive them; the gateway restarts; a receiver binds and gets every one, once."""
    db = tmp_path / "gw.sqlite3"
    configs = {
        name: sim_config(600 + i, receipts={"before_response": True}, id_format=("hex", "dec", "uuid", "hex")[i])
        for i, name in enumerate(OPERATORS)
    }
    sent = items()
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(db, ports)) as app:
            async with upstream_session(app.smpp_port, mode="tx") as esme:
                responses = await esme.submit_many(sent)
                assert all(r.status == CommandStatus.ESME_ROK for r in responses)
            ids = {r.message_id: item for r, item in zip(responses, sent, strict=True)}
            await eventually(lambda: sum(app.gateway.stats.final.values()) == len(sent), what="all final")
            assert app.gateway.stats.final == {"delivered": len(sent)}
            assert app.gateway.stats.receipts_unmatched == 16 + 5  # all parked first: before the response
            assert esme.deliveries == []  # a transmitter gets no deliver_sm
            pending = app.gateway.upstream.pending  # owed once the final states are durable
            await eventually(lambda: len(pending.get("crm", ())) == len(sent), what="receipts owed")
        async with running_gateway(gateway_config(db, ports)) as app:
            assert not app.gateway.live
            async with upstream_session(app.smpp_port, mode="rx") as receiver:
                await eventually(lambda: len(receiver.receipts()) >= len(sent), what="owed receipts delivered")
                await asyncio.sleep(0.1)  # nothing more comes
                receipts = receiver.receipts()
                assert sorted(tlv_id for tlv_id, _, _, _ in receipts) == sorted(ids)
                for tlv_id, text_id, state, pdu in receipts:
                    assert text_id == tlv_id and state is MessageState.DELIVERED
                    assert pdu.source_addr == ids[tlv_id][0]
                await eventually(lambda: app.gateway.upstream.acknowledged == len(sent), what="acks recorded")
        # acknowledged receipts are not owed again
        async with (
            running_gateway(gateway_config(db, ports)) as app,
            upstream_session(app.smpp_port, mode="rx") as receiver,
        ):
            await asyncio.sleep(0.2)
            assert receiver.deliveries == []
        assert sum(op.sim.stats.submit_sm for op in ops.values()) == 16 + 5  # nothing resent by the restarts


async def test_receipts_wait_for_a_receiver_without_restart(tmp_path: Path) -> None:
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app:
            async with upstream_session(app.smpp_port, mode="tx") as sender:
                responses = await sender.submit_many(items())
            await eventually(lambda: sum(app.gateway.stats.final.values()) == len(responses), what="all final")
            async with upstream_session(app.smpp_port, mode="rx") as receiver:
                await eventually(lambda: len(receiver.receipts()) == len(responses), what="receipts")
            assert sorted(receiver.receipt_ids()) == sorted(r.message_id for r in responses)


async def test_refused_receipt_is_retried_upstream(tmp_path: Path) -> None:
    """The ESME answers its first receipts with ESME_RX_T_APPN (try later): the gateway retries until acknowledged."""
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app:
            app.gateway.upstream.retry_delay = 0.05
            async with upstream_session(app.smpp_port) as esme:
                esme.answer = CommandStatus.ESME_RX_T_APPN
                responses = await esme.submit_many([(number("tele2", i), f"retry {i}") for i in range(5)])
                await eventually(lambda: len(esme.deliveries) >= 5, what="first attempts")
                esme.answer = CommandStatus.ESME_ROK
                await eventually(lambda: app.gateway.upstream.acknowledged == 5, what="acknowledged after retry")
            ids = [r.message_id for r in responses]
            assert set(esme.receipt_ids()) == set(ids)
            assert app.gateway.upstream.failed_attempts >= 5


async def test_messages_awaiting_receipts_resume_after_restart(tmp_path: Path) -> None:
    """Messages submitted to the operators, receipts not yet in, then an orderly restart: the receipts arrive after
    the restart and finish the messages DELIVERED. Regression: ``gateway.recover`` ran before the connectors were
    added, found no connector for any open message and failed each with ESME_RINVDSTADR (stat:UNDELIV err:011)."""
    db = tmp_path / "gw.sqlite3"
    configs = {name: sim_config(700 + i, receipts={"delay_ms": 300}) for i, name in enumerate(OPERATORS)}
    sent = items()
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            responses = await esme.submit_many(sent)
            await eventually(lambda: sum(len(op.arrived) for op in ops.values()) == len(sent), what="all at SMSCs")
            assert esme.receipts() == []
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            await eventually(lambda: len(esme.receipts()) >= len(sent), what="receipts after the restart")
            states = {tlv_id: (state, pdu.short_message) for tlv_id, _, state, pdu in esme.receipts()}
            assert sorted(states) == sorted(r.message_id for r in responses)
            assert {state for state, _ in states.values()} == {MessageState.DELIVERED}, next(iter(states.values()))


async def test_queued_messages_are_sent_after_restart(tmp_path: Path) -> None:
    """Tele2's SMSC is down: messages to it are accepted and wait in its queue. After a restart (SMSC back up) they
    go out. Regression: recovery ran with no connectors and failed them with ESME_RINVDSTADR."""
    db = tmp_path / "gw.sqlite3"
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        down = {**ports, "tele2": free_port()}  # nothing listens there
        config = gateway_config(db, down, per_connector={"tele2": {"response_timeout": 1.0}})
        async with running_gateway(config, wait_bound=False) as app, upstream_session(app.smpp_port) as esme:
            responses = await esme.submit_many([(number("tele2", i), f"queued {i}") for i in range(5)])
            assert all(r.status == CommandStatus.ESME_ROK for r in responses)
            await asyncio.sleep(0.1)
            assert app.gateway.connectors["tele2"].queued == 5
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            await eventually(lambda: len(esme.receipts()) >= 5, what="receipts after the restart")
            assert {state for _, _, state, _ in esme.receipts()} == {MessageState.DELIVERED}
            assert sorted(ops["tele2"].texts()) == sorted((number("tele2", i), f"queued {i}") for i in range(5))


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_no_receipt_goes_upstream_before_its_final_state_is_durable(tmp_path: Path) -> None:
    """Like submit_sm_resp, a receipt towards the ESME waits for the store. Regression: the final state was queued
    and the receipt sent at once; a crash in between (kill -9 test: ~1 run in 5) made the restarted gateway report
    the message again as UNKNOWN: DELIVERED, then UNKNOWN. Here the store is held back from outside (another
    connection keeps SQLite's write lock, well within the writer's busy_timeout) while the operators' receipts
    come in."""
    db = tmp_path / "gw.sqlite3"
    configs = {name: sim_config(800 + i, receipts={"delay_ms": 200}) for i, name in enumerate(OPERATORS)}
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            responses = await esme.submit_many([(number(op, 9), f"durable {op}") for op in OPERATORS])
            await eventually(lambda: sum(len(op.arrived) for op in ops.values()) == 4, what="all at SMSCs")
            with contextlib.closing(sqlite3.connect(db, timeout=2.0, isolation_level=None)) as blocker:
                blocker.execute("BEGIN IMMEDIATE")
                try:
                    await eventually(lambda: app.gateway.stats.receipts_in == 4, what="operator receipts in")
                    await asyncio.sleep(0.2)
                    early = esme.receipt_ids()
                finally:
                    blocker.execute("ROLLBACK")
            await eventually(lambda: len(esme.receipts()) >= 4, what="receipts once durable")
            await asyncio.sleep(0.3)  # nothing left queued in the store at stop (see the store-close test)
        assert sorted(esme.receipt_ids()) == sorted(r.message_id for r in responses)
        assert early == [], f"{len(early)} receipts went upstream while their final state was not committed"


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_stop_with_writes_queued_commits_them_and_returns(tmp_path: Path) -> None:
    """An orderly stop while the store has rows queued (slow disk: another connection holds SQLite's write lock
    while submits come in and the stop is requested) commits them and returns. Regression: close()'s wake-up was
    spent on the next batch and ``_closing`` was checked only on a wake-up with nothing queued, so the writer
    waited forever and SIGTERM hung."""
    db = tmp_path / "gw.sqlite3"
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        app = GatewayApp(gateway_config(db, ports), drain_timeout=1.0)
        task = asyncio.get_running_loop().create_task(app.run(), name="gateway")
        await asyncio.wait_for(app.started.wait(), STEP)
        await eventually(lambda: all(c.link.bound for c in app.gateway.connectors.values()), STEP, "binds up")
        esme = await bind_upstream(app.smpp_port)
        with contextlib.closing(sqlite3.connect(db, timeout=2.0, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            try:
                loop = asyncio.get_running_loop()
                futures: list[asyncio.Future[Pdu]] = []
                for i in range(5):  # the first one's batch blocks on the lock; the others queue behind it
                    futures.append(loop.create_future())
                    esme.conn.send_request(submit_pdu(number("mts", i), f"slow disk {i}"), futures[-1], 2.0)  # type: ignore[union-attr]
                    await asyncio.sleep(0.03)
                app.request_stop()
                await asyncio.sleep(0.2)
            finally:
                blocker.execute("ROLLBACK")
        await asyncio.gather(*futures, return_exceptions=True)  # answered, or lost to the unbind
        done, _ = await asyncio.wait({task}, timeout=3.0)
        if not done:  # hung: free the writer (test cleanup only) so the store's threads end, then report
            app.store._wakeup.set()  # type: ignore[union-attr]
            await asyncio.wait_for(task, STEP)
        task.result()
        assert done, "GatewayApp.run did not return after request_stop() (store close hung)"
    with contextlib.closing(sqlite3.connect(db)) as check:
        (count,) = check.execute("SELECT count(*) FROM messages").fetchone()
    assert count == 5  # close() committed what was queued
