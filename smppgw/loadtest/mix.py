"""The message mix: realistic texts of Russian lenders, planned into submit_sm templates once, before the run.

Every text is split and encoded at start-up (``smpp.concat.split_message``); the hot path only picks a template by
weight, draws a destination ``79XXXXXXXXX`` in an allocated DEF code and, for a long message, stamps a fresh
concatenation reference into each part — one ``msgspec.structs.replace`` per part, no text encoding. Everything
random comes from one seeded ``random.Random``: the same seed gives the same sequence of messages.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from typing import Final

import msgspec

from smppgw.smpp.concat import ConcatMode, split_message
from smppgw.smpp.constants import Tag
from smppgw.smpp.pdu import SubmitSm
from smppgw.smpp.text import data_coding_for

from .config import LoadConfig, MessageKind

TEXTS: Final[Mapping[MessageKind, tuple[str, ...]]] = {
    MessageKind.LATIN: (
        "Vash kod podtverzhdeniya: 4821. Nikomu ego ne soobshchaite.",
        "Zaim odobren! 15000 RUB zachisleny na kartu *4417. Zaimer",
        "Napominaem: platezh 3250 RUB do 25.06. Oplata: zaim.ru/pay",
        "Kod 730519 dlya vhoda v lichnyi kabinet MoneyMan. Ne peredavaite",
    ),
    MessageKind.CYRILLIC: (
        "Ваш код подтверждения: 4821. Никому его не сообщайте.",
        "Займ одобрен! 15 000 ₽ зачислены на карту *4417. Займер",
        "Напоминаем: платёж 3 250 ₽ по договору №7731 до 25.06.",
        "Просрочка 3 дня. Погасите 4 870 ₽ сегодня, чтобы избежать пени.",
    ),
    MessageKind.LONG: (
        "Уважаемый клиент! По договору займа №7731-2024 от 12.05 образовалась просроченная задолженность "
        "4 870 ₽. Погасите её до 25.06 в личном кабинете zaim.ru/pay или в любом салоне связи без комиссии.",
        "Иван Петрович, напоминаем: ежемесячный платёж по кредиту 12 450 ₽ нужно внести до 28 числа. "
        "Оплатить можно картой любого банка в приложении, по СБП или наличными в отделении. "
        "Если платёж уже внесён, не обращайте внимания на это сообщение.",
        "Ваша заявка на займ 30 000 ₽ на 30 дней одобрена! Ставка 0,8% в день, полная стоимость займа "
        "292,000% годовых, сумма к возврату 37 200 ₽. Деньги поступят на карту *4417 в течение 15 минут после "
        "подписания договора кодом из СМС. Подписать договор: zaim.ru/sign. МФК Займер, рег. №651303045003161.",
    ),
    MessageKind.EMOJI: (
        "Одобрено 🎉 Ваш займ 15 000 ₽ уже на карте 💳 Хорошего дня!",
        "🔥 Только сегодня: займ под 0% для новых клиентов! СТОП - отказ",
        "✅ Платёж 3 250 ₽ получен. Спасибо, что вы с нами 🙏",
    ),
}
"""Short texts fit one SMS (GSM-7 <= 160 septets, UCS-2 <= 70 code units); long ones need 3-5 parts in every
concatenation mode (UCS-2, 66-67 code units per part)."""

_REFERENCE_MASK: Final = {
    ConcatMode.UDH8: 0xFF,
    ConcatMode.UDH16: 0xFFFF,
    ConcatMode.SAR: 0xFFFF,
    ConcatMode.PAYLOAD: 0,
}
_SAR_REF: Final = int(Tag.SAR_MSG_REF_NUM)
_ALLOCATED_DEF_CODES = (
    900, 901, 902, 903, 904, 905, 906, 909, 910, 911, 912, 913, 914, 915, 916, 917, 918, 919, 920, 921, 922, 925,
    926, 927, 928, 937, 941, 950, 951, 953, 960, 961, 962, 963, 964, 965, 967, 969, 980, 987, 988, 989, 995, 996, 999,
)  # fmt: skip
"""DEF codes whose every number is allocated in the Russian numbering plan (2026-08 registry), so a gateway that
refuses unallocated numbers accepts every destination drawn. Computed from smppgw/data/def9xx.csv."""
_DEST_SPAN = len(_ALLOCATED_DEF_CODES) * 10_000_000
REFERENCE_POOL: Final = 256
"""Distinct references a long message cycles through (enough: parts are told apart by destination too)."""


class Template(msgspec.Struct, frozen=True, gc=False):
    """One text, planned: the submit_sm of each part (destination and reference still to fill in)."""

    kind: MessageKind
    text: str
    parts: tuple[SubmitSm, ...]
    segments: int  # handset segments (in PAYLOAD mode one submit_sm carries several)


def build_template(kind: MessageKind, text: str, config: LoadConfig) -> Template:
    """Split and encode ``text`` once; raises TextError / MessageTooLongError for a text that cannot be sent."""
    split = split_message(text, reference=0, mode=config.concat)
    base = SubmitSm(
        source_addr_ton=config.source_ton,
        source_addr_npi=config.source_npi,
        source_addr=config.source_addr,
        dest_addr_ton=config.dest_ton,
        dest_addr_npi=config.dest_npi,
        registered_delivery=config.registered_delivery,
        data_coding=data_coding_for(split.encoding),
    )
    parts = tuple(
        msgspec.structs.replace(base, esm_class=part.esm_class_bits, short_message=part.short_message, tlvs=part.tlvs)
        for part in split.parts
    )
    return Template(kind, text, parts, split.segments)


def build_templates(config: LoadConfig) -> dict[MessageKind, tuple[Template, ...]]:
    """Templates of every kind the mix uses (weight > 0)."""
    return {
        kind: tuple(build_template(kind, text, config) for text in TEXTS[kind]) for kind, weight in config.mix if weight
    }


class MessageSource:
    """Draws the run's messages: a template by the mix weights, a destination, a reference for long ones.

    Long messages cycle through ``REFERENCE_POOL`` references (a seeded start, then +1 per message); each template's
    parts are stamped with every pool reference once, lazily, so the hot path only sets the destination.
    """

    def __init__(self, config: LoadConfig, templates: Mapping[MessageKind, tuple[Template, ...]] | None = None) -> None:
        templates = build_templates(config) if templates is None else templates
        self._rng = random.Random(config.seed)
        self._random = self._rng.random
        self._mode = config.concat
        self._reference = self._rng.randrange(0x10000)
        flat: list[Template] = []
        cumulative: list[float] = []
        total = 0.0
        for kind, weight in config.mix:
            variants = templates.get(kind, ())
            for template in variants:
                total += weight / len(variants)
                flat.append(template)
                cumulative.append(total)
        if not flat:
            raise ValueError("the mix has no message with a positive weight")
        self._templates = flat
        self._cumulative = cumulative
        self._total = total
        self._stamped: dict[tuple[int, int], tuple[SubmitSm, ...]] = {}

    @property
    def templates(self) -> tuple[Template, ...]:
        return tuple(self._templates)

    def next(self) -> tuple[Template, tuple[SubmitSm, ...]]:
        """The next message: its template and the submit_sm of every part, ready to send (sequence aside)."""
        rnd = self._random
        index = bisect.bisect_right(self._cumulative, rnd() * self._total)
        template = self._templates[min(index, len(self._templates) - 1)]
        draw = int(rnd() * _DEST_SPAN)
        destination = "7%03d%07d" % (_ALLOCATED_DEF_CODES[draw // 10_000_000], draw % 10_000_000)  # noqa: UP031
        parts = template.parts
        replace = msgspec.structs.replace
        if len(parts) == 1:
            return template, (replace(parts[0], destination_addr=destination),)
        self._reference = reference = (self._reference + 1) & _REFERENCE_MASK[self._mode]
        key = (id(template), reference % REFERENCE_POOL)
        stamped = self._stamped.get(key)
        if stamped is None:
            stamped = self._stamped[key] = stamp_reference(parts, self._mode, reference)
        return template, tuple([replace(part, destination_addr=destination) for part in stamped])


def stamp_reference(parts: tuple[SubmitSm, ...], mode: ConcatMode, reference: int) -> tuple[SubmitSm, ...]:
    """``parts`` of one long message with the concatenation reference set to ``reference``."""
    if mode is ConcatMode.PAYLOAD:
        return parts
    return tuple(msgspec.structs.replace(part, **_reference_fields(part, mode, reference)) for part in parts)


def _reference_fields(part: SubmitSm, mode: ConcatMode, reference: int) -> dict[str, object]:
    if mode is ConcatMode.SAR:
        tlvs = tuple((tag, reference.to_bytes(2, "big")) if tag == _SAR_REF else (tag, v) for tag, v in part.tlvs)
        return {"tlvs": tlvs}
    sm = part.short_message  # UDHL, IEI, IEDL, reference (1 or 2 octets), total, seqnum, text
    if mode is ConcatMode.UDH16:
        return {"short_message": sm[:3] + reference.to_bytes(2, "big") + sm[5:]}
    return {"short_message": sm[:3] + bytes((reference,)) + sm[4:]}
