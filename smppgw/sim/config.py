"""Simulator configuration: immutable, validated values; a TOML profile; command-line overrides on top.

Everything is a ``msgspec.Struct`` decoded with ``msgspec.convert``, so a profile is validated in one place with
error messages that name the field (``Expected `float`, got `str` - at `$.faults.drop_fraction```). Two values have
a compact text form accepted both in TOML and on the command line:

* ``Delay`` (milliseconds): ``"0"`` / ``5`` (fixed), ``"fixed:5"``, ``"uniform:1-10"``, ``"exp:200"`` (exponential
  with that mean), or a table ``{kind = "uniform", min = 1, max = 10}`` / ``{kind = "exponential", mean = 200}``.
* ``StatMix``: ``"DELIVRD=0.9,UNDELIV=0.05,EXPIRED=0.03,REJECTD=0.02"`` or a table ``{DELIVRD = 0.9, ...}``; the
  weights are normalised, names are any ``stat:`` spelling of a *final* state (``smppgw.smpp.receipt.STAT_STATES``).
"""

from __future__ import annotations

import bisect
import math
import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from smppgw.smpp.constants import CommandStatus, MessageState
from smppgw.smpp.receipt import STAT_STATES, STATE_STATS

IdFormat = Literal["hex", "dec", "uuid"]
ReceiptIdFormat = Literal["same", "hex", "dec"]
EnrouteMode = Literal["off", "requested", "always"]


class ConfigError(ValueError):
    """A profile or flag value is invalid; the message says which and why."""


# ---------------------------------------------------------------------------------------------------- Delay


class Delay:
    """A delay distribution in milliseconds; ``sample(rng)`` returns **seconds**. Immutable.

    ``fixed`` (``a`` ms), ``uniform`` (``a``..``b`` ms) or ``exponential`` (mean ``a`` ms, capped at
    ``EXP_CAP`` means so one unlucky draw cannot park a receipt for hours).
    """

    __slots__ = ("_sample", "a", "b", "kind")

    KINDS: Final = ("fixed", "uniform", "exponential")
    EXP_CAP: Final = 20.0

    kind: str
    a: float
    b: float

    def __init__(self, kind: str = "fixed", a: float = 0.0, b: float = 0.0) -> None:
        kind = {"exp": "exponential", "uni": "uniform"}.get(kind, kind)
        if kind not in self.KINDS:
            raise ConfigError(f"delay kind must be one of {', '.join(self.KINDS)}, not {kind!r}")
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
            raise ConfigError(f"delay values must be finite and >= 0 ms: {a}, {b}")
        if kind == "uniform" and b < a:
            raise ConfigError(f"uniform delay needs min <= max: {a}-{b}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "a", float(a))
        object.__setattr__(self, "b", float(b) if kind == "uniform" else 0.0)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Delay is immutable")

    @classmethod
    def parse(cls, value: object) -> Delay:
        """From a number, a text spec or a table (see the module docstring). Raises ConfigError."""
        if isinstance(value, Delay):
            return value
        if isinstance(value, bool):
            raise ConfigError(f"not a delay: {value!r}")
        if isinstance(value, int | float):
            return cls("fixed", float(value))
        if isinstance(value, str):
            return cls._parse_text(value.strip())
        if isinstance(value, Mapping):
            return cls._parse_table(value)
        raise ConfigError(f"not a delay: {value!r}")

    @classmethod
    def _parse_text(cls, text: str) -> Delay:
        kind, sep, rest = text.partition(":")
        if not sep:
            kind, rest = "fixed", text
        try:
            if kind in ("uniform", "uni"):
                low, dash, high = rest.partition("-")
                if not dash:
                    raise ConfigError(f"uniform delay is 'uniform:MIN-MAX', not {text!r}")
                return cls("uniform", float(low), float(high))
            return cls(kind, float(rest))
        except ValueError as exc:
            raise ConfigError(f"bad delay {text!r}: {exc}") from None

    @classmethod
    def _parse_table(cls, table: Mapping[Any, Any]) -> Delay:
        unknown = set(table) - {"kind", "ms", "min", "max", "mean"}
        if unknown:
            raise ConfigError(f"unknown delay keys: {sorted(unknown)}")
        kind = str(table.get("kind", "fixed"))
        try:
            if kind == "uniform":
                return cls(kind, float(table["min"]), float(table["max"]))
            if kind in ("exponential", "exp"):
                return cls(kind, float(table["mean"]))
            return cls(kind, float(table.get("ms", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad delay table {dict(table)!r}: {exc}") from None

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0.0

    @property
    def mean_ms(self) -> float:
        return (self.a + self.b) / 2 if self.kind == "uniform" else self.a

    def sample(self, rng: random.Random) -> float:
        """One draw, in seconds."""
        if self.kind == "fixed":
            return self.a / 1000.0
        if self.kind == "uniform":
            return (self.a + (self.b - self.a) * rng.random()) / 1000.0
        if self.a == 0.0:
            return 0.0
        return min(rng.expovariate(1.0 / self.a), self.EXP_CAP * self.a) / 1000.0

    def sampler(self, rng: random.Random) -> Any:
        """A zero-argument callable returning draws in seconds, specialised for speed (hot path)."""
        if self.kind == "fixed":
            value = self.a / 1000.0
            return lambda: value
        if self.kind == "uniform":
            low, span, draw = self.a / 1000.0, (self.b - self.a) / 1000.0, rng.random
            return lambda: low + span * draw()
        if self.a == 0.0:
            return lambda: 0.0
        rate, cap, expo = 1.0 / (self.a / 1000.0), self.EXP_CAP * self.a / 1000.0, rng.expovariate
        return lambda: min(expo(rate), cap)

    def spec(self) -> str:
        """The text form (round-trips through ``parse``)."""
        if self.kind == "uniform":
            return f"uniform:{self.a:g}-{self.b:g}"
        return f"{'exp' if self.kind == 'exponential' else 'fixed'}:{self.a:g}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Delay) and (self.kind, self.a, self.b) == (other.kind, other.a, other.b)

    def __hash__(self) -> int:
        return hash((self.kind, self.a, self.b))

    def __repr__(self) -> str:
        return f"Delay({self.spec()!r})"


# ---------------------------------------------------------------------------------------------------- StatMix


def _number(value: object, what: str) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{what} is not a number: {value!r}")


class StatMix:
    """Weighted final outcomes of receipts. ``pick(u)`` maps a uniform draw ``u`` in [0, 1) to a state. Immutable."""

    __slots__ = ("_cumulative", "states", "weights")

    states: tuple[MessageState, ...]
    weights: tuple[float, ...]
    _cumulative: tuple[float, ...]

    def __init__(self, items: Mapping[MessageState, float]) -> None:
        if not items:
            raise ConfigError("stat mix is empty")
        for state, weight in items.items():
            if not state.is_final:
                raise ConfigError(f"stat mix may only hold final states, not {STATE_STATS[state]}")
            if not math.isfinite(weight) or weight < 0:
                raise ConfigError(f"stat mix weight of {STATE_STATS[state]} must be >= 0: {weight}")
        total = sum(items.values())
        if total <= 0:
            raise ConfigError("stat mix weights sum to zero")
        states = tuple(state for state, weight in items.items() if weight > 0)
        weights = tuple(items[state] / total for state in states)
        cumulative: list[float] = []
        running = 0.0
        for weight in weights:
            running += weight
            cumulative.append(running)
        cumulative[-1] = 1.0  # float sums may fall short of 1: the last state takes the rest
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "_cumulative", tuple(cumulative))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("StatMix is immutable")

    @classmethod
    def parse(cls, value: object) -> StatMix:
        """From ``"DELIVRD=0.9,UNDELIV=0.1"`` or a table ``{DELIVRD = 0.9, ...}``. Raises ConfigError."""
        if isinstance(value, StatMix):
            return value
        pairs: list[tuple[str, object]]
        if isinstance(value, str):
            pairs = []
            for item in filter(None, (chunk.strip() for chunk in value.split(","))):
                name, sep, text = item.partition("=")
                if not sep:
                    raise ConfigError(f"stat mix item must be STAT=WEIGHT, not {item!r}")
                pairs.append((name, text))
        elif isinstance(value, Mapping):
            pairs = [(str(name), weight) for name, weight in value.items()]
        else:
            raise ConfigError(f"not a stat mix: {value!r}")
        items: dict[MessageState, float] = {}
        for name, weight in pairs:
            state = STAT_STATES.get(name.strip().upper())
            if state is None:
                raise ConfigError(f"unknown receipt stat {name!r} (known: {', '.join(STAT_STATES)})")
            items[state] = items.get(state, 0.0) + _number(weight, f"stat mix weight of {name}")
        return cls(items)

    def pick(self, u: float) -> MessageState:
        return self.states[bisect.bisect_right(self._cumulative, u)]

    def index(self, u: float) -> int:
        """Position in ``states`` of the state that ``u`` picks."""
        return bisect.bisect_right(self._cumulative, u)

    def spec(self) -> str:
        return ",".join(f"{STATE_STATS[s]}={w:g}" for s, w in zip(self.states, self.weights, strict=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatMix) and (self.states, self.weights) == (other.states, other.weights)

    def __hash__(self) -> int:
        return hash((self.states, self.weights))

    def __repr__(self) -> str:
        return f"StatMix({self.spec()!r})"


DEFAULT_ERRORS: Final[Mapping[MessageState, int]] = {
    MessageState.DELIVERED: 0,
    MessageState.UNDELIVERABLE: 1,  # GSM MAP: unknown subscriber
    MessageState.EXPIRED: 27,  # GSM MAP: absent subscriber
    MessageState.REJECTED: 11,  # GSM MAP: teleservice not provisioned
    MessageState.DELETED: 0,
    MessageState.UNKNOWN: 0,
}
"""``err:`` / network_error_code per final state unless the profile's ``receipts.errors`` says otherwise."""


# ---------------------------------------------------------------------------------------------------- structs


def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within 0..1, not {value}")


class Account(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An ESME allowed to bind. With no accounts configured, any system_id / password binds."""

    system_id: str
    password: str = ""


class ResponseConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    delay_ms: Delay = Delay()
    """Latency of every response; fixed 0 answers in the same loop iteration (the fast path)."""


class ReceiptConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    delay_ms: Delay = Delay("fixed", 100.0)
    """From submit to the final receipt (also when query_sm starts reporting the final state)."""
    mix: StatMix = StatMix({MessageState.DELIVERED: 1.0})
    text: bool = True
    """Write the appendix-B text in short_message."""
    tlvs: bool = True
    """Add receipted_message_id, message_state and network_error_code."""
    id_format: ReceiptIdFormat = "same"
    """Id form inside receipts: ``same`` as in submit_sm_resp, or always ``hex`` / ``dec`` (an SMSC quirk)."""
    before_response: bool = False
    """Send the final receipt ahead of submit_sm_resp (same write on a transceiver) to test receipt parking."""
    no_final_fraction: float = 0.0
    """Share of messages that never get a final receipt (routes without receipts)."""
    enroute: EnrouteMode = "off"
    """Intermediate ENROUTE receipt: never, when registered_delivery bit 4 asks for it, or always."""
    enroute_delay_ms: Delay = Delay("fixed", 0.0)
    force: bool = False
    """Send receipts even when registered_delivery does not ask for one."""
    errors: dict[str, int] = {}
    """``err:`` code per stat name, overriding DEFAULT_ERRORS."""
    queue_limit: int = 100_000
    """Receipts waiting for a receiver bind, per system_id; beyond it new receipts are dropped (counted)."""
    max_attempts: int = 5
    """deliver_sm attempts per receipt (error status, timeout or disconnect count as failed attempts)."""
    retry_delay_ms: float = 1000.0
    response_timeout_s: float = 10.0
    """How long a deliver_sm waits for its deliver_sm_resp."""

    def __post_init__(self) -> None:
        _fraction("receipts.no_final_fraction", self.no_final_fraction)
        if self.queue_limit < 0 or self.max_attempts < 1:
            raise ValueError("receipts.queue_limit must be >= 0 and receipts.max_attempts >= 1")
        if self.retry_delay_ms < 0 or self.response_timeout_s <= 0:
            raise ValueError("receipts.retry_delay_ms must be >= 0 and receipts.response_timeout_s > 0")
        for name, code in self.errors.items():
            if STAT_STATES.get(name.upper()) is None:
                raise ValueError(f"receipts.errors: unknown stat {name!r}")
            if not 0 <= code <= 0xFFFF:
                raise ValueError(f"receipts.errors: {name} code must be 0..65535")

    def error_code(self, state: MessageState) -> int:
        for name, code in self.errors.items():
            if STAT_STATES[name.upper()] is state:
                return code
        return DEFAULT_ERRORS.get(state, 0)


class FaultConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    throttle_tps: float = 0.0
    """Requests per second per system_id (all binds together) above which ESME_RTHROTTLED is answered; 0 = off."""
    throttle_burst: float = 0.0
    """Token bucket size; 0 = a tenth of a second's worth (at least 1)."""
    msgqful_fraction: float = 0.0
    """Share of submits answered ESME_RMSGQFUL."""
    error_fraction: float = 0.0
    """Share of submits answered ``error_status``."""
    error_status: int = int(CommandStatus.ESME_RSYSERR)
    drop_fraction: float = 0.0
    """Share of submits never answered (and not accepted: no receipt)."""
    disconnect_every_pdus: int = 0
    """Close a connection (no unbind) after this many requests on it; 0 = never."""
    disconnect_every_seconds: float = 0.0
    """Close a connection this long after it bound; 0 = never."""

    def __post_init__(self) -> None:
        for name in ("msgqful_fraction", "error_fraction", "drop_fraction"):
            _fraction(f"faults.{name}", getattr(self, name))
        if self.msgqful_fraction + self.error_fraction + self.drop_fraction > 1.0 + 1e-9:
            raise ValueError("faults: msgqful + error + drop fractions exceed 1")
        if self.throttle_tps < 0 or self.throttle_burst < 0:
            raise ValueError("faults.throttle_tps and throttle_burst must be >= 0")
        if not 0 < self.error_status <= 0xFFFFFFFF:
            raise ValueError("faults.error_status must be a non-zero command_status")
        if self.disconnect_every_pdus < 0 or self.disconnect_every_seconds < 0:
            raise ValueError("faults.disconnect_every_* must be >= 0")

    @property
    def burst(self) -> float:
        return self.throttle_burst or max(1.0, self.throttle_tps / 10.0)

    @property
    def any_status_fault(self) -> bool:
        return bool(self.msgqful_fraction or self.error_fraction or self.drop_fraction)


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole simulator. Defaults: any bind accepted, hex ids, synchronous responses, DELIVRD after 100 ms."""

    system_id: str = "smppgw-sim"
    """Ours, written in bind responses."""
    accounts: tuple[Account, ...] = ()
    id_format: IdFormat = "hex"
    seed: int | None = None
    """Seed of the one RNG behind ids, latencies, outcomes and faults (None: from the OS)."""
    window: int = 1000
    """deliver_sm in flight per receiver bind."""
    tick_ms: float = 2.0
    """Resolution of every scheduled action (delayed responses, receipts, retries)."""
    known_messages: int = 100_000
    """Messages remembered for query_sm / cancel_sm / replace_sm (oldest forgotten first); 0 = none."""
    enquire_link_s: float | None = 30.0
    """Keepalive towards silent ESMEs (the session also answers theirs); None = off."""
    bind_timeout_s: float | None = 30.0
    """Close connections that do not bind within this time; None = never."""
    max_connections: int = 1000
    handset_record: bool = False
    """Reassemble and decode what "reached the handset" (costs CPU)."""
    handset_limit: int = 10_000
    """Reassembled messages kept in memory (oldest dropped)."""
    response: ResponseConfig = ResponseConfig()
    receipts: ReceiptConfig = ReceiptConfig()
    faults: FaultConfig = FaultConfig()

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 100_000:
            raise ValueError("window must be within 1..100000")
        if not 0.5 <= self.tick_ms <= 1000:
            raise ValueError("tick_ms must be within 0.5..1000")
        if self.known_messages < 0 or self.handset_limit < 0 or self.max_connections < 1:
            raise ValueError("known_messages and handset_limit must be >= 0, max_connections >= 1")
        if len(self.system_id) > 15:
            raise ValueError("system_id is at most 15 characters")
        if self.id_format == "uuid" and self.receipts.id_format != "same":
            raise ValueError("receipts.id_format must be 'same' with uuid ids")
        seen = set()
        for account in self.accounts:
            if account.system_id in seen:
                raise ValueError(f"account {account.system_id!r} is listed twice")
            seen.add(account.system_id)


# ---------------------------------------------------------------------------------------------------- loading


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Delay:
        return Delay.parse(value)
    if type_ is StatMix:
        return StatMix.parse(value)
    raise TypeError(f"cannot decode {type_!r}")  # msgspec reports it as a ValidationError with the path


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Delay | StatMix):
        return value.spec()
    raise TypeError(f"cannot encode {type(value)!r}")


def config_from_dict(data: Mapping[str, Any]) -> SimConfig:
    """Validate a plain mapping (a parsed TOML profile). Raises ConfigError naming the offending field."""
    try:
        return msgspec.convert(dict(data), SimConfig, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(exc)) from None


def load_profile(path: str | Path) -> SimConfig:
    """Read a TOML profile (see ``config/sim.example.toml``). Raises ConfigError."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {path} is not valid TOML: {exc}") from None
    return config_from_dict(data)


def config_to_dict(config: SimConfig) -> dict[str, Any]:
    """Plain JSON-able form (for the summary and stats file); Delay and StatMix in their text form."""
    result: dict[str, Any] = msgspec.to_builtins(config, enc_hook=_enc_hook)
    return result


def with_overrides(config: SimConfig, overrides: Mapping[str, Any]) -> SimConfig:
    """Replace fields given as dotted names (``"receipts.delay_ms"``); values are validated like a profile's."""
    data = config_to_dict(config)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for name in parents:
            node = node[name]
        if leaf not in node:
            raise ConfigError(f"unknown setting {dotted!r}")
        node[leaf] = value
    return config_from_dict(data)
