"""The simulator over real sockets on 127.0.0.1 with our own client (each test on asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from smppgw.net.errors import BindError, RequestFateUnknownError
from smppgw.sim import Simulator, config_from_dict
from smppgw.smpp.codec import decode, encode
from smppgw.smpp.concat import ConcatMode
from smppgw.smpp.constants import CommandStatus, MessageState
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import (
    BindTransceiver,
    CancelSm,
    DataSm,
    DeliverSm,
    DistributionList,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
)
from smppgw.smpp.receipt import message_id_keys

from .helpers import SIMPLE, Esme, bind, long_message_parts, submit_many

CYRILLIC_300 = (
    "Уважаемый клиент! Напоминаем, что срок оплаты по договору № 12345 истекает завтра. "
    "Оплатить можно в мобильном приложении, на сайте или в любом отделении банка. "
    "Если вы уже оплатили, просто не обращайте внимания на это сообщение. "
    "Вопросы: 8-800-000-00-00 (звонок бесплатный), с 8:00 до 22:00 ежедневно. Спасибо!!"
)[:300]


@asynccontextmanager
async def running(settings: dict[str, Any] | None = None) -> AsyncIterator[Simulator]:
    sim = Simulator(config_from_dict({"seed": 7, "receipts": {"delay_ms": 5}, **(settings or {})}))
    await sim.start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        await sim.close(unbind_timeout=1.0)


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


# ---------------------------------------------------------------------------------------------------- receipts


@pytest.mark.parametrize("mode", [ConcatMode.UDH8, ConcatMode.UDH16, ConcatMode.SAR])
async def test_long_cyrillic_message_gets_a_receipt_for_every_part(mode: ConcatMode) -> None:
    assert len(CYRILLIC_300) == 300
    async with running({"handset_record": True, "receipts": {"delay_ms": "uniform:1-20"}}) as sim:
        conn, esme = await bind(sim.port)
        parts = long_message_parts(CYRILLIC_300, mode=mode)
        assert len(parts) == 5  # 300 UCS-2 characters: 67 (66 for UDH16/SAR) per part
        responses = [await conn.request(part) for part in parts]
        ids = [response.message_id for response in responses if isinstance(response, SubmitSmResp)]
        assert len(set(ids)) == 5 and all(r.status == 0 for r in responses)
        await esme.wait_for(lambda: len(esme.deliveries) == 5)
        receipts = esme.receipts()
        assert sorted(r.message_id for r in receipts) == sorted(ids)
        for receipt in receipts:
            assert receipt.id_from_tlv and receipt.state is MessageState.DELIVERED
            assert receipt.fields is not None and receipt.fields.message_id == receipt.message_id
            assert receipt.stat == "DELIVRD"
        for pdu in esme.deliveries:  # the receipt goes from the handset to the sender
            assert (pdu.source_addr, pdu.destination_addr, pdu.esm_class) == ("79161234567", "SMPPGW", 0x04)
        assert sim.handset is not None
        (message,) = sim.handset.messages
        assert message.text == CYRILLIC_300 and message.parts == 5 and message.message_ids == tuple(ids)
        await eventually(lambda: sim.stats.receipts_acked == 5)
        assert sim.stats.segments == 5 and sim.stats.receipts_by_stat == {"DELIVRD": 5}


@pytest.mark.parametrize(
    ("id_format", "receipt_id_format", "pattern"),
    [
        ("hex", "same", r"[0-9a-f]+"),
        ("dec", "same", r"[0-9]+"),
        ("uuid", "same", None),
        ("hex", "dec", r"[0-9a-f]+"),
    ],
)
async def test_id_formats(id_format: str, receipt_id_format: str, pattern: str | None) -> None:
    settings = {"id_format": id_format, "receipts": {"delay_ms": 0, "id_format": receipt_id_format}}
    async with running(settings) as sim:
        conn, esme = await bind(sim.port)
        response = await conn.request(SIMPLE)
        assert isinstance(response, SubmitSmResp)
        if pattern is None:
            assert str(uuid.UUID(response.message_id)) == response.message_id
        else:
            assert re.fullmatch(pattern, response.message_id)
        await esme.wait_for(lambda: len(esme.deliveries) == 1)
        (receipt,) = esme.receipts()
        if receipt_id_format == "same":
            assert receipt.message_id == response.message_id
        else:
            assert receipt.message_id == str(int(response.message_id, 16))
            assert set(message_id_keys(receipt.message_id)) & set(message_id_keys(response.message_id))


async def test_receipt_before_response_is_ahead_on_the_wire_in_the_same_write() -> None:
    async with running({"receipts": {"before_response": True}}) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        framer = Framer()

        async def read_frames(count: int) -> list[Pdu]:
            frames: list[bytes] = []
            async with asyncio.timeout(5.0):
                while len(frames) < count:
                    frames += framer.feed(await reader.read(65536))
            return [decode(frame) for frame in frames]

        writer.write(encode(BindTransceiver(sequence=1, system_id="raw", password="x")))
        await read_frames(1)
        assert sim._server is not None
        (conn,) = sim._server.connections
        writes_before = conn.stats.writes
        writer.write(encode(SubmitSm(sequence=2, destination_addr="79160000000", registered_delivery=1)))
        first, second = await read_frames(2)
        assert isinstance(first, DeliverSm) and first.esm_class == 0x04
        assert isinstance(second, SubmitSmResp) and second.sequence == 2
        assert dict(first.tlvs)[0x001E] == second.message_id.encode() + b"\0"
        assert conn.stats.writes == writes_before + 1
        writer.close()
        await writer.wait_closed()


async def test_stat_mix_withheld_receipts_and_enroute() -> None:
    settings = {
        "receipts": {
            "delay_ms": 2,
            "mix": "DELIVRD=0.5,UNDELIV=0.3,EXPIRED=0.2",
            "no_final_fraction": 0.25,
            "enroute": "always",
        }
    }
    async with running(settings) as sim:
        conn, esme = await bind(sim.port, window=400)
        await submit_many(conn, 400)
        await eventually(lambda: sim.stats.receipts_acked == sim.stats.receipts_sent + sim.stats.enroute_sent)
        await eventually(lambda: sim.stats.receipts_sent + sim.stats.receipts_withheld == 400)
        stats = sim.stats
        assert stats.enroute_sent == 400
        assert stats.receipts_withheld == pytest.approx(100, abs=30)
        states = Counter(receipt.state for receipt in esme.receipts())
        assert states[MessageState.ENROUTE] == 400
        finals = stats.receipts_sent
        assert states[MessageState.DELIVERED] / finals == pytest.approx(0.5, abs=0.1)
        assert states[MessageState.EXPIRED] / finals == pytest.approx(0.2, abs=0.08)
        failed = [r for r in esme.receipts() if r.state is MessageState.UNDELIVERABLE]
        assert failed and all(r.network_error is not None and r.network_error.error_code == 1 for r in failed)
        assert all(r.err == "001" for r in failed)
        # ENROUTE always precedes the final receipt of the same message
        order: dict[str, list[MessageState]] = {}
        for receipt in esme.receipts():
            order.setdefault(receipt.message_id, []).append(receipt.state)
        assert all(states_of[0] is MessageState.ENROUTE for states_of in order.values())


async def test_receipts_wait_for_a_receiver_and_go_round_robin() -> None:
    async with running({"receipts": {"delay_ms": 0, "queue_limit": 30}}) as sim:
        tx, _ = await bind(sim.port, mode="tx", system_id="acme")
        await submit_many(tx, 40)
        await eventually(lambda: sim.stats.receipts_dropped == 10)
        assert sim.snapshot()["receipts_queued"] == 30
        _other, other_esme = await bind(sim.port, mode="rx", system_id="someone-else")
        _rx1, esme1 = await bind(sim.port, mode="rx", system_id="acme")
        await esme1.wait_for(lambda: len(esme1.deliveries) == 30)
        _rx2, esme2 = await bind(sim.port, mode="trx", system_id="acme")
        await submit_many(tx, 20)
        await eventually(lambda: len(esme1.deliveries) + len(esme2.deliveries) == 50)
        assert len(esme2.deliveries) == pytest.approx(10, abs=3)
        assert other_esme.deliveries == []
        await eventually(lambda: sim.stats.receipts_acked == 50)
        assert sim.stats.binds == {"tx": 1, "rx": 2, "trx": 1}


async def test_failed_deliver_sm_is_retried_then_given_up() -> None:
    settings = {"receipts": {"delay_ms": 0, "retry_delay_ms": 10, "max_attempts": 3}}
    async with running(settings) as sim:
        conn, esme = await bind(sim.port, handler=Esme(deliver_status=CommandStatus.ESME_RX_T_APPN))
        await conn.request(SIMPLE)
        await eventually(lambda: sim.stats.receipts_failed == 1)
        assert len(esme.deliveries) == 3 and sim.stats.receipts_retried == 2
        esme.deliver_status = 0
        await conn.request(SIMPLE)
        await eventually(lambda: sim.stats.receipts_acked == 1)
        assert len(esme.deliveries) == 4


async def test_unanswered_receipt_times_out_and_is_resent_after_reconnect() -> None:
    # enquire_link_s keeps the connection timer ticking: SmppConnection.send_request does not arm the timer for the
    # new request's deadline (reported), so without traffic the timeout would be noticed at the next timer event.
    settings = {"enquire_link_s": 0.1, "receipts": {"delay_ms": 0, "retry_delay_ms": 10, "response_timeout_s": 0.2}}
    async with running(settings) as sim:
        silent, silent_esme = await bind(sim.port, handler=Esme(answer=False))
        await silent.request(SIMPLE)
        await eventually(lambda: sim.stats.receipt_errors >= 1)
        await silent.unbind()
        _conn, esme = await bind(sim.port)
        await esme.wait_for(lambda: len(esme.deliveries) >= 1)
        await eventually(lambda: sim.stats.receipts_acked == 1)
        assert sim.stats.receipts_sent == 1 and silent_esme.deliveries


# ---------------------------------------------------------------------------------------------------- faults


async def test_throttling_answers_0x58_above_the_tps() -> None:
    async with running({"faults": {"throttle_tps": 50, "throttle_burst": 5}}) as sim:
        conn, _ = await bind(sim.port, window=200)
        results = await submit_many(conn, 200)
        statuses = Counter(r.status for r in results if isinstance(r, Pdu))
        assert statuses[CommandStatus.ESME_RTHROTTLED] >= 150
        assert 5 <= statuses[0] <= 30
        assert sim.stats.throttled == statuses[CommandStatus.ESME_RTHROTTLED]
        await asyncio.sleep(0.1)  # 5 tokens back
        assert (await conn.request(SIMPLE)).status == 0
        second, _ = await bind(sim.port)  # the bucket is per system_id, shared by its binds
        assert (await second.request(QuerySm(message_id="1"))).status in (0x0C, 0x58)


async def test_status_fault_fractions_are_roughly_honoured() -> None:
    faults = {"msgqful_fraction": 0.2, "error_fraction": 0.1, "error_status": 0x45, "drop_fraction": 0.1}
    async with running({"faults": faults, "receipts": {"delay_ms": 0}}) as sim:
        conn, esme = await bind(sim.port, window=1000)
        results = await submit_many(conn, 1000, timeout=0.3)
        statuses = Counter(r.status if isinstance(r, Pdu) else "lost" for r in results)
        assert statuses[CommandStatus.ESME_RMSGQFUL] == pytest.approx(200, abs=45)
        assert statuses[0x45] == pytest.approx(100, abs=35)
        assert statuses["lost"] == pytest.approx(100, abs=35)
        assert all(isinstance(r, RequestFateUnknownError) for r in results if not isinstance(r, Pdu))
        assert statuses["lost"] == sim.stats.responses_dropped
        await esme.wait_for(lambda: len(esme.deliveries) == statuses[0])  # receipts only for accepted ones
        assert sim.stats.by_status == {0: statuses[0], 0x14: statuses[0x14], 0x45: statuses[0x45]}


async def test_same_seed_same_outcomes() -> None:
    outcomes = []
    for _ in range(2):
        async with running({"faults": {"msgqful_fraction": 0.3}}) as sim:
            conn, _ = await bind(sim.port)
            outcomes.append([(await conn.request(SIMPLE)).status for _ in range(50)])
    assert outcomes[0] == outcomes[1] and 0 < outcomes[0].count(0x14) < 50


async def test_disconnect_every_n_pdus() -> None:
    async with running({"faults": {"disconnect_every_pdus": 10}}) as sim:
        conn, esme = await bind(sim.port)
        answered = 0
        with pytest.raises(RequestFateUnknownError):
            for _ in range(11):
                await conn.request(SIMPLE, timeout=2.0)
                answered += 1
        assert answered == 10  # the 10th is answered, then the connection closes
        await eventually(lambda: bool(esme.closed))
        assert sim.stats.forced_disconnects == 1 and sim.stats.disconnects == 1


async def test_disconnect_every_seconds() -> None:
    async with running({"faults": {"disconnect_every_seconds": 0.1}}) as sim:
        _, esme = await bind(sim.port)
        await esme.wait_for(lambda: bool(esme.closed), timeout=2.0)
        assert sim.stats.forced_disconnects == 1


async def test_bind_credentials() -> None:
    accounts = [{"system_id": "gateway", "password": "secret"}]
    async with running({"accounts": accounts}) as sim:
        with pytest.raises(BindError) as wrong_password:
            await bind(sim.port, system_id="gateway", password="wrong")
        assert wrong_password.value.status == CommandStatus.ESME_RINVPASWD
        with pytest.raises(BindError) as unknown:
            await bind(sim.port, system_id="stranger", password="secret")
        assert unknown.value.status == CommandStatus.ESME_RINVSYSID
        conn, _ = await bind(sim.port, system_id="gateway", password="secret")
        assert (await conn.request(SIMPLE)).status == 0
        assert sim.stats.bind_rejected == 2 and sim.stats.binds["trx"] == 1


# ---------------------------------------------------------------------------------------------------- other operations


async def test_response_latency_is_applied() -> None:
    async with running({"response": {"delay_ms": 40}}) as sim:
        conn, _ = await bind(sim.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        responses = await asyncio.gather(*(conn.request(SIMPLE) for _ in range(20)))
        elapsed = loop.time() - started
        assert all(r.status == 0 for r in responses)
        assert 0.04 <= elapsed < 1.0


async def test_query_cancel_replace() -> None:
    async with running({"receipts": {"delay_ms": 300}}) as sim:
        conn, esme = await bind(sim.port)
        first = await conn.request(SIMPLE)
        second = await conn.request(SIMPLE)
        assert isinstance(first, SubmitSmResp) and isinstance(second, SubmitSmResp)
        query = await conn.request(QuerySm(message_id=first.message_id))
        assert isinstance(query, QuerySmResp) and query.message_state == MessageState.ENROUTE
        assert query.final_date == ""
        assert (await conn.request(ReplaceSm(message_id=first.message_id, short_message=b"x"))).status == 0
        assert (await conn.request(CancelSm(message_id=first.message_id))).status == 0
        assert (await conn.request(CancelSm(message_id=first.message_id))).status == CommandStatus.ESME_RCANCELFAIL
        assert (await conn.request(ReplaceSm(message_id="nope"))).status == CommandStatus.ESME_RREPLACEFAIL
        deleted = await conn.request(QuerySm(message_id=first.message_id))
        assert isinstance(deleted, QuerySmResp) and deleted.message_state == MessageState.DELETED
        assert len(deleted.final_date) == 16
        unknown = await conn.request(QuerySm(message_id="ffffffffffffff"))
        assert unknown.status == CommandStatus.ESME_RINVMSGID
        await esme.wait_for(lambda: len(esme.deliveries) == 2)
        by_id = {r.message_id: r.state for r in esme.receipts()}
        assert by_id == {first.message_id: MessageState.DELETED, second.message_id: MessageState.DELIVERED}
        done = await conn.request(QuerySm(message_id=second.message_id))
        assert isinstance(done, QuerySmResp) and done.message_state == MessageState.DELIVERED
        assert (await conn.request(CancelSm(message_id=second.message_id))).status == CommandStatus.ESME_RCANCELFAIL


async def test_submit_multi_and_data_sm() -> None:
    async with running({"handset_record": True}) as sim:
        conn, esme = await bind(sim.port)
        multi = await conn.request(
            SubmitMulti(
                source_addr="SMPPGW",
                dest_addresses=(SmeAddress(1, 1, "79160000001"), DistributionList("vip"), SmeAddress(1, 1, "7916002")),
                registered_delivery=1,
                short_message=b"hi all",
            )
        )
        assert isinstance(multi, SubmitMultiResp) and multi.status == 0
        assert [(u.address, u.error_status) for u in multi.unsuccess_smes] == [("vip", CommandStatus.ESME_RINVDLNAME)]
        data = await conn.request(
            DataSm(
                source_addr="SMPPGW",
                destination_addr="79160000003",
                registered_delivery=1,
                tlvs=((0x0424, b"payload text"),),
            )
        )
        assert data.status == 0
        await esme.wait_for(lambda: len(esme.deliveries) == 3)
        receipts = esme.receipts()
        assert sorted(r.message_id for r in receipts) == sorted([multi.message_id] * 2 + [data.message_id])  # type: ignore[attr-defined]
        assert sorted(p.source_addr for p in esme.deliveries) == ["79160000001", "79160000003", "7916002"]
        assert sim.handset is not None
        assert [m.text for m in sim.handset.messages] == ["hi all", "hi all", "payload text"]


async def test_no_receipt_unless_requested_or_forced() -> None:
    unrequested = SubmitSm(destination_addr="79160000000", registered_delivery=0)
    failure_only = SubmitSm(destination_addr="79160000000", registered_delivery=2)
    async with running({"receipts": {"delay_ms": 0}}) as sim:
        conn, esme = await bind(sim.port)
        await conn.request(unrequested)
        await conn.request(failure_only)  # delivered: no receipt on success
        await asyncio.sleep(0.05)
        assert esme.deliveries == [] and sim.stats.receipts_sent == 0
    async with running({"receipts": {"delay_ms": 0, "force": True}}) as sim:
        conn, esme = await bind(sim.port)
        await conn.request(unrequested)
        await esme.wait_for(lambda: len(esme.deliveries) == 1)


async def test_text_only_and_tlv_only_receipts() -> None:
    async with running({"receipts": {"delay_ms": 0, "tlvs": False}}) as sim:
        conn, esme = await bind(sim.port)
        response = await conn.request(SIMPLE)
        await esme.wait_for(lambda: len(esme.deliveries) == 1)
        (receipt,) = esme.receipts()
        assert not receipt.id_from_tlv and receipt.message_id == response.message_id  # type: ignore[attr-defined]
        assert esme.deliveries[0].tlvs == ()
    async with running({"receipts": {"delay_ms": 0, "text": False}}) as sim:
        conn, esme = await bind(sim.port)
        response = await conn.request(SIMPLE)
        await esme.wait_for(lambda: len(esme.deliveries) == 1)
        (receipt,) = esme.receipts()
        assert receipt.id_from_tlv and receipt.state_from_tlv and receipt.fields is None
        assert esme.deliveries[0].short_message == b""


async def test_close_counts_pending_receipts_as_abandoned() -> None:
    sim = Simulator(config_from_dict({"receipts": {"delay_ms": 10_000}}))
    await sim.start("127.0.0.1", 0)
    conn, _ = await bind(sim.port)
    await submit_many(conn, 20)
    snapshot = sim.snapshot()
    assert snapshot["scheduled"] == 20 and snapshot["known_messages"] == 20 and snapshot["bound"] == 1
    await sim.close(unbind_timeout=1.0)
    await sim.close()  # idempotent
    assert sim.stats.receipts_abandoned == 20 and sim.snapshot()["port"] is None
