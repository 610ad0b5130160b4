"""The load test's configuration: one immutable value, validated once, built from the CLI or by an embedding caller.

A run is always bounded: by ``count`` messages (``duration`` derives a count from the rate) and by ``max_seconds`` for
everything up to the last submit_sm_resp; then the receipt wait is bounded by ``receipt_timeout``. Worst case wall time
is ``bind_timeout + max_seconds + receipt_timeout`` plus a few seconds of unbinding.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Final

import msgspec

from smppgw.smpp.concat import ConcatMode
from smppgw.smpp.receipt import IdRadix


class ConfigError(ValueError):
    """A configuration value is unusable (the message says which and why)."""


class MessageKind(Enum):
    """The message classes of a mix (see ``mix.py`` for their texts)."""

    LATIN = "latin"  # short GSM-7, ~60 characters, one segment
    CYRILLIC = "cyrillic"  # short UCS-2, <= 70 characters, one segment
    LONG = "long"  # long Cyrillic UCS-2, 3-5 segments
    EMOJI = "emoji"  # short UCS-2 with surrogate pairs, one segment


class BindMode(Enum):
    TRX = "trx"  # every bind transmits and receives receipts
    TX_RX = "tx+rx"  # ``binds`` transmitters plus ``rx_binds`` receivers


DEFAULT_MIX: Final = (
    (MessageKind.LATIN, 40),
    (MessageKind.CYRILLIC, 40),
    (MessageKind.LONG, 15),
    (MessageKind.EMOJI, 5),
)
MAX_SECONDS_SLACK: Final = 30.0
"""Default hard limit: the schedule's own length plus this much (for binding hiccups and a slow server)."""
UNLIMITED_RATE_ASSUMED: Final = 1000.0
"""With rate 0 (closed loop) the default hard limit assumes at least this many messages per second."""


class LoadConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one load run needs. Build with keyword arguments, then call ``validated()``."""

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "loadtest"
    password: str = ""
    system_type: str = ""
    binds: int = 1
    bind_mode: BindMode = BindMode.TRX
    rx_binds: int = 0  # TX_RX only; 0 means "as many as binds"
    window: int = 100
    rate: float = 1000.0  # messages (not segments) per second; 0 = closed loop, as fast as the windows allow
    count: int | None = None
    duration: float | None = None  # seconds of schedule; derives count = rate * duration
    mix: tuple[tuple[MessageKind, int], ...] = DEFAULT_MIX
    concat: ConcatMode = ConcatMode.UDH8
    seed: int = 1
    source_addr: str = "MFK-Zaim"
    source_ton: int = 5
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    registered_delivery: int = 1
    max_seconds: float | None = None  # None: schedule length + MAX_SECONDS_SLACK
    receipt_timeout: float = 10.0
    require_receipts: bool = False
    max_parked: int = 100_000
    resp_id_radix: IdRadix | None = None  # None: auto (every reading of the id, see correlator)
    receipt_id_radix: IdRadix | None = None
    bind_timeout: float = 10.0
    response_timeout: float = 30.0
    enquire_link_interval: float = 30.0

    @property
    def total_messages(self) -> int:
        """The message count this run schedules (validated configs only)."""
        assert self.count is not None
        return self.count

    @property
    def receiver_binds(self) -> int:
        if self.bind_mode is BindMode.TRX:
            return 0
        return self.rx_binds or self.binds

    @property
    def hard_limit(self) -> float:
        """Seconds from the first scheduled message to giving up on submits and their responses."""
        assert self.max_seconds is not None
        return self.max_seconds

    def validated(self) -> LoadConfig:
        """A copy with derived values filled in (count, max_seconds); raises ConfigError on nonsense."""
        _check(self.binds >= 1, "binds must be >= 1")
        _check(self.rx_binds >= 0, "rx_binds must be >= 0")
        _check(self.window >= 1, "window must be >= 1")
        _check(self.rate >= 0 and math.isfinite(self.rate), "rate must be >= 0 (0 = unlimited)")
        _check(0 <= self.port <= 65535, "port must be 0..65535")
        _check(self.receipt_timeout >= 0, "receipt_timeout must be >= 0")
        _check(self.max_parked >= 0, "max_parked must be >= 0")
        _check(bool(self.mix) and all(w >= 0 for _, w in self.mix), "mix weights must be >= 0")
        _check(sum(w for _, w in self.mix) > 0, "mix needs at least one positive weight")
        _check((self.resp_id_radix is None) == (self.receipt_id_radix is None), "give both id radixes or neither")
        count = self._derived_count()
        max_seconds = self.max_seconds
        if max_seconds is None:
            rate = self.rate or UNLIMITED_RATE_ASSUMED
            max_seconds = count / rate + MAX_SECONDS_SLACK
        _check(max_seconds > 0, "max_seconds must be > 0")
        return msgspec.structs.replace(self, count=count, max_seconds=max_seconds)

    def _derived_count(self) -> int:
        count = self.count
        if self.duration is not None:
            _check(self.duration > 0, "duration must be > 0")
            _check(self.rate > 0 or count is not None, "duration needs a rate (or give count)")
            by_duration = math.ceil(self.rate * self.duration) if self.rate > 0 else None
            count = by_duration if count is None else min(count, by_duration or count)
        _check(count is not None, "give count or duration: a run is always bounded")
        assert count is not None
        _check(count >= 0, "count must be >= 0")
        return count


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def parse_mix(text: str) -> tuple[tuple[MessageKind, int], ...]:
    """``latin=40,cyrillic=40,long=15,emoji=5`` → ((LATIN, 40), ...); weights are relative integers."""
    entries: list[tuple[MessageKind, int]] = []
    for item in text.split(","):
        name, sep, weight = item.strip().partition("=")
        try:
            kind = MessageKind(name.strip().lower())
            value = int(weight) if sep else 1
        except ValueError:
            kinds = ", ".join(k.value for k in MessageKind)
            raise ConfigError(f"bad mix entry {item!r}: use NAME=WEIGHT with NAME one of {kinds}") from None
        _check(value >= 0, f"mix weight of {name} must be >= 0")
        entries.append((kind, value))
    _check(len({kind for kind, _ in entries}) == len(entries), "a mix names each kind at most once")
    return tuple(entries)


def format_mix(mix: tuple[tuple[MessageKind, int], ...]) -> str:
    return ",".join(f"{kind.value}={weight}" for kind, weight in mix)


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:2775``) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"target must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def parse_id_radix(text: str) -> tuple[IdRadix | None, IdRadix | None]:
    """``auto`` or ``RESP[:RECEIPT]`` with each of text / decimal / hex (``hex:decimal``: the SMSC answers
    submit_sm_resp in hex and writes receipts in decimal)."""
    if text == "auto":
        return None, None
    resp, _, receipt = text.partition(":")
    try:
        first = IdRadix(resp)
        return first, IdRadix(receipt) if receipt else first
    except ValueError:
        raise ConfigError(f"id radix must be auto or RESP[:RECEIPT] of text/decimal/hex, got {text!r}") from None
