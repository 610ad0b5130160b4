"""Routing rules: first match wins, the cached index agrees with a naive scan, errors, explanations."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.core.numbering import InvalidNumberError, OperatorResolver, PortedNumbers, default_plan
from smppgw.core.routing import (
    TRAFFIC_CLASSES,
    NoRouteError,
    RouteDecision,
    RoutingRule,
    RoutingTable,
    explain_route,
)

PLAN = default_plan()
MTS_MOSCOW = "79161234567"
BEELINE_MOSCOW = "79031234567"
MEGAFON_SPB = "79210900000"
TELE2_KRASNODAR = "79000000000"
SKARTEL = "79999999999"  # inn:7701725181
BELARUS = "375291234567"
KAZAKHSTAN = "77011234567"
UNALLOCATED = "79075555555"  # no 907 ranges in the plan
PORTED = "79161111111"  # MTS range, ported to Tele2
RESOLVER = OperatorResolver(PLAN, PortedNumbers.from_mapping({PORTED: "tele2"}))

RULES = [
    RoutingRule(traffic_class="otp", account="bank", connector="mts-otp", fallbacks=("beeline-otp",)),
    RoutingRule(operator="mts", traffic_class="otp", connector="mts-otp"),
    RoutingRule(operator="7713076301", connector="beeline"),  # an INN works like the key
    RoutingRule(operator="megafon", connector="megafon", fallbacks=("agg1", "agg2")),
    RoutingRule(prefix="375", connector="by-agg"),
    RoutingRule(operator="tele2", traffic_class="marketing", connector="tele2-mkt"),
    RoutingRule(operator="tele2", connector="tele2"),
    RoutingRule(prefix="7916", connector="mts-by-prefix"),
]


def table(default: str | None = "agg1", **kw: object) -> RoutingTable:
    return RoutingTable(RULES, default, resolver=RESOLVER, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("msisdn", "traffic_class", "account", "connector", "rule"),
    [
        (MTS_MOSCOW, "otp", "bank", "mts-otp", 0),  # account rule first, whatever the operator
        (MEGAFON_SPB, "otp", "bank", "mts-otp", 0),
        (MTS_MOSCOW, "otp", "shop", "mts-otp", 1),
        (MTS_MOSCOW, "marketing", "shop", "mts-by-prefix", 7),
        ("+7 (903) 123-45-67", "service", None, "beeline", 2),
        (MEGAFON_SPB, "transactional", "shop", "megafon", 3),
        ("+375 29 123-45-67", "marketing", "shop", "by-agg", 4),
        (TELE2_KRASNODAR, "marketing", "shop", "tele2-mkt", 5),
        (TELE2_KRASNODAR, "collection", "shop", "tele2", 6),
        (PORTED, "marketing", "shop", "tele2-mkt", 5),  # ported number: routed by its new operator
        (SKARTEL, "otp", "shop", "agg1", -1),  # default
        (KAZAKHSTAN, "otp", "shop", "agg1", -1),
    ],
)
def test_first_matching_rule_wins(
    msisdn: str, traffic_class: str, account: str | None, connector: str, rule: int
) -> None:
    decision = table().route(msisdn, traffic_class, account)
    assert (decision.connector, decision.rule) == (connector, rule)
    expected_fallbacks = RULES[rule].fallbacks if rule >= 0 else ()
    assert decision.fallbacks == expected_fallbacks


def test_decision_carries_number_facts() -> None:
    d = table().route("8 (921) 090-00-00", "transactional", "shop")
    assert d.msisdn == MEGAFON_SPB and d.operator == "megafon" and d.fallbacks == ("agg1", "agg2")
    assert d.region == "Город Санкт-Петербург, Ленинградская область" and d.tz == "Europe/Moscow"
    assert d.info is not None and d.info.inn == "7812014560"
    foreign = table().route(BELARUS, "otp", "shop")
    assert (foreign.operator, foreign.region, foreign.tz, foreign.info) == (None, None, None, None)
    ported = table().route(PORTED, "otp", "shop")
    assert ported.info is not None and ported.info.ported and ported.region == "Город Москва, Московская область"


def test_default_with_fallbacks() -> None:
    d = RoutingTable([], "agg1", default_fallbacks=("agg2",), resolver=RESOLVER).route(SKARTEL, "otp")
    assert (d.connector, d.fallbacks, d.rule) == ("agg1", ("agg2",), -1)


def test_no_route_without_default() -> None:
    with pytest.raises(NoRouteError, match="operator=inn:7701725181 traffic_class=otp account=shop") as info:
        table(default=None).route(SKARTEL, "otp", "shop")
    assert isinstance(info.value, LookupError) and SKARTEL not in str(info.value)


def test_invalid_and_unallocated_numbers() -> None:
    t = table()
    with pytest.raises(InvalidNumberError, match="only digits"):
        t.route("+7 916 ABC", "otp")
    with pytest.raises(InvalidNumberError, match="no range of the numbering plan"):
        t.route(UNALLOCATED, "otp")
    with pytest.raises(InvalidNumberError, match="no range"):
        t.route("+7 495 123-45-67", "otp")  # landline: not in DEF 9xx


def test_unknown_traffic_class() -> None:
    with pytest.raises(ValueError, match="unknown traffic class"):
        table().route(MTS_MOSCOW, "spam")


def test_cache_is_bounded_and_results_stable() -> None:
    t = table(cache_size=3)
    first = [
        t.route(n, c, "shop").connector for n in (MTS_MOSCOW, MEGAFON_SPB, SKARTEL) for c in sorted(TRAFFIC_CLASSES)
    ]
    assert len(t._cache) <= 3
    again = [
        t.route(n, c, "shop").connector for n in (MTS_MOSCOW, MEGAFON_SPB, SKARTEL) for c in sorted(TRAFFIC_CLASSES)
    ]
    assert first == again


# ---------------------------------------------------------------------------------------------------------------------
# Rules as config values
# ---------------------------------------------------------------------------------------------------------------------


def test_rules_decode_from_config() -> None:
    raw = (
        b'[{"operator": "mts", "traffic_class": "otp", "connector": "mts-otp", "fallbacks": ["agg1"]},'
        b' {"connector": "agg2"}]'
    )
    rules = msgspec.json.decode(raw, type=list[RoutingRule])
    assert rules[0] == RoutingRule(operator="mts", traffic_class="otp", connector="mts-otp", fallbacks=("agg1",))
    assert rules[1].operator is None and rules[1].fallbacks == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"traffic_class": "spam", "connector": "x"}', "traffic_class"),
        ('{"prefix": "+375", "connector": "x"}', "prefix must be"),
        ('{"prefix": "", "connector": "x"}', "prefix must be"),
        ('{"operator": "vodafone", "connector": "x"}', "not an operator key"),
        ('{"connector": ""}', "connector must be non-empty"),
        ('{"connector": "x", "fallbacks": ["x"]}', "different from the connector"),
        ('{"connector": "x", "operatr": "mts"}', "unknown field"),
        ('{"operator": "mts"}', "missing required field"),
    ],
)
def test_bad_rules_are_rejected(body: str, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.json.decode(body, type=RoutingRule)


def test_rule_is_frozen() -> None:
    rule = RoutingRule(connector="x")
    with pytest.raises(AttributeError):
        rule.connector = "y"  # type: ignore[misc]


def test_shadowed_rules_are_reported() -> None:
    rules = [
        RoutingRule(operator="mts", connector="a"),
        RoutingRule(operator="mts", traffic_class="otp", connector="b"),  # shadowed by 0
        RoutingRule(prefix="79", connector="c"),
        RoutingRule(prefix="7916", account="x", connector="d"),  # shadowed by 2
        RoutingRule(operator="beeline", traffic_class="otp", connector="e"),
        RoutingRule(operator="7713076301", traffic_class="otp", account="x", connector="f"),  # shadowed by 4 (INN)
        RoutingRule(operator="beeline", connector="g"),
    ]
    assert RoutingTable(rules, resolver=RESOLVER).shadowed() == [(1, 0), (3, 2), (5, 4)]


# ---------------------------------------------------------------------------------------------------------------------
# Property: the cached candidate index decides exactly like a naive scan of the rules
# ---------------------------------------------------------------------------------------------------------------------

NUMBERS = (MTS_MOSCOW, BEELINE_MOSCOW, MEGAFON_SPB, TELE2_KRASNODAR, SKARTEL, BELARUS, KAZAKHSTAN, PORTED)
rule_strategy = st.builds(
    RoutingRule,
    operator=st.sampled_from([None, None, "mts", "beeline", "megafon", "tele2", "7743895280", "inn:7701725181"]),
    traffic_class=st.sampled_from([None, None, *sorted(TRAFFIC_CLASSES)]),
    account=st.sampled_from([None, None, "a", "b"]),
    prefix=st.sampled_from([None, None, None, "7", "79", "7916", "7903", "375", "77"]),
    connector=st.sampled_from(["c1", "c2", "c3", "c4"]),
    fallbacks=st.sampled_from([(), ("f1",), ("f1", "f2")]),
)


def naive_route(
    rules: list[RoutingRule], default: str | None, msisdn: str, traffic_class: str, account: str | None
) -> tuple[str, int] | None:
    info = RESOLVER.resolve(msisdn)
    operator = info.operator if info is not None else None
    for i, rule in enumerate(rules):
        if rule.matches(msisdn, operator, traffic_class, account):
            return rule.connector, i
    return (default, -1) if default is not None else None


@settings(max_examples=500)
@given(
    rules=st.lists(rule_strategy, max_size=12),
    default=st.sampled_from([None, "dflt"]),
    queries=st.lists(
        st.tuples(
            st.sampled_from(NUMBERS), st.sampled_from(sorted(TRAFFIC_CLASSES)), st.sampled_from([None, "a", "b"])
        ),
        min_size=1,
        max_size=12,
    ),
    cache_size=st.sampled_from([1, 2, 4096]),
)
def test_index_equals_naive_scan(
    rules: list[RoutingRule],
    default: str | None,
    queries: list[tuple[str, str, str | None]],
    cache_size: int,
) -> None:
    t = RoutingTable(rules, default, resolver=RESOLVER, cache_size=cache_size)
    for msisdn, traffic_class, account in queries * 2:  # twice: the second pass hits the cache
        expected = naive_route(rules, default, msisdn, traffic_class, account)
        if expected is None:
            with pytest.raises(NoRouteError):
                t.route(msisdn, traffic_class, account)
            continue
        decision = t.route(msisdn, traffic_class, account)
        assert (decision.connector, decision.rule) == expected
        assert decision.fallbacks == (rules[decision.rule].fallbacks if decision.rule >= 0 else ())
    for later, earlier in t.shadowed():
        # a shadowed rule is never the one chosen
        assert all(naive_route(rules, default, *q) != (rules[later].connector, later) for q in queries), earlier


# ---------------------------------------------------------------------------------------------------------------------
# explain_route
# ---------------------------------------------------------------------------------------------------------------------


def test_explain_ported_number() -> None:
    text = explain_route(table(), "+7 916 111-11-11", "marketing", "shop")
    assert "number:      +79161111111" in text
    assert "range:       9160000000..9169999999" in text
    assert "operator:    tele2 - Т2 (Tele2) (INN 7743895280)" in text
    assert 'ported:      yes, from mts - ПАО "Мобильные ТелеСистемы" (INN 7740000076)' in text
    assert "region:      Город Москва, Московская область" in text
    assert "time zone:   Europe/Moscow (certain)" in text
    assert "rule:        #5 operator=tele2 traffic_class=marketing" in text
    assert "connector:   tele2-mkt" in text and "fallbacks:   -" in text


def test_explain_uncertain_zone_default_and_fallbacks() -> None:
    yakutia = next(s for s, _, info in PLAN.ranges() if "Якутия" in info.region)
    text = explain_route(table(), f"7{yakutia:010d}", "otp", "bank")
    assert "Asia/Yakutsk (uncertain; candidates Asia/Yakutsk, Asia/Khandyga" in text
    assert "fallbacks:   beeline-otp" in text
    assert "rule:        default" in explain_route(table(), SKARTEL, "otp")


def test_explain_never_raises() -> None:
    assert "invalid:" in explain_route(table(), "hello")
    assert "range:       none" in explain_route(table(), UNALLOCATED) and "no route:" in explain_route(
        table(), UNALLOCATED
    )
    assert "no route:" in explain_route(table(default=None), SKARTEL, "otp")
    assert "foreign number" in explain_route(table(), "+375 29 123-45-67")


def test_route_decision_is_a_frozen_struct() -> None:
    d = table().route(MTS_MOSCOW, "otp", "shop")
    assert isinstance(d, RouteDecision)
    with pytest.raises(AttributeError):
        d.connector = "x"  # type: ignore[misc]
