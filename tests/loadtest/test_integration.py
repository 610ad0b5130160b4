"""The load tool against a tiny in-test SMSC on 127.0.0.1, port 0: the tool's numbers equal the server's counters."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from smppgw.loadtest import BindMode, LoadConfig, LoadReport, LoadTestError, Progress, run_load
from smppgw.loadtest.config import parse_mix
from smppgw.loadtest.report import from_json
from smppgw.smpp.concat import ConcatMode
from smppgw.smpp.constants import CommandStatus, describe_status
from smppgw.smpp.receipt import IdRadix

from .smsc import FastSmsc, SmscOptions

uvloop_only = pytest.mark.asyncio(loop_factories=["uvloop"])


@asynccontextmanager
async def smsc(**options: object) -> AsyncIterator[FastSmsc]:
    server = FastSmsc(SmscOptions(**options))  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def config(server: FastSmsc, **kw: object) -> LoadConfig:
    base: dict[str, object] = {
        "port": server.server.port,
        "system_id": "lt",
        "password": "pw",
        "count": 300,
        "rate": 3000,
        "receipt_timeout": 5,
        "max_seconds": 10,
        "bind_timeout": 5,
    }
    return LoadConfig(**(base | kw))  # type: ignore[arg-type]


def assert_matches_server(report: LoadReport, server: FastSmsc) -> None:
    c = server.counters
    sub, rc = report.submits, report.receipts
    assert sub.submit_sm == c.submit_sm
    assert sub.acknowledged == c.resp_ok
    assert sub.rejected == c.resp_error
    assert rc.received == c.deliver_sm_sent == c.deliver_sm_resp  # every deliver_sm answered
    assert report.deliver.deliver_sm == c.deliver_sm_sent
    assert sum(sub.messages_by_kind.values()) == sub.messages_sent


async def test_all_receipts_matched_and_counts_equal_the_servers() -> None:
    async with smsc() as server:
        report = await run_load(config(server, binds=2, window=20))
    assert report.ok and not report.failures and not report.incomplete
    assert_matches_server(report, server)
    sub, rc = report.submits, report.receipts
    assert sub.messages_sent == sub.messages_planned == 300
    assert sub.submit_sm > 300  # long messages have 3-5 parts
    assert sub.segments == sub.submit_sm
    assert (rc.expected, rc.matched, rc.unmatched, rc.duplicates, rc.missing) == (sub.submit_sm, sub.submit_sm, 0, 0, 0)
    assert rc.by_state == {"DELIVERED": sub.submit_sm}
    assert server.counters.binds == {"BOUND_TRX": 2}
    assert len(server.counters.destinations) > 250
    lat = report.latency_ms
    assert lat.resp_from_scheduled.count == lat.resp_from_sent.count == sub.submit_sm
    assert lat.receipt_from_sent.count == sub.submit_sm
    assert lat.resp_from_sent.p50 <= lat.resp_from_scheduled.p50 + 0.01
    assert report.throughput.messages_per_s > 0 and report.cpu.process_s > 0


@uvloop_only
async def test_receipts_before_responses_are_parked_and_matched() -> None:
    async with smsc(receipt_before_resp=True) as server:
        report = await run_load(config(server, window=50))
    assert report.ok
    assert_matches_server(report, server)
    assert report.receipts.parked_peak > 0
    assert report.receipts.matched == report.submits.submit_sm
    assert report.receipts.unmatched == 0


@uvloop_only
@pytest.mark.parametrize(
    ("resp_id", "receipt_id", "radix"),
    [("hex", "dec", None), ("hex0", "dec0", None), ("uuid", "uuidhex", None), ("hex", "dec", "hex:decimal")],
)
async def test_transmitters_and_receivers_with_converted_ids(resp_id: str, receipt_id: str, radix: str | None) -> None:
    radixes = {}
    if radix:
        first, second = radix.split(":")
        radixes = {"resp_id_radix": IdRadix(first), "receipt_id_radix": IdRadix(second)}
    async with smsc(resp_id=resp_id, receipt_id=receipt_id, receipt_style="text") as server:
        report = await run_load(
            config(server, bind_mode=BindMode.TX_RX, binds=2, rx_binds=1, count=200, concat=ConcatMode.SAR, **radixes)
        )
    assert report.ok
    assert_matches_server(report, server)
    assert server.counters.binds == {"BOUND_TX": 2, "BOUND_RX": 1}
    assert server.counters.submit_sar > 0
    assert report.receipts.matched == report.submits.submit_sm
    assert report.settings.bind_mode == "tx+rx" and report.settings.rx_binds == 1


@uvloop_only
async def test_errors_duplicates_and_missing_receipts_are_counted() -> None:
    async with smsc(reject_every=7, drop_receipt_every=5, duplicate_receipt_every=4) as server:
        report = await run_load(config(server, receipt_timeout=0.3, require_receipts=True, concat=ConcatMode.PAYLOAD))
    c = server.counters
    assert_matches_server(report, server)
    assert c.submit_payload > 0 and report.submits.segments > report.submits.submit_sm
    throttled = describe_status(CommandStatus.ESME_RTHROTTLED)
    assert report.submits.errors_by_status == {throttled: c.resp_error}
    assert report.submits.errors == c.resp_error > 0
    assert report.receipts.missing == c.receipts_dropped > 0
    assert report.receipts.duplicates == c.deliver_sm_sent - (c.resp_ok - c.receipts_dropped) > 0
    assert report.receipts.matched == c.resp_ok - c.receipts_dropped
    assert not report.ok
    assert report.failures == [f"{c.resp_error} submit errors", f"{c.receipts_dropped} receipts missing"]


@uvloop_only
async def test_open_loop_latency_grows_when_the_server_is_slow() -> None:
    """Window 1 and 10 ms per response: capacity ~100 msg/s against a schedule of 400/s. The generator must not
    slow down politely: the wait shows up in the latency from the scheduled time."""
    snapshots: list[Progress] = []
    async with smsc(resp_delay=0.010, receipts=False) as server:
        slow = await run_load(
            config(server, window=1, rate=400, count=120, mix=parse_mix("latin=1"), registered_delivery=0),
            progress=snapshots.append,
        )
    async with smsc(receipts=False) as server:
        fast = await run_load(
            config(server, window=1, rate=400, count=120, mix=parse_mix("latin=1"), registered_delivery=0)
        )
    s = slow.latency_ms
    assert slow.ok and slow.submits.acknowledged == 120
    assert 9.0 <= s.resp_from_sent.p50 < 60
    assert s.resp_from_scheduled.p99 > 400  # the last messages waited ~0.9 s for their turn
    assert s.resp_from_scheduled.p99 > 5 * s.resp_from_sent.p99
    assert s.resp_from_scheduled.max > s.resp_from_scheduled.p50 > s.resp_from_sent.p50
    assert fast.latency_ms.resp_from_scheduled.p99 < 100 < s.resp_from_scheduled.p99
    assert slow.throughput.messages_per_s < 110
    assert snapshots and snapshots[0].phase == "submitting" and snapshots[0].backlog > 0
    assert slow.receipts.expected == 0 and slow.receipts.missing == 0


@uvloop_only
async def test_hard_time_limit_bounds_the_run() -> None:
    async with smsc(resp_delay=0.05) as server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        report = await run_load(config(server, window=1, count=1000, rate=1000, max_seconds=0.4))
        took = loop.time() - started
    assert took < 5
    assert report.incomplete and not report.ok
    assert 0 < report.submits.messages_sent < 1000
    assert report.submits.messages_not_sent == 1000 - report.submits.messages_sent
    assert any("hard time limit" in f for f in report.failures)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@uvloop_only
async def test_no_bind_raises() -> None:
    with pytest.raises(LoadTestError, match="not up within"):
        await run_load(LoadConfig(port=free_port(), count=10, bind_timeout=0.3))


async def run_cli(*argv: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smppgw.cli", "loadtest", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out, err


def cli_args(server: FastSmsc, *extra: str) -> list[str]:
    target = f"127.0.0.1:{server.server.port}"
    return ["--target", target, "--system-id", "S", "--password", "P", "--count", "200", "--rate", "2000", *extra]


@uvloop_only
@pytest.mark.parametrize(
    ("options", "extra", "code", "check"),
    [
        ({}, ["--window", "10", "--binds", "2", "--json"], 0, lambda r: r.ok and r.receipts.matched > 200),
        ({"reject_every": 50}, ["--json", "--quiet"], 1, lambda r: r.submits.rejected == r.submits.submit_sm // 50 > 0),
        ({"receipts": False}, ["--json", "--receipt-timeout", "0.2", "--require-receipts"], 1,
         lambda r: r.receipts.missing > 0),
    ],
)  # fmt: skip
async def test_cli_json_and_exit_codes(
    options: dict[str, object], extra: list[str], code: int, check: Callable[[LoadReport], bool]
) -> None:
    async with smsc(**options) as server:
        returncode, out, err = await run_cli(*cli_args(server, *extra))
    assert returncode == code, err.decode()
    report = from_json(out)
    assert check(report)
    assert report.submits.submit_sm == server.counters.submit_sm


@uvloop_only
async def test_cli_text_report_and_progress() -> None:
    async with smsc() as server:
        returncode, out, err = await run_cli(*cli_args(server, "--count", "2000", "--rate", "1500"))
    assert returncode == 0, err.decode()
    text = out.decode()
    assert "result: OK" in text and "submit→resp (scheduled)" in text and "segments/s" in text
    assert "submit_sm/s" in err.decode()  # live progress once per second on stderr


@uvloop_only
@pytest.mark.parametrize("before_response", [False, True])
async def test_against_the_simulator(before_response: bool) -> None:
    """The built-in simulator (hex ids in responses, decimal in receipts): the tool's counts equal its stats."""
    simulator = pytest.importorskip("smppgw.sim.simulator")
    sim_config = pytest.importorskip("smppgw.sim.config")
    receipts = sim_config.ReceiptConfig(
        delay_ms=sim_config.Delay("fixed", 5.0), id_format="dec", before_response=before_response
    )
    sim = simulator.Simulator(sim_config.SimConfig(id_format="hex", receipts=receipts, seed=1))
    await sim.start("127.0.0.1", 0)
    try:
        report = await run_load(LoadConfig(port=sim.port, count=300, rate=3000, binds=2, window=20, receipt_timeout=5))
    finally:
        await sim.close(1.0)
    stats = sim.stats
    assert report.ok, report.failures
    assert report.submits.submit_sm == stats.submit_sm
    assert report.submits.acknowledged == stats.by_status.get(0, 0)
    assert report.receipts.matched == report.submits.submit_sm == stats.receipts_sent
    assert report.deliver.deliver_sm == stats.receipt_attempts == stats.receipts_acked
    assert report.receipts.unmatched == report.receipts.duplicates == report.receipts.missing == 0
