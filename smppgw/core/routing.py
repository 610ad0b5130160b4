"""Routing: which connector carries a message, from the recipient's operator, the traffic class and the account.

Rules are an ordered list, read like a firewall: **the first rule whose every given field matches wins**; a field left
out (None) matches anything. Put specific rules before general ones (:meth:`RoutingTable.shadowed` finds rules that
can never win). No rule matched → the table's default connector, or :class:`NoRouteError` when there is none.

Matching a field:

* ``operator`` — the recipient's operator key after ported-number overrides (``mts``, ``beeline``, ``megafon``,
  ``tele2``, ``inn:<INN>``, ``mnc:<MNC>``); an INN in a rule is turned into its key. Foreign numbers have no operator,
  so operator rules never match them.
* ``traffic_class`` — equal; ``account`` — equal (the upstream system_id / API account).
* ``prefix`` — the canonical number (international digits, e.g. ``375`` for Belarus, ``7958`` for one DEF code)
  starts with it.

Cost: the rules that can match an (operator, class, account) triple are computed once and cached (bounded); a
message then checks only those — usually one rule, plus any prefix rules placed before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal, get_args

import msgspec

from smppgw.core.numbering import (
    InvalidNumberError,
    NumberInfo,
    OperatorResolver,
    is_russian,
    normalise_msisdn,
    operator_key,
)

__all__ = [
    "TRAFFIC_CLASSES",
    "NoRouteError",
    "RouteDecision",
    "RoutingRule",
    "RoutingTable",
    "TrafficClass",
    "explain_route",
]

TrafficClass = Literal["otp", "transactional", "service", "marketing", "collection"]
TRAFFIC_CLASSES: Final[frozenset[str]] = frozenset(get_args(TrafficClass))
_MAX_PREFIX: Final = 15  # E.164 maximum length


class NoRouteError(LookupError):
    """No rule matched and the table has no default. The gateway answers ESME_RINVDSTADR / HTTP 422.

    The message names the operator, class and account — not the number (personal data)."""

    def __init__(self, operator: str | None, traffic_class: str, account: str | None) -> None:
        super().__init__(f"no route for operator={operator} traffic_class={traffic_class} account={account}")
        self.operator = operator
        self.traffic_class = traffic_class
        self.account = account


class RoutingRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rule: the match fields (None = any), then where matching messages go."""

    operator: str | None = None
    traffic_class: TrafficClass | None = None
    account: str | None = None
    prefix: str | None = None
    connector: str
    fallbacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.operator is not None:
            operator_key(self.operator)  # raises ValueError with the accepted forms
        if self.traffic_class is not None and self.traffic_class not in TRAFFIC_CLASSES:
            raise ValueError(f"traffic_class must be one of {sorted(TRAFFIC_CLASSES)}, got {self.traffic_class!r}")
        p = self.prefix
        if p is not None and not (0 < len(p) <= _MAX_PREFIX and p.isdigit() and p.isascii()):
            raise ValueError(f"prefix must be 1-{_MAX_PREFIX} digits of the international number, got {p!r}")
        if not self.connector or not all(self.fallbacks) or self.connector in self.fallbacks:
            raise ValueError("connector must be non-empty, fallbacks non-empty and different from the connector")

    def matches(self, msisdn: str, operator: str | None, traffic_class: str, account: str | None) -> bool:
        """The rule's meaning, field by field (the table's index must agree with this; tests check it)."""
        return (
            (self.operator is None or operator_key(self.operator) == operator)
            and (self.traffic_class is None or self.traffic_class == traffic_class)
            and (self.account is None or self.account == account)
            and (self.prefix is None or msisdn.startswith(self.prefix))
        )

    def describe(self) -> str:
        fields = [f"{k}={v}" for k in ("operator", "traffic_class", "account", "prefix") if (v := getattr(self, k))]
        return " ".join(fields) or "(any)"


class RouteDecision(msgspec.Struct, frozen=True, gc=False):
    """Where one message goes, and the number facts later stages (policy, throttling, metrics) need."""

    connector: str
    fallbacks: tuple[str, ...]
    operator: str | None  # None for foreign numbers
    region: str | None
    tz: str | None
    msisdn: str  # canonical
    rule: int  # index of the matched rule; -1 = the table default
    info: NumberInfo | None  # operator name, INN, tz confidence and candidate zones, ported flag


# A cached candidate: (prefix or "" — startswith("") is always true, rule index or -1, connector, fallbacks).
_Candidate = tuple[str, int, str, tuple[str, ...]]
_CacheKey = tuple[str | None, str, str | None]


class RoutingTable:
    """Ordered rules + optional default, with an operator resolver (ported overrides, then the plan).

    The decision cache is keyed by (operator, traffic class, account) and holds the candidate rules for that triple
    in order, ending at the first rule without a prefix (it always matches, so nothing after it can win). It is
    bounded by ``cache_size`` and simply cleared when full (the key space is small: operators x 5 classes x
    accounts). The table is immutable after construction; build a new one to change rules.
    """

    __slots__ = ("_cache", "_cache_size", "_keys", "default", "default_fallbacks", "resolver", "rules")

    def __init__(
        self,
        rules: Iterable[RoutingRule],
        default: str | None = None,
        *,
        default_fallbacks: tuple[str, ...] = (),
        resolver: OperatorResolver | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.rules: tuple[RoutingRule, ...] = tuple(rules)
        self.default = default
        self.default_fallbacks = default_fallbacks
        self.resolver = resolver if resolver is not None else OperatorResolver()
        self._keys = tuple(operator_key(r.operator) if r.operator is not None else None for r in self.rules)
        self._cache: dict[_CacheKey, tuple[_Candidate, ...]] = {}
        self._cache_size = max(1, cache_size)

    def route(
        self, msisdn: str, traffic_class: str, account: str | None = None, *, normalised: bool = False
    ) -> RouteDecision:
        """Route one message. ``msisdn`` in any form :func:`normalise_msisdn` accepts (canonical is fastest).

        ``normalised=True``: ``msisdn`` is already canonical (the gateway normalised it), not normalised again.
        Raises :class:`InvalidNumberError` for a malformed number or a Russian number in no range of the plan and
        not ported (unallocated — nothing can deliver it), :class:`NoRouteError` when nothing matches.
        """
        number = msisdn if normalised else normalise_msisdn(msisdn)
        info = self.resolver.resolve(number)
        if info is None and is_russian(number):
            raise InvalidNumberError("Russian number is in no range of the numbering plan", msisdn)
        operator = info.operator if info is not None else None
        key = (operator, traffic_class, account)
        candidates = self._cache.get(key)
        if candidates is None:
            candidates = self._remember(key)
        for prefix, index, connector, fallbacks in candidates:
            if number.startswith(prefix):
                if info is None:
                    return RouteDecision(connector, fallbacks, None, None, None, number, index, None)
                return RouteDecision(connector, fallbacks, operator, info.region, info.tz, number, index, info)
        raise NoRouteError(operator, traffic_class, account)

    def _remember(self, key: _CacheKey) -> tuple[_Candidate, ...]:
        if key[1] not in TRAFFIC_CLASSES:
            raise ValueError(f"unknown traffic class {key[1]!r}")
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        candidates = self._cache[key] = self._candidates(*key)
        return candidates

    def _candidates(self, operator: str | None, traffic_class: str, account: str | None) -> tuple[_Candidate, ...]:
        """Rules that can match this triple, in order, up to and including the first one without a prefix; then
        the default if that point is never reached."""
        out: list[_Candidate] = []
        for index, (rule, key) in enumerate(zip(self.rules, self._keys, strict=True)):
            if (
                (key is None or key == operator)
                and (rule.traffic_class is None or rule.traffic_class == traffic_class)
                and (rule.account is None or rule.account == account)
            ):
                out.append((rule.prefix or "", index, rule.connector, rule.fallbacks))
                if rule.prefix is None:
                    return tuple(out)
        if self.default is not None:
            out.append(("", -1, self.default, self.default_fallbacks))
        return tuple(out)

    def shadowed(self) -> list[tuple[int, int]]:
        """(rule, earlier rule that always wins over it) pairs: rules that can never be chosen — a config mistake
        for ``smppgw check-config`` to report."""
        out: list[tuple[int, int]] = []
        for j in range(len(self.rules)):
            for i in range(j):
                if self._covers(i, j):
                    out.append((j, i))
                    break
        return out

    def _covers(self, i: int, j: int) -> bool:
        a, b = self.rules[i], self.rules[j]
        return (
            (self._keys[i] is None or self._keys[i] == self._keys[j])
            and (a.traffic_class is None or a.traffic_class == b.traffic_class)
            and (a.account is None or a.account == b.account)
            and (a.prefix is None or (b.prefix is not None and b.prefix.startswith(a.prefix)))
        )


def explain_route(
    table: RoutingTable, msisdn: str, traffic_class: str = "transactional", account: str | None = None
) -> str:
    """Multi-line human explanation of how ``msisdn`` would be routed (for ``smppgw route``). Never raises for a
    bad number or a missing route: the reason is part of the text."""
    lines = [f"input:       {msisdn!r}"]
    try:
        number = normalise_msisdn(msisdn)
    except InvalidNumberError as exc:
        return "\n".join([*lines, f"invalid:     {exc} -> ESME_RINVDSTADR / HTTP 422"])
    lines.append(f"number:      +{number}")
    lines += _explain_number(table.resolver, number)
    try:
        decision = table.route(number, traffic_class, account)
    except (InvalidNumberError, NoRouteError) as exc:
        return "\n".join([*lines, f"class:       {traffic_class}, account {account}", f"no route:    {exc}"])
    rule = "default" if decision.rule < 0 else f"#{decision.rule} {table.rules[decision.rule].describe()}"
    lines += [
        f"class:       {traffic_class}, account {account}",
        f"rule:        {rule}",
        f"connector:   {decision.connector}",
        f"fallbacks:   {', '.join(decision.fallbacks) or '-'}",
    ]
    return "\n".join(lines)


def _explain_number(resolver: OperatorResolver, number: str) -> list[str]:
    if not is_russian(number):
        return ["numbering:   foreign number (no plan lookup; only prefix rules, operator-less rules, default)"]
    span = resolver.plan.range_of(number)
    info = resolver.resolve(number)
    lines = [f"range:       {span[0]}..{span[1]}" if span else "range:       none (not in the numbering plan)"]
    if info is None:
        return lines
    holder = resolver.plan.lookup(number)
    lines.append(f"operator:    {info.operator} - {info.operator_name} (INN {info.inn or '-'})")
    if info.ported and holder is not None:
        lines.append(f"ported:      yes, from {holder.operator} - {holder.operator_name} (INN {holder.inn})")
    else:
        lines.append("ported:      no")
    lines.append(f"region:      {info.region}")
    zones = ", ".join(info.tz_candidates)
    lines.append(
        f"time zone:   {info.tz} ({info.tz_confidence}{'; candidates ' + zones if len(info.tz_candidates) > 1 else ''})"
    )
    return lines
