"""Issue 4, point 3: receipts with ids in hex, decimal and UUID form (also cross-radix, text-only, TLV-only, before
the submit_sm_resp, per part of long messages) all come back upstream under the id the gateway gave; the state is
the operator's; query_sm answers from the store."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from smppgw.net.client import connect
from smppgw.net.connection import SmppConnection
from smppgw.smpp.constants import CommandStatus, MessageState
from smppgw.smpp.pdu import BindTransmitter, QuerySm, QuerySmResp
from smppgw.smpp.session import Role, SessionConfig

from .helpers import (
    OPERATORS,
    STEP,
    Operator,
    Upstream,
    eventually,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    sim_config,
    upstream_session,
)
from .test_long_messages import TEXT

RECEIPT_VARIANTS: dict[str, dict[str, Any]] = {
    "hex": {"id_format": "hex"},
    "dec": {"id_format": "dec"},
    "uuid": {"id_format": "uuid"},
    "hex-resp-dec-receipt": {"id_format": "hex", "receipts": {"id_format": "dec"}},
    "dec-resp-hex-receipt": {"id_format": "dec", "receipts": {"id_format": "hex"}},
    "text-only": {"id_format": "hex", "receipts": {"tlvs": False}},
    "tlv-only": {"id_format": "dec", "receipts": {"text": False}},
    "before-response": {"id_format": "hex", "receipts": {"before_response": True}},
    "before-response-uuid": {"id_format": "uuid", "receipts": {"before_response": True}},
    "delayed-response": {"id_format": "dec", "response": {"delay_ms": "uniform:1-10"}},
}


async def send_mixed_batch(esme: Upstream) -> dict[str, tuple[str, str]]:
    """3 short messages and 1 long (5 parts) per operator; returns gateway id → (destination, text)."""
    items = []
    for op in OPERATORS:
        items += [(number(op, 1000 + i), f"Код {i} для {op}") for i in range(3)]
        items.append((number(op, 2000), TEXT))
    responses = await esme.submit_many(items)
    assert [r.status for r in responses] == [CommandStatus.ESME_ROK] * len(items)
    return {r.message_id: item for r, item in zip(responses, items, strict=True)}


@pytest.mark.parametrize("variant", list(RECEIPT_VARIANTS))
async def test_every_receipt_comes_back_with_the_gateway_id(tmp_path: Path, variant: str) -> None:
    configs = {name: sim_config(100 + i, **RECEIPT_VARIANTS[variant]) for i, name in enumerate(OPERATORS)}
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            sent = await send_mixed_batch(esme)
            await eventually(lambda: len(esme.receipts()) >= len(sent), what="a receipt per message")
            await eventually(lambda: all(op.sim.stats.receipts_acked == 8 for op in ops.values()), what="sim acked")
            receipts = esme.receipts()
            assert len(receipts) == len(sent)  # one per message, none per part, none twice
            for tlv_id, text_id, state, pdu in receipts:
                assert tlv_id == text_id, (tlv_id, text_id)
                assert tlv_id in sent
                assert state is MessageState.DELIVERED
                assert pdu.source_addr == sent[tlv_id][0]  # addresses swapped, as in a receipt
            assert sorted(esme.receipt_ids()) == sorted(sent)
            assert app.gateway.stats.receipts_in == sum(op.sim.stats.receipts_sent for op in ops.values()) == 32
            assert not app.gateway.live
            parked = sum(c.correlator.parked for c in app.gateway.connectors.values())
            assert parked == 0
            if "before-response" in variant:
                assert app.gateway.stats.receipts_unmatched == 32  # every one arrived before its response
            for message_id in sent:
                answer = await esme.query(message_id)
                assert answer.status == CommandStatus.ESME_ROK
                assert answer.message_id == message_id
                assert answer.message_state == MessageState.DELIVERED


@contextlib.asynccontextmanager
async def sim_client(op: Operator) -> AsyncIterator[SmppConnection]:
    """A direct bind to one simulator, to ask it (query_sm) what it decided: a view independent of the gateway."""
    session = SessionConfig(role=Role.ESME, window_size=10, response_timeout=STEP, enquire_link_interval=None)
    conn = await connect("127.0.0.1", op.sim.port, session, Upstream(), timeout=STEP)
    try:
        await conn.bind(BindTransmitter(system_id="auditor", password="x"), timeout=STEP)
        yield conn
    finally:
        await conn.unbind(timeout=2.0)


async def test_receipt_states_match_the_operators_outcome(tmp_path: Path) -> None:
    """Outcomes drawn by the simulators (DELIVRD / UNDELIV / EXPIRED / REJECTD): the upstream receipt of each
    message carries the state its operator decided (asked back from the simulator by query_sm)."""
    mix = {"receipts": {"mix": "DELIVRD=0.4,UNDELIV=0.2,EXPIRED=0.2,REJECTD=0.2"}}
    configs = {name: sim_config(300 + i, **mix) for i, name in enumerate(OPERATORS)}
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            items = [(number(op, 3000 + i), f"outcome {i}") for op in OPERATORS for i in range(10)]
            responses = await esme.submit_many(items)
            by_dest = {item[0]: r.message_id for item, r in zip(items, responses, strict=True)}
            await eventually(lambda: len(esme.receipts()) == len(items), what="every receipt")
            upstream_state = {tlv_id: state for tlv_id, _, state, _ in esme.receipts()}
            seen: collections.Counter[MessageState] = collections.Counter()
            for op in ops.values():
                async with sim_client(op) as conn:
                    for handset in op.arrived:
                        (sim_id,) = handset.message_ids
                        answer = await conn.request(QuerySm(message_id=sim_id, source_addr="SMPPGW"), timeout=STEP)
                        assert isinstance(answer, QuerySmResp) and answer.status == 0
                        decided = MessageState(answer.message_state)
                        assert upstream_state[by_dest[handset.destination_addr]] is decided, handset.destination_addr
                        seen[decided] += 1
                        query = await esme.query(by_dest[handset.destination_addr])
                        assert query.message_state == decided
            assert sum(seen.values()) == len(items)
            assert len(seen) == 4  # the mix really produced every outcome


async def test_query_sm_from_the_store(tmp_path: Path) -> None:
    """query_sm: ENROUTE while the operator holds the message, the final state with its date afterwards; an id the
    gateway never gave is ESME_RQUERYFAIL. After a restart the answers come from SQLite alone."""
    configs = {name: sim_config(400 + i, receipts={"delay_ms": 400}) for i, name in enumerate(OPERATORS)}
    db = tmp_path / "gw.sqlite3"
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            message_id = (await esme.submit(number("mts", 5), "query me")).message_id
            await eventually(lambda: len(ops["mts"].arrived) == 1)
            pending = await esme.query(message_id)
            assert pending.status == CommandStatus.ESME_ROK
            assert pending.message_state == MessageState.ENROUTE and pending.final_date == ""
            await eventually(lambda: len(esme.receipts()) == 1, what="receipt")
            unknown = await esme.query("00000000deadbeef")
            assert unknown.status == CommandStatus.ESME_RQUERYFAIL
        async with running_gateway(gateway_config(db, ports)) as app, upstream_session(app.smpp_port) as esme:
            assert message_id not in app.gateway.live
            answer = await esme.query(message_id)
            assert answer.status == CommandStatus.ESME_ROK
            assert answer.message_id == message_id
            assert answer.message_state == MessageState.DELIVERED


async def test_query_sm_of_a_final_message_has_its_final_date(tmp_path: Path) -> None:
    """SMPP 3.4 §4.8.2: final_date is when the message reached its final state. Regression: done_at was written
    but not read back, so a final message served from the store had no final_date."""
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            message_id = (await esme.submit(number("beeline", 5), "dated")).message_id
            await eventually(lambda: len(esme.receipts()) == 1, what="receipt")
            answer = await esme.query(message_id)
            assert answer.message_state == MessageState.DELIVERED
            assert len(answer.final_date) == 16, answer.final_date


async def test_receipts_of_messages_that_left_memory_come_back_the_same(tmp_path: Path) -> None:
    """``hot_awaiting = 2``: almost every message leaves memory before its receipt (100-200 ms later) and is read
    back from the store when it comes; upstream sees exactly what it sees without retirement."""
    configs = {name: sim_config(300 + i, receipts={"delay_ms": "uniform:100-200"}) for i, name in enumerate(OPERATORS)}
    async with running_operators(configs) as ops:
        config = gateway_config(tmp_path / "gw.sqlite3", {name: op.sim.port for name, op in ops.items()})
        config = msgspec.structs.replace(config, store=msgspec.structs.replace(config.store, hot_awaiting=2))
        async with running_gateway(config) as app, upstream_session(app.smpp_port) as esme:
            sent = await send_mixed_batch(esme)
            await eventually(lambda: len(esme.receipts()) >= len(sent), what="a receipt per message")
            assert sorted(esme.receipt_ids()) == sorted(sent)
            assert all(state is MessageState.DELIVERED for _, _, state, _ in esme.receipts())
            assert app.gateway.retired.count >= len(sent) - 2 * len(OPERATORS)
            assert app.gateway.retired.restored >= app.gateway.retired.count
            assert not app.gateway.live
            assert sum(c.correlator.retired for c in app.gateway.connectors.values()) == 0
            for message_id in sent:
                answer = await esme.query(message_id)
                assert answer.message_state == MessageState.DELIVERED
