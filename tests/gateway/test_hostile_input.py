"""Hostile SMPP input at the upstream port: every kind of bad PDU gets an answer or a closed connection, never a
crash, a hang or an exception in the event loop, and the gateway keeps serving well-behaved clients."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from pathlib import Path

from smppgw.smpp.codec import encode
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import ALL_PDU_TYPES, BindTransceiver, EnquireLink, Pdu, SmeAddress, SubmitSm

from .helpers import (
    ACCOUNT,
    HOST,
    PASSWORD,
    STEP,
    eventually,
    gateway_config,
    number,
    running_gateway,
    running_operators,
    upstream_session,
)

STREAMS = 120
SEED = 20261122


def random_pdu(rng: random.Random) -> Pdu:
    """A valid PDU of any type with randomised scalar fields (strings and octets within their limits)."""
    cls = rng.choice(ALL_PDU_TYPES)
    fields: dict[str, object] = {"sequence": rng.randrange(1, 0x7FFF_FFFF)}
    if "destination_addr" in cls.__struct_fields__:
        fields["destination_addr"] = rng.choice(["79161234567", "", "7907", "+7 (916) 123", "x" * 20, "79030000001"])
    if "source_addr" in cls.__struct_fields__:
        fields["source_addr"] = rng.choice(["", "MFO", "1" * 20, "Ж".encode().decode("latin-1")])
    if "short_message" in cls.__struct_fields__:
        fields["short_message"] = rng.randbytes(rng.randrange(0, 255))
    for name in ("esm_class", "data_coding", "registered_delivery", "priority_flag", "source_addr_ton"):
        if name in cls.__struct_fields__:
            fields[name] = rng.randrange(0, 256)
    if "dest_addresses" in cls.__struct_fields__:
        fields["dest_addresses"] = (SmeAddress(1, 1, "79161234567"),)
    if rng.random() < 0.3:
        fields["tlvs"] = tuple((rng.randrange(0, 0x10000), rng.randbytes(rng.randrange(0, 20))) for _ in range(2))
    return cls(**fields)  # type: ignore[arg-type]


def hostile_bytes(rng: random.Random) -> bytes:
    """One connection's worth of input: optionally a good bind, then a mix of good, broken and absurd frames."""
    out = bytearray()
    if rng.random() < 0.7:
        out += encode(BindTransceiver(sequence=1, system_id=ACCOUNT, password=PASSWORD))
    for _ in range(rng.randrange(1, 12)):
        kind = rng.random()
        frame = bytearray(encode(random_pdu(rng)))
        if kind < 0.25 and len(frame) > 16:  # flip a body byte
            frame[rng.randrange(16, len(frame))] = rng.randrange(256)
        elif kind < 0.45 and len(frame) > 17:  # truncate the body, keep command_length consistent
            frame = frame[: rng.randrange(16, len(frame))]
            frame[:4] = struct.pack(">I", len(frame))
        elif kind < 0.55:  # unknown command id
            frame[4:8] = struct.pack(">I", rng.choice([0x77, 0x0000_0100, 0x8000_0077, 0xFFFF_FFFF]))
        elif kind < 0.6:  # absurd command_length: the connection must be closed, nothing else
            frame[:4] = struct.pack(">I", rng.choice([0, 3, 15, 0x7FFF_FFFF]))
        elif kind < 0.65:
            frame = bytearray(rng.randbytes(rng.randrange(1, 64)))
        out += frame
    return bytes(out)


async def throw(port: int, data: bytes) -> int:
    """Send ``data``, read until the gateway closes or goes quiet; returns the octets answered."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), STEP)
    answered = 0
    try:
        writer.write(data)
        await writer.drain()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.3)
            except TimeoutError:
                break
            if not chunk:
                break
            answered += len(chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), STEP)
    return answered


async def test_hostile_input_never_breaks_the_gateway(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    streams = [hostile_bytes(rng) for _ in range(STREAMS)]
    async with running_operators() as ops:
        ports = {name: op.sim.port for name, op in ops.items()}
        async with running_gateway(gateway_config(tmp_path / "gw.sqlite3", ports)) as app:
            port = app.smpp_port
            for start in range(0, STREAMS, 20):  # 20 hostile connections at a time
                answered = await asyncio.gather(*(throw(port, data) for data in streams[start : start + 20]))
                assert all(count >= 0 for count in answered)
            await eventually(lambda: len(app.server.connections) == 0, what="hostile connections closed")
            async with upstream_session(port) as esme:  # a well-behaved client is still served end to end
                response = await esme.submit(number("mts", 77), "still alive")
                assert response.status == CommandStatus.ESME_ROK
                await esme.conn.request(EnquireLink(), timeout=STEP) if esme.conn else None
                await eventually(lambda: response.message_id in esme.receipt_ids(), what="receipt after the storm")
            assert app.gateway.store.healthy


def test_generator_covers_every_pdu_type() -> None:
    rng = random.Random(SEED)
    seen = {type(random_pdu(rng)) for _ in range(2000)}
    assert seen == set(ALL_PDU_TYPES)
    assert SubmitSm in seen
