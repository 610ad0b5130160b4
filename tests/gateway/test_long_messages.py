"""Issue 4, point 2: a 300-character Cyrillic text goes out as 5 UCS-2 parts with matching concatenation data on
one connector, reaches the handset intact, and its part receipts fold into one receipt upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smppgw.sim import SimConfig, Simulator
from smppgw.smpp.concat import read_concat_info
from smppgw.smpp.constants import CommandStatus, EsmClass, MessageState
from smppgw.smpp.pdu import Pdu, SubmitSm

from .helpers import (
    OPERATORS,
    SEED,
    Operator,
    eventually,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    sim_config,
    upstream_session,
)

TEXT = (
    "Уважаемый клиент! Напоминаем, что срок очередного платежа по договору займа наступает завтра. "
    "Сумма к оплате указана в личном кабинете. Оплатить можно картой на сайте, в мобильном приложении "
    "или в любом отделении банка-партнёра без комиссии. Если платёж уже внесён, не обращайте внимания "
    "на это сообщение. Спасибо, что выбираете нас! Ваш финансовый помощник."
)[:300]


class RecordingSimulator(Simulator):
    """The simulator, keeping every submit_sm it was sent (to check the wire form of the parts)."""

    def __init__(self, config: SimConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.submits: list[SubmitSm] = []

    def on_request(self, conn: Any, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm):
            self.submits.append(pdu)
        super().on_request(conn, pdu)


def recording_operators() -> dict[str, Operator]:
    ops: dict[str, Operator] = {}
    for i, name in enumerate(OPERATORS):
        op = Operator(name, sim_config(SEED + i))
        op.sim = RecordingSimulator(op.sim.config, on_handset_message=op.record)
        ops[name] = op
    return ops


@pytest.mark.parametrize(("concat", "reference_bits"), [("udh8", 8), ("udh16", 16), ("sar", 16)])
async def test_long_cyrillic_text_is_five_ucs2_parts_on_one_connector(
    tmp_path: Path, concat: str, reference_bits: int
) -> None:
    assert len(TEXT) == 300
    ops = recording_operators()
    for op in ops.values():
        await op.sim.start("127.0.0.1", 0)
    try:
        ports = {name: op.sim.port for name, op in ops.items()}
        config = gateway_config(tmp_path / "gw.sqlite3", ports, connector={"concat": concat})
        async with running_gateway(config) as app, upstream_session(app.smpp_port) as esme:
            response = await esme.submit(number("megafon", 4242), TEXT)
            assert response.status == CommandStatus.ESME_ROK
            await eventually(lambda: len(ops["megafon"].arrived) == 1, what="handset message")
            await eventually(lambda: len(esme.receipts()) == 1, what="receipt upstream")
            await eventually(lambda: ops["megafon"].sim.stats.receipts_acked == 5, what="5 part receipts acked")
        sim = ops["megafon"].sim
        assert isinstance(sim, RecordingSimulator)
        assert [len(op.arrived) for name, op in ops.items() if name != "megafon"] == [0, 0, 0]
        assert len(sim.submits) == 5
        infos = [read_concat_info(p.short_message, p.esm_class, p.tlvs) for p in sim.submits]
        assert all(info is not None for info in infos)
        assert {info.reference for info in infos if info} == {infos[0].reference if infos[0] else -1}
        assert [info.total for info in infos if info] == [5] * 5
        assert sorted(info.seqnum for info in infos if info) == [1, 2, 3, 4, 5]
        assert all(p.data_coding == 0x08 for p in sim.submits)
        assert {p.destination_addr for p in sim.submits} == {number("megafon", 4242)}
        if concat == "sar":
            assert all(not p.esm_class & EsmClass.UDHI for p in sim.submits)
        else:
            assert all(p.esm_class & EsmClass.UDHI for p in sim.submits)
            iei = 0x00 if reference_bits == 8 else 0x08
            assert all(p.short_message[1] == iei for p in sim.submits)
        (handset,) = ops["megafon"].arrived
        assert handset.complete and handset.parts == 5 and handset.text == TEXT and handset.data_coding == 0x08
        ((tlv_id, text_id, state, _),) = esme.receipts()
        assert tlv_id == text_id == response.message_id
        assert state is MessageState.DELIVERED
    finally:
        for op in ops.values():
            await op.sim.close(unbind_timeout=1.0)


async def test_part_receipts_aggregate_to_the_worst_part(tmp_path: Path) -> None:
    """One part UNDELIV, the others DELIVRD: the message ends UNDELIVERABLE, one receipt upstream says so."""
    configs = {"tele2": sim_config(7, receipts={"mix": "DELIVRD=0.5,UNDELIV=0.5"})}
    async with running_operators(configs) as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with (
            running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app,
            upstream_session(app.smpp_port) as esme,
        ):
            ids = [(await esme.submit(number("tele2", i), TEXT)).message_id for i in range(4)]
            await eventually(lambda: len(esme.receipts()) == 4, what="4 receipts upstream")
            stats = ops["tele2"].sim.stats.receipts_by_stat
            assert sum(stats.values()) == 20
            states = {tlv_id: state for tlv_id, _, state, _ in esme.receipts()}
            assert sorted(states) == sorted(ids)
            # the simulator draws per part; a message is DELIVERED only if all 5 parts were
            assert MessageState.UNDELIVERABLE in states.values()
            undelivered_parts = stats.get("UNDELIV", 0)
            delivered_messages = sum(1 for s in states.values() if s is MessageState.DELIVERED)
            assert delivered_messages <= 4 - (1 if undelivered_parts else 0)
