"""Segmentation, concatenation info and reassembly: golden limits and bytes, then split -> reassemble properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.smpp.concat import (
    Added,
    ConcatError,
    ConcatInfo,
    ConcatMode,
    MessageTooLongError,
    Reassembler,
    SplitMessage,
    read_concat_info,
    segment_count,
    split_message,
)
from smppgw.smpp.constants import CommandStatus, EsmClass, Tag
from smppgw.smpp.text import GSM_CHARS, Encoding, TextError, data_coding_for, decode_short_message, encode_gsm7

CYR = "я"
EMOJI = "😀"


def payloads(message: SplitMessage) -> list[bytes]:
    """Message octets of each part without UDH / from the payload TLV."""
    out = []
    for part in message.parts:
        info = read_concat_info(part.short_message, part.esm_class_bits, part.tlvs)
        if info is not None:
            out.append(info.payload)
        elif part.short_message:
            out.append(part.short_message)
        else:
            out.append(dict(part.tlvs).get(Tag.MESSAGE_PAYLOAD, b""))
    return out


# --- golden facts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        (CYR * 70, 1),
        (CYR * 71, 2),
        (CYR * 134, 2),
        (CYR * 135, 3),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("", 1),
    ],
)
def test_segment_counts(text: str, segments: int) -> None:
    assert segment_count(text) == segments
    assert split_message(text, reference=1).segments == segments
    assert len(split_message(text, reference=1).parts) == segments


def test_part_sizes_udh8() -> None:
    cyr = split_message(CYR * 71, reference=1)
    assert cyr.encoding is Encoding.UCS2
    assert [len(p) for p in payloads(cyr)] == [134, 8]  # 67 + 4 code units
    gsm = split_message("a" * 161, reference=1)
    assert gsm.encoding is Encoding.GSM7
    assert [len(p) for p in payloads(gsm)] == [153, 8]


def test_part_sizes_udh16_and_sar() -> None:
    for mode in (ConcatMode.UDH16, ConcatMode.SAR):
        assert [len(p) for p in payloads(split_message("a" * 161, reference=300, mode=mode))] == [152, 9]
        assert [len(p) for p in payloads(split_message(CYR * 71, reference=300, mode=mode))] == [132, 10]
    assert segment_count("a" * 305, mode=ConcatMode.UDH16) == 3
    assert segment_count("a" * 305, mode=ConcatMode.UDH8) == 2


def test_escape_at_boundary_moves_whole() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the euro would take septets 153 and 154
    parts = payloads(split_message(text, reference=1))
    assert parts[0] == b"a" * 152
    assert parts[1] == b"\x1be" + b"b" * 10
    assert segment_count(text) == 2


def test_surrogate_pair_at_boundary_moves_whole() -> None:
    text = CYR * 66 + EMOJI + CYR * 10  # the emoji would take code units 67 and 68
    parts = payloads(split_message(text, reference=1))
    assert len(parts[0]) == 132
    assert parts[1].startswith(EMOJI.encode("utf-16-be"))
    assert decode_short_message(b"".join(parts), 8) == text


def test_at_sign_round_trips_with_right_length() -> None:
    message = split_message("@" * 161, reference=9)
    assert [len(p) for p in payloads(message)] == [153, 8]
    assert b"".join(payloads(message)) == b"\x00" * 161


def test_udh8_bytes() -> None:
    message = split_message("a" * 200, reference=0xAB)
    assert [p.short_message[:6] for p in message.parts] == [
        bytes.fromhex("050003AB0201"),
        bytes.fromhex("050003AB0202"),
    ]
    assert all(p.esm_class_bits == EsmClass.UDHI and p.tlvs == () for p in message.parts)
    assert [(p.seqnum, p.total) for p in message.parts] == [(1, 2), (2, 2)]


def test_udh16_bytes() -> None:
    message = split_message("a" * 200, reference=0x1234, mode=ConcatMode.UDH16)
    assert message.parts[1].short_message[:7] == bytes.fromhex("06080412340202")


def test_sar_tlvs() -> None:
    message = split_message("a" * 200, reference=0x1234, mode=ConcatMode.SAR)
    assert message.parts[1].tlvs == (
        (Tag.SAR_MSG_REF_NUM, b"\x12\x34"),
        (Tag.SAR_TOTAL_SEGMENTS, b"\x02"),
        (Tag.SAR_SEGMENT_SEQNUM, b"\x02"),
    )
    assert message.parts[1].esm_class_bits == 0
    assert message.parts[1].short_message == b"a" * 48


def test_single_part_has_no_udh_or_sar() -> None:
    for mode in (ConcatMode.UDH8, ConcatMode.UDH16, ConcatMode.SAR):
        (part,) = split_message("hi", reference=1, mode=mode).parts
        assert (part.short_message, part.esm_class_bits, part.tlvs) == (b"hi", 0, ())


def test_payload_mode() -> None:
    message = split_message(CYR * 200, reference=0, mode=ConcatMode.PAYLOAD)
    (part,) = message.parts
    assert part.short_message == b""
    assert part.tlvs == ((Tag.MESSAGE_PAYLOAD, (CYR * 200).encode("utf-16-be")),)
    assert message.segments == 3 == segment_count(CYR * 200, mode=ConcatMode.PAYLOAD)


def test_empty_text_is_one_empty_part() -> None:
    message = split_message("", reference=1)
    assert message.encoding is Encoding.GSM7
    assert [p.short_message for p in message.parts] == [b""]


def test_latin1_limits() -> None:
    assert segment_count("é" * 140, Encoding.LATIN1) == 1
    assert [len(p) for p in payloads(split_message("é" * 141, reference=1, encoding=Encoding.LATIN1))] == [134, 7]
    udh16 = split_message("é" * 141, reference=1, encoding=Encoding.LATIN1, mode=ConcatMode.UDH16)
    assert [len(p.short_message) for p in udh16.parts] == [140, 15]


def test_default_alphabet_latin1_writes_latin1_octets() -> None:
    message = split_message("é{" * 100, reference=1, default_alphabet=Encoding.LATIN1)
    assert message.encoding is Encoding.GSM7
    assert message.segments == 2  # 300 septets on the air
    assert b"".join(payloads(message)) == ("é{" * 100).encode("latin-1")
    assert [len(p) for p in payloads(message)] == [102, 98]  # 51 'é{' pairs = 153 septets


def test_ascii_encoding() -> None:
    message = split_message("a" * 200, reference=1, encoding=Encoding.ASCII)
    assert b"".join(payloads(message)) == b"a" * 200
    with pytest.raises(TextError):
        split_message("é", reference=1, encoding=Encoding.ASCII)
    assert split_message("Δ", reference=1, default_alphabet=Encoding.ASCII).encoding is Encoding.UCS2


def test_too_long_raises_with_parts_needed() -> None:
    with pytest.raises(MessageTooLongError) as exc:
        split_message(CYR * 700, reference=1, max_parts=10)
    assert exc.value.parts_needed == 11
    assert isinstance(exc.value, ValueError)
    split_message(CYR * 670, reference=1, max_parts=10)
    with pytest.raises(MessageTooLongError) as exc:
        split_message("a" * (153 * 255 + 1), reference=1, max_parts=1000)
    assert (exc.value.parts_needed, exc.value.max_parts) == (256, 255)
    assert len(split_message("a" * 153 * 255, reference=1, max_parts=1000).parts) == 255


def test_reference_range_checked() -> None:
    with pytest.raises(ValueError, match="reference"):
        split_message("a", reference=256)
    split_message("a", reference=65535, mode=ConcatMode.UDH16)
    with pytest.raises(ValueError, match="reference"):
        split_message("a", reference=65536, mode=ConcatMode.SAR)


# --- reading --------------------------------------------------------------------------------------------------------


def test_read_udh_skips_other_elements() -> None:
    # UDH: port addressing 16-bit (IEI 0x05, 4 octets), then 8-bit concatenation
    message = bytes.fromhex("0B0504 1F 00 00 000003 2A 03 02") + b"body"
    info = read_concat_info(message, EsmClass.UDHI, ())
    assert info == ConcatInfo(reference=0x2A, total=3, seqnum=2, payload=b"body")


def test_read_udh16_and_last_wins() -> None:
    message = bytes.fromhex("0B0003 01 02 010804 BEEF 05 04") + b"x"
    assert read_concat_info(message, 0x40 | 0x03, ()) == ConcatInfo(0xBEEF, 5, 4, b"x")


def test_udh_without_concatenation_is_single() -> None:
    assert read_concat_info(bytes.fromhex("0405021F001F00") + b"x", EsmClass.UDHI, ()) is None
    assert read_concat_info(b"hello", 0, ()) is None


def test_read_sar_from_payload() -> None:
    tlvs = (
        (Tag.SAR_MSG_REF_NUM, b"\x01\x02"),
        (Tag.SAR_TOTAL_SEGMENTS, b"\x03"),
        (Tag.SAR_SEGMENT_SEQNUM, b"\x01"),
        (Tag.MESSAGE_PAYLOAD, b"data"),
    )
    assert read_concat_info(b"", 0, tlvs) == ConcatInfo(0x0102, 3, 1, b"data")


@pytest.mark.parametrize(
    ("message", "tlvs", "status"),
    [
        (b"", (), CommandStatus.ESME_RINVMSGLEN),
        (b"\x05\x00\x03\x01", (), CommandStatus.ESME_RINVMSGLEN),  # UDHL beyond the message
        (b"\x01\x00", (), CommandStatus.ESME_RINVMSGLEN),  # IE header cut
        (b"\x03\x00\x03\x01", (), CommandStatus.ESME_RINVMSGLEN),  # IE beyond the UDH
        (b"\x04\x00\x02\x01\x01", (), CommandStatus.ESME_RINVMSGLEN),  # concat IE of wrong length
        (b"\x05\x00\x03\x01\x02\x03", (), CommandStatus.ESME_RINVOPTPARAMVAL),  # part 3 of 2
        (b"\x05\x00\x03\x01\x00\x00", (), CommandStatus.ESME_RINVOPTPARAMVAL),  # total 0
    ],
)
def test_malformed_udh(message: bytes, tlvs: tuple[tuple[int, bytes], ...], status: int) -> None:
    with pytest.raises(ConcatError) as exc:
        read_concat_info(message, EsmClass.UDHI, tlvs)
    assert exc.value.status == status


def test_malformed_sar() -> None:
    with pytest.raises(ConcatError) as exc:
        read_concat_info(b"x", 0, ((Tag.SAR_MSG_REF_NUM, b"\x00\x01"),))
    assert exc.value.status == CommandStatus.ESME_RMISSINGOPTPARAM
    bad_width = ((Tag.SAR_MSG_REF_NUM, b"\x01"), (Tag.SAR_TOTAL_SEGMENTS, b"\x02"), (Tag.SAR_SEGMENT_SEQNUM, b"\x01"))
    with pytest.raises(ConcatError) as exc:
        read_concat_info(b"x", 0, bad_width)
    assert exc.value.status == CommandStatus.ESME_RINVPARLEN


# --- reassembly -----------------------------------------------------------------------------------------------------


def test_reassembler_any_order_and_duplicates() -> None:
    r = Reassembler(max_pending=10, ttl=60)
    parts = [ConcatInfo(7, 3, seq, bytes((0x60 + seq,))) for seq in (3, 1, 3, 2)]
    results = [r.add("k", info, now=0.0) for info in parts]
    assert results[:3] == [Added(None, None)] * 3
    assert results[3] == Added(b"abc", None)
    assert len(r) == 0


def test_reassembler_keys_apart() -> None:
    r = Reassembler(max_pending=10, ttl=60)
    r.add("a", ConcatInfo(1, 2, 1, b"A1"), 0.0)
    r.add("b", ConcatInfo(1, 2, 1, b"B1"), 0.0)
    r.add("a", ConcatInfo(1, 3, 1, b"X"), 0.0)  # same reference, other total: another message
    assert r.add("b", ConcatInfo(1, 2, 2, b"B2"), 0.0).payload == b"B1B2"
    assert len(r) == 2


def test_reassembler_single_part_passes_through() -> None:
    r = Reassembler(max_pending=1, ttl=1)
    assert r.add("k", ConcatInfo(0, 1, 1, b"x"), 0.0) == Added(b"x", None)
    assert len(r) == 0


def test_reassembler_expiry() -> None:
    r = Reassembler(max_pending=10, ttl=30)
    r.add("a", ConcatInfo(1, 2, 2, b"late"), 100.0)
    r.add("b", ConcatInfo(2, 2, 1, b"x"), 110.0)
    assert r.next_deadline() == 130.0
    assert r.expire(129.9) == []
    (expired,) = r.expire(130.0)
    assert (expired.key, expired.reference, expired.total, expired.parts) == ("a", 1, 2, ((2, b"late"),))
    assert r.next_deadline() == 140.0
    assert [p.key for p in r.expire(1000.0)] == ["b"]
    assert r.next_deadline() is None


def test_reassembler_evicts_oldest_when_full() -> None:
    r = Reassembler(max_pending=2, ttl=30)
    r.add("a", ConcatInfo(1, 2, 1, b"a"), 1.0)
    r.add("b", ConcatInfo(1, 2, 1, b"b"), 2.0)
    added = r.add("c", ConcatInfo(1, 2, 1, b"c"), 3.0)
    assert added.payload is None
    assert added.evicted is not None
    assert added.evicted.key == "a"
    assert len(r) == 2


# --- properties -----------------------------------------------------------------------------------------------------

boundary_heavy = st.text(alphabet=st.sampled_from(["a", "@", "€", "{", CYR, EMOJI, "é", "Δ", "\n"]), max_size=1200)
texts = st.one_of(st.text(max_size=600), boundary_heavy)
modes = st.sampled_from([ConcatMode.UDH8, ConcatMode.UDH16, ConcatMode.SAR, ConcatMode.PAYLOAD])


def septets_of_udh(short_message: bytes, esm_class: int) -> tuple[int, bytes]:
    if not esm_class & EsmClass.UDHI:
        return 0, short_message
    udh_octets = short_message[0] + 1
    return -(-udh_octets * 8 // 7), short_message[udh_octets:]


@settings(max_examples=500)
@given(texts, modes, st.integers(0, 255), st.randoms(use_true_random=False))
def test_split_then_reassemble(text: str, mode: ConcatMode, reference: int, rnd: random.Random) -> None:
    message = split_message(text, reference=reference, mode=mode)
    expected_encoding = Encoding.GSM7 if set(text) <= GSM_CHARS else Encoding.UCS2
    assert message.encoding is expected_encoding
    assert message.segments == segment_count(text, mode=mode)
    assert len(message.parts) == (1 if mode is ConcatMode.PAYLOAD else message.segments)
    for part in message.parts:
        if message.encoding is Encoding.GSM7 and mode is not ConcatMode.PAYLOAD:
            udh_septets, body = septets_of_udh(part.short_message, part.esm_class_bits)
            assert udh_septets + len(body) <= 160
            sar_limit = 152 if mode is ConcatMode.SAR and part.total > 1 else 160
            assert len(body) <= sar_limit
        elif mode is not ConcatMode.PAYLOAD:
            assert len(part.short_message) <= 140
            assert len(part.short_message) % 2 == (1 if part.esm_class_bits and mode is ConcatMode.UDH16 else 0)
    shuffled = list(message.parts)
    rnd.shuffle(shuffled)
    r = Reassembler(max_pending=4, ttl=60)
    complete = []
    for part in shuffled:
        info = read_concat_info(part.short_message, part.esm_class_bits, part.tlvs)
        if info is None:
            complete.append(dict(part.tlvs).get(Tag.MESSAGE_PAYLOAD, part.short_message))
            continue
        added = r.add(("src", "dst"), info, now=0.0)
        assert added.evicted is None
        if added.payload is not None:
            complete.append(added.payload)
    assert len(complete) == 1
    assert decode_short_message(complete[0], data_coding_for(message.encoding)) == text


@settings(max_examples=500)
@given(texts)
def test_no_part_ends_inside_an_escape_or_pair(text: str) -> None:
    message = split_message(text, reference=1)
    for body in payloads(message):
        if message.encoding is Encoding.GSM7:
            assert not body.endswith(b"\x1b")  # encoded text never holds ESC ESC
        else:
            assert len(body) < 2 or body[-2] & 0xFC != 0xD8


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(["a", "€", "b"]), min_size=150, max_size=170))
def test_gsm7_parts_are_maximal(text: str) -> None:
    """A part is cut short only to keep an escape sequence whole."""
    septets = encode_gsm7(text)
    offset = 0
    for body in payloads(split_message(text, reference=1))[:-1]:
        offset += len(body)
        assert len(body) == 153 or (len(body) == 152 and septets[offset] == 0x1B)


@settings(max_examples=500)
@given(
    st.binary(max_size=300), st.integers(0, 255), st.binary(max_size=6), st.binary(max_size=3), st.binary(max_size=3)
)
def test_read_concat_info_raises_only_concat_error(
    message: bytes, esm_class: int, ref: bytes, total: bytes, seq: bytes
) -> None:
    tlvs = ((Tag.SAR_MSG_REF_NUM, ref), (Tag.SAR_TOTAL_SEGMENTS, total), (Tag.SAR_SEGMENT_SEQNUM, seq))
    for chosen in (tlvs, tlvs[:1], (), ((Tag.MESSAGE_PAYLOAD, message),)):
        try:
            info = read_concat_info(message, esm_class, chosen)
        except ConcatError:
            continue
        if info is not None:
            assert info.total >= info.seqnum >= 1


@settings(max_examples=500)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 3), st.floats(0, 100)), max_size=60))
def test_reassembler_stays_bounded(events: list[tuple[int, int, int, float]]) -> None:
    r = Reassembler(max_pending=3, ttl=10)
    now = 0.0
    for key, ref, seq, step in events:
        now += step
        r.expire(now)
        r.add(key, ConcatInfo(ref, 3, seq, b"p"), now)
        assert len(r) <= 3
        deadline = r.next_deadline()
        assert deadline is None or deadline > now
