"""The message mix: parts per kind in every concatenation mode, encodings, determinism, references, weights."""

from __future__ import annotations

import collections
import itertools
import re

import pytest

from smppgw.loadtest.config import LoadConfig, MessageKind, parse_mix
from smppgw.loadtest.mix import TEXTS, MessageSource, build_template, build_templates
from smppgw.smpp.codec import decode, encode
from smppgw.smpp.concat import ConcatMode, read_concat_info
from smppgw.smpp.constants import DataCoding, EsmClass, Tag
from smppgw.smpp.pdu import SubmitSm, get_tlv
from smppgw.smpp.text import decode_short_message


def config(**kw: object) -> LoadConfig:
    return LoadConfig(count=1, **kw).validated()  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", list(ConcatMode))
def test_parts_per_kind(mode: ConcatMode) -> None:
    templates = build_templates(config(concat=mode))
    for kind in (MessageKind.LATIN, MessageKind.CYRILLIC, MessageKind.EMOJI):
        assert all(len(t.parts) == 1 and t.segments == 1 for t in templates[kind]), kind
    for t in templates[MessageKind.LONG]:
        assert 3 <= t.segments <= 5
        assert len(t.parts) == (1 if mode is ConcatMode.PAYLOAD else t.segments)
    assert sorted(t.segments for t in templates[MessageKind.LONG]) == [3, 4, 5]  # every size is exercised


def test_encodings_and_header_fields() -> None:
    templates = build_templates(config())
    for t in templates[MessageKind.LATIN]:
        assert t.parts[0].data_coding == DataCoding.SMSC_DEFAULT
        assert 50 <= len(t.text) <= 70
    for kind in (MessageKind.CYRILLIC, MessageKind.EMOJI, MessageKind.LONG):
        for t in templates[kind]:
            assert all(p.data_coding == DataCoding.UCS2 for p in t.parts)
    for t in templates[MessageKind.CYRILLIC] + templates[MessageKind.EMOJI]:
        assert len(t.text.encode("utf-16-be")) // 2 <= 70
    for t in templates[MessageKind.EMOJI]:
        assert any(ord(ch) > 0xFFFF for ch in t.text)  # a surrogate pair on the wire
        assert re.search(rb"[\xd8-\xdb].[\xdc-\xdf].", t.parts[0].short_message, re.DOTALL)
        assert decode_short_message(t.parts[0].short_message, DataCoding.UCS2) == t.text
    part = templates[MessageKind.LATIN][0].parts[0]
    assert (part.source_addr_ton, part.source_addr_npi, part.registered_delivery) == (5, 0, 1)
    assert (part.dest_addr_ton, part.dest_addr_npi) == (1, 1)


def test_long_parts_reassemble_to_the_text() -> None:
    for t in build_templates(config())[MessageKind.LONG]:
        infos = [read_concat_info(p.short_message, p.esm_class, p.tlvs) for p in t.parts]
        assert all(info is not None for info in infos)
        text = "".join(decode_short_message(info.payload, DataCoding.UCS2) for info in infos if info)
        assert text == t.text


def test_same_seed_same_messages_and_different_seed_differs() -> None:
    def draw(seed: int) -> list[tuple[str, tuple[SubmitSm, ...]]]:
        source = MessageSource(config(seed=seed))
        return [(t.text, parts) for t, parts in (source.next() for _ in range(200))]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_destinations_are_russian_mobiles_and_every_pdu_encodes() -> None:
    source = MessageSource(config(concat=ConcatMode.SAR))
    for _ in range(500):
        _, parts = source.next()
        assert len({p.destination_addr for p in parts}) == 1
        for p in parts:
            assert re.fullmatch(r"79\d{9}", p.destination_addr)
            assert decode(encode(p)) == p


def test_weights_are_honoured() -> None:
    source = MessageSource(config(mix=parse_mix("latin=40,cyrillic=40,long=15,emoji=5"), seed=3))
    kinds = collections.Counter(source.next()[0].kind for _ in range(20_000))
    for kind, share in ((MessageKind.LATIN, 0.40), (MessageKind.CYRILLIC, 0.40), (MessageKind.LONG, 0.15)):
        assert abs(kinds[kind] / 20_000 - share) < 0.02
    only = MessageSource(config(mix=parse_mix("emoji=1,latin=0")))
    assert {only.next()[0].kind for _ in range(200)} == {MessageKind.EMOJI}


@pytest.mark.parametrize("mode", [ConcatMode.UDH8, ConcatMode.UDH16, ConcatMode.SAR])
def test_long_messages_get_fresh_references_shared_by_their_parts(mode: ConcatMode) -> None:
    source = MessageSource(config(mix=parse_mix("long=1"), concat=mode))
    references = []
    for _ in range(300):
        _, parts = source.next()
        infos = [read_concat_info(p.short_message, p.esm_class, p.tlvs) for p in parts]
        refs = {info.reference for info in infos if info}
        assert len(refs) == 1
        assert [info.seqnum for info in infos if info] == list(range(1, len(parts) + 1))
        assert all(info and info.total == len(parts) for info in infos)
        references.append(refs.pop())
        if mode is not ConcatMode.SAR:
            assert all(p.esm_class & EsmClass.UDHI for p in parts)
    assert all(a != b for a, b in itertools.pairwise(references))
    assert len(set(references)) >= 250


def test_payload_mode_carries_the_whole_text() -> None:
    t = build_template(MessageKind.LONG, TEXTS[MessageKind.LONG][2], config(concat=ConcatMode.PAYLOAD))
    (part,) = t.parts
    assert part.short_message == b""
    payload = get_tlv(part.tlvs, Tag.MESSAGE_PAYLOAD)
    assert payload is not None and decode_short_message(payload, DataCoding.UCS2) == t.text
    assert t.segments == 5
