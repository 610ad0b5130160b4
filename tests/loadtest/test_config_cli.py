"""Configuration parsing, derived bounds and the command line contract."""

from __future__ import annotations

import argparse

import pytest

from smppgw.cli import build_parser
from smppgw.loadtest import cli
from smppgw.loadtest.config import (
    BindMode,
    ConfigError,
    LoadConfig,
    MessageKind,
    format_mix,
    parse_id_radix,
    parse_mix,
    parse_target,
)
from smppgw.smpp.concat import ConcatMode
from smppgw.smpp.receipt import IdRadix


def test_parse_mix_round_trip_and_errors() -> None:
    mix = parse_mix("latin=40, cyrillic=40,long=15,emoji=5")
    assert mix == ((MessageKind.LATIN, 40), (MessageKind.CYRILLIC, 40), (MessageKind.LONG, 15), (MessageKind.EMOJI, 5))
    assert parse_mix(format_mix(mix)) == mix
    for bad in ("klingon=3", "latin=x", "latin=-1", "latin=1,latin=2"):
        with pytest.raises(ConfigError):
            parse_mix(bad)


def test_parse_target_and_radix() -> None:
    assert parse_target("127.0.0.1:2775") == ("127.0.0.1", 2775)
    assert parse_target("[::1]:2775") == ("::1", 2775)
    for bad in ("localhost", ":2775", "h:99999", "h:x"):
        with pytest.raises(ConfigError):
            parse_target(bad)
    assert parse_id_radix("auto") == (None, None)
    assert parse_id_radix("hex:decimal") == (IdRadix.HEX, IdRadix.DECIMAL)
    assert parse_id_radix("text") == (IdRadix.TEXT, IdRadix.TEXT)
    with pytest.raises(ConfigError):
        parse_id_radix("octal")


def test_bounds_are_derived() -> None:
    c = LoadConfig(count=1000, rate=100).validated()
    assert c.hard_limit == 1000 / 100 + 30
    c = LoadConfig(duration=2.5, rate=100).validated()
    assert (c.total_messages, c.hard_limit) == (250, 32.5)
    assert LoadConfig(count=100, duration=10, rate=100).validated().total_messages == 100
    assert LoadConfig(count=10, rate=0).validated().hard_limit > 30
    assert LoadConfig(count=5, bind_mode=BindMode.TX_RX, binds=3).validated().receiver_binds == 3
    assert LoadConfig(count=5, bind_mode=BindMode.TX_RX, binds=3, rx_binds=1).validated().receiver_binds == 1
    assert LoadConfig(count=5, binds=3).validated().receiver_binds == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # unbounded: neither count nor duration
        {"count": -1},
        {"count": 1, "binds": 0},
        {"count": 1, "window": 0},
        {"count": 1, "rate": -5},
        {"duration": 5, "rate": 0},
        {"count": 1, "mix": ()},
        {"count": 1, "mix": ((MessageKind.LATIN, 0),)},
        {"count": 1, "max_seconds": 0},
        {"count": 1, "resp_id_radix": IdRadix.HEX},
    ],
)
def test_nonsense_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LoadConfig(**kwargs).validated()  # type: ignore[arg-type]


def parse(*argv: str) -> argparse.Namespace:
    args = ["loadtest", *argv]
    return build_parser(args).parse_args(args)


def test_cli_contract_flags() -> None:
    args = parse(
        "--target", "10.0.0.1:2775", "--system-id", "S", "--password", "P", "--count", "500", "--rate", "250",
        "--window", "20", "--binds", "4", "--json", "--mix", "latin=1,long=1", "--concat", "sar", "--seed", "9",
        "--bind-mode", "tx+rx", "--rx-binds", "2", "--max-seconds", "12", "--receipt-timeout", "3",
        "--require-receipts", "--id-radix", "hex:decimal", "--quiet", "--max-parked", "7",
    )  # fmt: skip
    assert args.json and args.quiet and args.require_receipts
    config = cli.config_from_args(args)
    assert (config.host, config.port, config.system_id, config.password) == ("10.0.0.1", 2775, "S", "P")
    assert (config.total_messages, config.rate, config.window, config.binds) == (500, 250, 20, 4)
    assert (config.bind_mode, config.receiver_binds, config.concat, config.seed) == (
        BindMode.TX_RX,
        2,
        ConcatMode.SAR,
        9,
    )
    assert (config.hard_limit, config.receipt_timeout, config.max_parked) == (12, 3, 7)
    assert (config.resp_id_radix, config.receipt_id_radix) == (IdRadix.HEX, IdRadix.DECIMAL)
    assert config.mix == ((MessageKind.LATIN, 1), (MessageKind.LONG, 1))


def test_cli_defaults() -> None:
    config = cli.config_from_args(parse("--target", "h:1", "--count", "10"))
    assert (config.bind_mode, config.binds, config.registered_delivery) == (BindMode.TRX, 1, 1)
    assert (config.source_addr, config.source_ton, config.source_npi) == ("MFK-Zaim", 5, 0)
    assert config.concat is ConcatMode.UDH8


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(parse("--target", "h:1", "--count", "10", "--mix", "nope=1")) == cli.EXIT_USAGE
    assert cli.main(parse("--target", "h:1")) == cli.EXIT_USAGE  # no count, no duration
    assert "smppgw loadtest:" in capsys.readouterr().err
