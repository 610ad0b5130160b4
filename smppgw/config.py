"""Gateway configuration: typed, immutable, validated at start with every error reported at once.

The file is TOML (``config/smppgw.example.toml`` documents every key). With no file, ``default_config()`` gives a
working gateway: SMPP on 127.0.0.1:2775, HTTP on 127.0.0.1:8080, SQLite in the working directory, one local account
and a built-in simulator connector started in-process.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

TrafficClassName = Literal["otp", "transactional", "service", "marketing", "collection"]
TRAFFIC_CLASS_NAMES: tuple[str, ...] = ("otp", "transactional", "service", "marketing", "collection")
ConcatModeName = Literal["udh8", "udh16", "sar", "payload"]
AlphabetName = Literal["gsm7", "latin1", "ascii"]
BindModeName = Literal["tx", "rx", "trx"]


class ConfigError(ValueError):
    """Every problem found in a configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class SmppServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:2775"
    max_connections: int = 1000
    enquire_link_interval: float = 30.0  # seconds of silence before we probe the ESME
    session_init_timeout: float = 30.0  # a connection must bind within this
    inactivity_timeout: float = 300.0  # close a session that sent nothing (not even enquire_link) for this long
    response_timeout: float = 30.0  # for deliver_sm receipts we send upstream
    reuse_port: bool = False  # lets several worker processes share the port (SO_REUSEPORT)
    receipt_max_age: float = 259_200.0  # seconds a receipt waits for a receiver session of its account (3 days)


class HttpConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    listen: str = "127.0.0.1:8080"


class StoreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    path: str = "smppgw.sqlite3"
    # "normal": survives a process crash (kill -9) in WAL mode; "full": also a power loss, at ~2x commit latency.
    synchronous: Literal["normal", "full"] = "normal"
    commit_interval_ms: float = 2.0  # group commit: a batch is committed at least this often while busy
    max_batch: int = 2000  # rows per transaction (measured: ~1,000-row transactions give ~100k inserts/s)
    # Messages still awaiting receipts after this many newer ones were sent leave memory (about 100 bytes instead of
    # 1.4 KB each); a late receipt reads its message back from the store.
    hot_awaiting: int = 100_000


class LogConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class QuietHoursConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Recipient-local sending hours of one traffic class, "HH:MM-HH:MM" (end exclusive; "00:00-24:00" = always)."""

    working_days: str = "00:00-24:00"
    weekends: str = "00:00-24:00"  # Saturdays, Sundays and public holidays of the calendar


class CapsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Collection reminders per recipient and account, per recipient-local calendar day, ISO week and month."""

    per_day: int = 1  # while the debt is less than ``overdue_days_threshold`` days overdue
    per_day_overdue: int = 2  # from ``overdue_days_threshold`` days overdue on
    overdue_days_threshold: int = 30
    per_week: int = 4
    per_month: int = 16


DEFAULT_QUIET_HOURS: dict[str, QuietHoursConfig] = {
    # The stricter of the lenders' guidance (08-22) and 230-FZ (08-22 working days, 09-20 weekends and holidays).
    "collection": QuietHoursConfig(working_days="08:00-22:00", weekends="09:00-20:00"),
    "marketing": QuietHoursConfig(working_days="09:00-21:00", weekends="09:00-21:00"),
}


class PolicyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Sending policies (DESIGN §5): quiet hours by recipient-local time, collection caps, the stop list."""

    quiet_hours: dict[str, QuietHoursConfig] = {}  # merged over DEFAULT_QUIET_HOURS
    calendar_dir: str | None = None  # extra holiday calendars (ru-YYYY.csv), overriding the shipped ones
    collection_caps: CapsConfig = CapsConfig()
    stoplist_classes: tuple[TrafficClassName, ...] = ("marketing",)  # classes refused to a stopped number
    mo_stop_keywords: tuple[str, ...] = ("STOP", "СТОП")  # an MO text that is one of these stops its sender

    def hours_for(self, traffic_class: str) -> QuietHoursConfig | None:
        """The class's window, or None when the class is unrestricted."""
        hours = self.quiet_hours.get(traffic_class, DEFAULT_QUIET_HOURS.get(traffic_class))
        if hours is None or (hours.working_days == hours.weekends == "00:00-24:00"):
            return None
        return hours


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    system_id: str
    password: str = ""
    http_token: str = ""  # bearer token for the HTTP API ("sha256:<hex>" for a hashed token)
    allowed_ips: tuple[str, ...] = ()  # empty: any source address
    max_binds: int = 10
    rate: float = 1000.0  # segments per second over all binds and HTTP
    window: int = 100  # outstanding deliver_sm receipts we send to one session
    default_class: TrafficClassName = "transactional"
    max_parts: int = 10  # longer texts are refused (no silent truncation)
    parent: str = ""  # a sub-account: its parent sees its reports, it sees only its own
    # SMPP traffic class, first match wins: a TLV (ASCII class name), service_type, source address, default_class.
    class_tlv: int = 0  # 0: none; e.g. 0x1400 (vendor-specific range 0x1400-0x3FFF)
    class_by_service_type: dict[str, TrafficClassName] = {}
    class_by_source: dict[str, TrafficClassName] = {}
    overdue_tlv: int = 0  # TLV with the debt's overdue days as ASCII digits (collection caps); 0: none
    default_overdue_days: int = 0
    collection_caps: CapsConfig | None = None  # overrides [policy.collection_caps] for this account
    stoplist: str = ""  # stop-list scope (brand) the account uses; "" = its system_id
    mo_addresses: tuple[str, ...] = ()  # short codes / sender names whose MO "STOP" replies go to its stop list
    cap_exceeded_status: int = 0x0401  # SMPP status for a collection message over its cap (vendor range)
    stop_listed_status: int = 0x0402  # SMPP status for a message to a stopped number
    admin: bool = False  # may manage the global stop list and see every account's reports


class ConnectorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    binds: int = 1
    mode: BindModeName = "trx"
    window: int = 100
    rate: float = 100.0  # segments per second (token bucket over all binds)
    burst: float = 0.0  # bucket size in segments; 0 → one tenth of a second of rate (at least 1)
    response_timeout: float = 30.0
    enquire_link_interval: float = 30.0
    concat: ConcatModeName = "udh8"
    default_alphabet: AlphabetName = "gsm7"  # what data_coding 0 means on this SMSC
    gsm7_data_coding: int = 0  # data_coding sent for GSM-7 text (0 = SMSC default, 1 = IA5 on some SMSCs)
    alphanumeric_source_ton: int = 5
    alphanumeric_source_npi: int = 0
    numeric_source_ton: int = 1
    numeric_source_npi: int = 1
    resend_unknown_fate: bool = False  # at most once by default: in-flight requests at a disconnect are not resent
    receipt_timeout: float = 172_800.0  # no final receipt within validity + this → UNKNOWN
    max_retries: int = 5  # for transient errors other than throttling
    simulator: bool = False  # start a built-in simulator for this connector in-process (host/port ignored)


class RoutingRuleConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connector: str
    operator: str | None = None
    traffic_class: TrafficClassName | None = None
    account: str | None = None
    prefix: str | None = None
    fallbacks: tuple[str, ...] = ()


class RoutingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default: str | None = None
    ported_numbers: str | None = None  # CSV of number → operator, checked before the numbering plan
    rules: tuple[RoutingRuleConfig, ...] = ()


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    smpp_server: SmppServerConfig = SmppServerConfig()
    http: HttpConfig = HttpConfig()
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    accounts: tuple[AccountConfig, ...] = ()
    connectors: tuple[ConnectorConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
    policy: PolicyConfig = PolicyConfig()


def default_config() -> GatewayConfig:
    """The embedded default: one local account and one in-process simulator connector."""
    return GatewayConfig(
        accounts=(
            AccountConfig(system_id="local", password="local", http_token="local-token", rate=20_000.0, window=500),
        ),
        connectors=(ConnectorConfig(name="sim", simulator=True, rate=5000.0, binds=2, window=200),),
        routing=RoutingConfig(default="sim"),
    )


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "smpp_server": SmppServerConfig,
    "http": HttpConfig,
    "store": StoreConfig,
    "log": LogConfig,
    "policy": PolicyConfig,
}
_LISTS: dict[str, type[msgspec.Struct]] = {"accounts": AccountConfig, "connectors": ConnectorConfig}


def parse_config(data: dict[str, Any]) -> GatewayConfig:
    """Validate a parsed TOML document; raises ``ConfigError`` listing every problem."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    problems += [
        f"unknown section [{key}]" for key in data if key not in _SECTIONS and key not in _LISTS and key != "routing"
    ]
    for key, section_type in _SECTIONS.items():
        if key in data:
            values[key] = _convert(data[key], section_type, f"[{key}]", problems)
    for key, item_type in _LISTS.items():
        items = data.get(key, [])
        if not isinstance(items, list):
            problems.append(f"[[{key}]] must be an array of tables")
            continue
        converted = [_convert(item, item_type, f"[[{key}]] #{i + 1}", problems) for i, item in enumerate(items)]
        values[key] = tuple(item for item in converted if item is not None)
    if "routing" in data:
        values["routing"] = _convert_routing(data["routing"], problems)
    config = GatewayConfig(**{k: v for k, v in values.items() if v is not None})
    problems.extend(check_semantics(config))
    if problems:
        raise ConfigError(problems)
    return config


def _convert(value: Any, kind: type[msgspec.Struct], where: str, problems: list[str]) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        problems.extend(_field_problems(value, kind, where) or [f"{where}: {exc}"])
        return None


def _field_problems(value: Any, kind: type[msgspec.Struct], where: str) -> list[str]:
    """Every field error of one table (msgspec stops at the first)."""
    if not isinstance(value, dict):
        return [f"{where}: expected a table"]
    fields = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    problems = [f"{where}: unknown key {key!r}" for key in value if key not in fields]
    for name, info in fields.items():
        if name not in value:
            if info.required:
                problems.append(f"{where}: missing required key {name!r}")
            continue
        try:
            msgspec.convert(value[name], info.type)
        except msgspec.ValidationError as exc:
            problems.append(f"{where}: {name}: {exc}")
    return problems


def _convert_routing(value: Any, problems: list[str]) -> RoutingConfig | None:
    if not isinstance(value, dict):
        problems.append("[routing] must be a table")
        return None
    rules_raw = value.get("rules", [])
    rules = [
        _convert(rule, RoutingRuleConfig, f"[[routing.rules]] #{i + 1}", problems) for i, rule in enumerate(rules_raw)
    ]
    rest = {k: v for k, v in value.items() if k != "rules"}
    base: RoutingConfig | None = _convert(rest, RoutingConfig, "[routing]", problems)
    if base is None:
        return None
    return msgspec.structs.replace(base, rules=tuple(rule for rule in rules if rule is not None))


def check_semantics(config: GatewayConfig) -> list[str]:
    """Cross-field checks: unique names, references that resolve, sane numbers."""
    problems: list[str] = []
    for where, address in (("[smpp_server] listen", config.smpp_server.listen), ("[http] listen", config.http.listen)):
        try:
            parse_listen(address)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    names = [c.name for c in config.connectors]
    problems += [f"[[connectors]] name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    ids = [a.system_id for a in config.accounts]
    problems += [f"[[accounts]] system_id {s!r} is used twice" for s in sorted({s for s in ids if ids.count(s) > 1})]
    tokens = [a.http_token for a in config.accounts if a.http_token]
    if len(tokens) != len(set(tokens)):
        problems.append("[[accounts]] http_token values must be unique")
    for account in config.accounts:
        problems += _check_account(account)
    problems += _check_parents(config.accounts)
    problems += _check_policy(config.policy)
    for connector in config.connectors:
        problems += _check_connector(connector)
    known = set(names)
    routing = config.routing
    if routing.default is not None and routing.default not in known:
        problems.append(f"[routing] default {routing.default!r} is not a connector")
    for i, rule in enumerate(routing.rules, 1):
        for target in (rule.connector, *rule.fallbacks):
            if target not in known:
                problems.append(f"[[routing.rules]] #{i}: connector {target!r} is not defined")
        if rule.prefix is not None and not rule.prefix.isdigit():
            problems.append(f"[[routing.rules]] #{i}: prefix must be digits")
    if config.connectors and routing.default is None and not routing.rules:
        problems.append("[routing] needs a default connector or at least one rule")
    if routing.ported_numbers is not None and not Path(routing.ported_numbers).is_file():
        problems.append(f"[routing] ported_numbers: no such file {routing.ported_numbers!r}")
    if config.store.commit_interval_ms <= 0 or config.store.max_batch < 1:
        problems.append("[store] commit_interval_ms must be > 0 and max_batch >= 1")
    return problems


def _check_account(account: AccountConfig) -> list[str]:
    where = f"account {account.system_id!r}"
    problems = []
    if not 1 <= len(account.system_id) <= 15:
        problems.append(f"{where}: system_id must have 1..15 characters (SMPP limit)")
    if len(account.password) > 8:
        problems.append(f"{where}: password must have at most 8 characters (SMPP limit)")
    if account.rate <= 0 or account.window < 1 or account.max_binds < 1 or not 1 <= account.max_parts <= 255:
        problems.append(f"{where}: rate > 0, window >= 1, max_binds >= 1 and max_parts 1..255 are required")
    for name, tag in (("class_tlv", account.class_tlv), ("overdue_tlv", account.overdue_tlv)):
        if tag and not 0x1400 <= tag <= 0x3FFF:
            problems.append(f"{where}: {name} must be a vendor-specific tag 0x1400..0x3FFF (or 0 for none)")
    for name, status in (
        ("cap_exceeded_status", account.cap_exceeded_status),
        ("stop_listed_status", account.stop_listed_status),
    ):
        if not 1 <= status <= 0xFFFFFFFF:
            problems.append(f"{where}: {name} must be a non-zero SMPP command_status")
    if account.default_overdue_days < 0:
        problems.append(f"{where}: default_overdue_days must be >= 0")
    if account.collection_caps is not None:
        problems += _check_caps(account.collection_caps, f"{where}: collection_caps")
    return problems


def _check_parents(accounts: tuple[AccountConfig, ...]) -> list[str]:
    parents = {a.system_id: a.parent for a in accounts}
    problems = []
    for account in accounts:
        if account.parent and account.parent not in parents:
            problems.append(f"account {account.system_id!r}: parent {account.parent!r} is not an account")
            continue
        seen, current = {account.system_id}, account.parent
        while current:
            if current in seen:
                problems.append(f"account {account.system_id!r}: its parents form a cycle")
                break
            seen.add(current)
            current = parents.get(current, "")
    return problems


_HOURS_RE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)", re.ASCII)


def hours_problem(text: str) -> str | None:
    """Why ``text`` is not a "HH:MM-HH:MM" window (start before end, 00:00..24:00), or None."""
    match = _HOURS_RE.fullmatch(text)
    if match is None:
        return f"expected HH:MM-HH:MM, got {text!r}"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or not 0 <= start < end <= 1440:
        return f"{text!r}: the start must come before the end, within 00:00-24:00"
    return None


def _check_caps(caps: CapsConfig, where: str) -> list[str]:
    values = (caps.per_day, caps.per_day_overdue, caps.per_week, caps.per_month, caps.overdue_days_threshold)
    return [] if all(v >= 0 for v in values) else [f"{where}: every cap must be >= 0"]


def _check_policy(policy: PolicyConfig) -> list[str]:
    problems = []
    for klass, hours in policy.quiet_hours.items():
        if klass not in TRAFFIC_CLASS_NAMES:
            problems.append(
                f"[policy.quiet_hours.{klass}]: unknown traffic class (one of {', '.join(TRAFFIC_CLASS_NAMES)})"
            )
        for name, text in (("working_days", hours.working_days), ("weekends", hours.weekends)):
            problem = hours_problem(text)
            if problem is not None:
                problems.append(f"[policy.quiet_hours.{klass}] {name}: {problem}")
    problems += _check_caps(policy.collection_caps, "[policy.collection_caps]")
    if policy.calendar_dir and not Path(policy.calendar_dir).is_dir():
        problems.append(f"[policy] calendar_dir: no such directory {policy.calendar_dir!r}")
    if any(not k.strip() for k in policy.mo_stop_keywords):
        problems.append("[policy] mo_stop_keywords must not be empty strings")
    return problems


def _check_connector(connector: ConnectorConfig) -> list[str]:
    where = f"connector {connector.name!r}"
    problems = []
    if not connector.name or not connector.name.replace("-", "").replace("_", "").isalnum():
        problems.append(f"{where}: name must be letters, digits, '-' or '_'")
    if connector.rate <= 0 or connector.window < 1 or connector.binds < 1:
        problems.append(f"{where}: rate > 0, window >= 1 and binds >= 1 are required")
    if not connector.simulator and not 1 <= connector.port <= 65535:
        problems.append(f"{where}: port must be 1..65535")
    if connector.gsm7_data_coding not in (0, 1):
        problems.append(f"{where}: gsm7_data_coding must be 0 or 1")
    if connector.mode == "rx":
        problems.append(f"{where}: mode 'rx' cannot submit; use 'tx' (with a separate receiver) or 'trx'")
    return problems


def parse_listen(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:2775``) → (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port_text)


def load_config(path: str | Path | None) -> GatewayConfig:
    """Read and validate a TOML file; ``None`` gives the embedded default."""
    if path is None:
        return default_config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax: {exc}"]) from exc
    return parse_config(data)
