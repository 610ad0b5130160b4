"""The open-loop generator: ``run_load(config)`` binds, submits on the clock, collects receipts, returns a report.

Open loop: message ``i`` is *scheduled* at ``t0 + i / rate`` whatever the server does. Messages that are due but find
no free window slot wait in the generator (implicitly: the schedule is a formula, so the backlog costs no memory) and
go out as soon as slots free up - from the response callback itself, without a wake-up of the main task. Latency is
measured twice: from the scheduled time (what a real client would see, queueing included) and from the moment the
PDU was handed to the connection. A slow server therefore shows up as growing ``*_from_scheduled`` latency, not as a
politely slower generator. ``rate`` 0 is closed loop: as fast as the windows allow (scheduled = sent).

Bounds: ``max_seconds`` from the first scheduled message ends the submit phase (messages not yet sent are reported as
not sent, responses still outstanding after it as fate unknown); then receipts are awaited up to ``receipt_timeout``;
then every bind is unbound (bounded) and its task ended.

Every deliver_sm / data_sm is answered at once (``deliver_sm_resp`` is queued inside the same callback and leaves in
the connection's next write).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import resource
import time
from collections.abc import Callable
from typing import Final

import msgspec

from smppgw.net.client import ClientLink, LinkConfig
from smppgw.net.connection import SmppConnection
from smppgw.net.errors import NetError
from smppgw.smpp.constants import RECEIPT_MASK, describe_status, is_delivery_receipt
from smppgw.smpp.errors import SmppError
from smppgw.smpp.pdu import DataSm, DataSmResp, DeliverSm, DeliverSmResp, Pdu, SubmitSm, SubmitSmResp, _Bind
from smppgw.smpp.receipt import ReceiptError, read_receipt
from smppgw.smpp.session import Role, SessionConfig

from .config import BindMode, LoadConfig, format_mix
from .correlator import CorrelationCounts, Correlator
from .histogram import LatencyHistogram
from .mix import MessageSource
from .report import (
    CpuStats,
    DeliverStats,
    Latencies,
    LinkStats,
    LoadReport,
    ReceiptStats,
    RunSettings,
    SubmitStats,
    Throughput,
)

TICK: Final = 0.001
"""Shortest sleep of the scheduler (uvloop timers have millisecond resolution); due messages go out in batches."""
IDLE_TICK: Final = 0.02
"""Longest sleep: the scheduler also rechecks blocked binds (write buffer drained, a bind came back)."""
RECEIPT_POLL: Final = 0.01
UNBIND_TIMEOUT: Final = 3.0
LINK_EXIT_TIMEOUT: Final = 3.0

monotonic = time.monotonic


class LoadTestError(Exception):
    """The run could not start (no bind came up); nothing was submitted."""


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """A live snapshot, delivered once per second to ``run_load``'s ``progress`` callback."""

    elapsed: float
    phase: str  # binding | submitting | receipts | done
    messages_sent: int
    submit_sm: int
    submit_sm_per_s: float  # over the last interval
    acknowledged: int
    errors: int
    in_flight: int
    backlog: int  # messages due but not yet sent (open-loop queueing)
    receipts: int
    matched: int
    parked: int


ProgressCallback = Callable[[Progress], None]


class _Handler:
    """What the connections call: answers and reads every deliver_sm / data_sm."""

    def __init__(self, run: _LoadRun) -> None:
        self._run = run

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:  # SMSC role only: never called
        return None

    def on_bound(self, conn: SmppConnection) -> None:
        return None

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm):
            conn.send_response(DeliverSmResp(sequence=pdu.sequence))
            self._run.on_deliver(pdu.esm_class, pdu.short_message, pdu.tlvs, pdu.data_coding)
        elif isinstance(pdu, DataSm):
            conn.send_response(DataSmResp(sequence=pdu.sequence))
            self._run.on_deliver(pdu.esm_class, b"", pdu.tlvs, pdu.data_coding)
        # alert_notification has no response; the session answers everything else itself

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        return None


class _LoadRun:
    """One run's state. Created and driven by ``run_load``; everything runs on one event loop."""

    def __init__(self, config: LoadConfig, progress: ProgressCallback | None) -> None:
        self.config = config
        self.count = config.total_messages
        self.rate = config.rate
        self._progress = progress
        self.source = MessageSource(config)
        self.correlator = Correlator(
            max_parked=config.max_parked, resp_radix=config.resp_id_radix, receipt_radix=config.receipt_id_radix
        )
        self.resp_from_scheduled = LatencyHistogram()
        self.resp_from_sent = LatencyHistogram()
        handler = _Handler(self)
        session = SessionConfig(
            role=Role.ESME,
            window_size=config.window,
            response_timeout=config.response_timeout,
            enquire_link_interval=config.enquire_link_interval,
        )
        tx_mode = "trx" if config.bind_mode is BindMode.TRX else "tx"
        self.tx_link = ClientLink(self._link_config(tx_mode, config.binds), session, handler)
        self.links = [self.tx_link]
        if config.receiver_binds:
            self.links.append(ClientLink(self._link_config("rx", config.receiver_binds), session, handler))
        # generator state
        self.phase = "binding"
        self.t0 = 0.0
        self.next_message = 0  # index of the next message to draw
        self.messages_sent = 0
        self.submit_sm = 0
        self.segments = 0
        self.in_flight = 0
        self.local_errors = 0
        self.last_response = 0.0
        self.blocked = False
        self.stopped = False
        self._current: tuple[SubmitSm, ...] = ()
        self._current_index = 0
        self._current_scheduled = 0.0
        self._current_segments = 0
        self.by_kind: collections.Counter[str] = collections.Counter()
        self.errors_by_status: collections.Counter[str] = collections.Counter()
        self._status_names: dict[int, str] = {}
        # receiving
        self.deliver_sm = 0
        self.mobile_originated = 0
        self.malformed_receipts = 0
        self.receipt_states: collections.Counter[str] = collections.Counter()
        self._on_done = self._on_submit_done
        self._pump_scheduled = False
        self._call_soon: Callable[[Callable[[], None]], object] = lambda callback: None

    def _link_config(self, mode: str, binds: int) -> LinkConfig:
        c = self.config
        return LinkConfig(
            host=c.host,
            port=c.port,
            system_id=c.system_id,
            password=c.password,
            system_type=c.system_type,
            mode=mode,
            binds=binds,
            connect_timeout=c.bind_timeout,
            bind_timeout=c.bind_timeout,
        )

    # ------------------------------------------------------------------ the hot path

    def pump(self) -> None:
        """Send every due part while a window slot is free; sets ``blocked`` when the windows are full."""
        if self.stopped:
            return
        now = monotonic()
        rate = self.rate
        count = self.count
        due = count if rate <= 0 else min(count, int((now - self.t0) * rate) + 1)
        pick = self.tx_link.pick
        add_part = self.correlator.add_part
        on_done = self._on_done
        partial = functools.partial
        while True:
            parts = self._current
            if self._current_index >= len(parts):
                if self.next_message >= due:
                    self.blocked = False
                    return
                template, parts = self.source.next()
                self._current = parts
                self._current_index = 0
                self._current_segments = template.segments
                self._current_scheduled = now if rate <= 0 else self.t0 + self.next_message / rate
                self.next_message += 1
                self.by_kind[template.kind.value] += 1
            conn = pick()
            if conn is None:
                self.blocked = True
                return
            sent = monotonic()
            part = add_part(self._current_scheduled, sent)
            try:
                conn.send_request(parts[self._current_index], partial(on_done, part))
            except (NetError, SmppError):
                self.local_errors += 1
                self.correlator.on_failure(part, fate_unknown=False)
                self.errors_by_status["local error: the connection refused the request"] += 1
            else:
                self.in_flight += 1
                self.submit_sm += 1
            self._current_index += 1
            if self._current_index == len(parts):
                self.messages_sent += 1
                self.segments += self._current_segments

    def _on_submit_done(self, part: int, response: Pdu | None, error: BaseException | None) -> None:
        now = monotonic()
        self.in_flight -= 1
        self.last_response = now
        correlator = self.correlator
        if response is None:
            correlator.on_failure(part, fate_unknown=True)
            reason = getattr(error, "reason", None) or type(error).__name__
            self.errors_by_status[f"fate unknown: {reason}"] += 1
        else:
            self.resp_from_scheduled.record(now - correlator.scheduled[part])
            self.resp_from_sent.record(now - correlator.sent[part])
            status = response.status
            if status == 0 and isinstance(response, SubmitSmResp):
                correlator.on_response(part, response.message_id, now)
            else:
                correlator.on_failure(part, fate_unknown=False)
                self.errors_by_status[self._status_name(status, response)] += 1
        if self.blocked and not self._pump_scheduled:  # one pump per loop iteration, for all freed slots
            self._pump_scheduled = True
            self._call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self.pump()

    def _status_name(self, status: int, response: Pdu) -> str:
        name = self._status_names.get(status)
        if name is None:
            name = self._status_names[status] = describe_status(status)
        return name if isinstance(response, SubmitSmResp) else f"generic_nack: {name}"

    def on_deliver(self, esm_class: int, short_message: bytes, tlvs: tuple[tuple[int, bytes], ...], dc: int) -> None:
        self.deliver_sm += 1
        if not is_delivery_receipt(esm_class):
            self.mobile_originated += 1
            return
        try:
            receipt = read_receipt(short_message, tlvs, data_coding=dc)
        except ReceiptError:
            self.malformed_receipts += 1
            return
        state = receipt.state
        self.receipt_states[state.name] += 1
        self.correlator.on_receipt(receipt.message_id, state.is_final, monotonic())

    # ------------------------------------------------------------------ phases

    async def bind(self) -> None:
        deadline = self.config.bind_timeout
        try:
            async with asyncio.timeout(deadline):
                for link in self.links:
                    await link.wait_bound(link.config.binds)
        except TimeoutError:
            states = ", ".join(
                f"{link.config.mode}: {len(link.bound)}/{link.config.binds} bound "
                f"({link.stats.connect_failures} connect failures, {link.stats.bind_failures} bind failures)"
                for link in self.links
            )
            c = self.config
            raise LoadTestError(f"binds to {c.host}:{c.port} not up within {deadline:g} s: {states}") from None

    async def submit(self) -> bool:
        """The submit phase; returns False when the hard time limit ended it."""
        self.phase = "submitting"
        self._call_soon = asyncio.get_running_loop().call_soon
        self.t0 = t0 = monotonic()
        deadline = t0 + self.config.hard_limit
        rate = self.rate
        while self.next_message < self.count or self._current_index < len(self._current):
            now = monotonic()
            if now >= deadline:
                self.stopped = True
                return False
            self.pump()
            if self.blocked or rate <= 0:
                wait = IDLE_TICK
            else:
                wait = min(max(TICK, t0 + self.next_message / rate - monotonic()), IDLE_TICK)
            await asyncio.sleep(min(wait, max(0.0, deadline - now)))
        while self.in_flight > 0:
            if monotonic() >= deadline:
                return False
            await asyncio.sleep(TICK)
        self.correlator.settle()
        return True

    async def await_receipts(self, complete: bool) -> None:
        self.phase = "receipts"
        if not self.config.registered_delivery & RECEIPT_MASK or not complete:
            return
        deadline = monotonic() + self.config.receipt_timeout
        correlator = self.correlator
        while correlator.awaiting_receipts > 0 and monotonic() < deadline:
            await asyncio.sleep(RECEIPT_POLL)

    async def stop(self, tasks: list[asyncio.Task[None]]) -> None:
        self.stopped = True
        await asyncio.gather(*(link.stop(UNBIND_TIMEOUT) for link in self.links), return_exceptions=True)
        _, pending = await asyncio.wait(tasks, timeout=LINK_EXIT_TIMEOUT) if tasks else (set(), set())
        for task in pending:  # a bind that connected while we were stopping
            task.cancel()
        for link in self.links:
            for conn in list(link.connections):
                conn.abort("load test over")

    async def report_progress(self, started: float) -> None:
        assert self._progress is not None
        last_submits, last_time = 0, monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = monotonic()
            self._progress(self.snapshot(now - started, (self.submit_sm - last_submits) / max(now - last_time, 1e-9)))
            last_submits, last_time = self.submit_sm, now

    def snapshot(self, elapsed: float, submit_rate: float) -> Progress:
        c = self.correlator
        due = 0
        if self.phase == "submitting":
            due = self.count if self.rate <= 0 else min(self.count, int((monotonic() - self.t0) * self.rate) + 1)
        return Progress(
            elapsed=round(elapsed, 3),
            phase=self.phase,
            messages_sent=self.messages_sent,
            submit_sm=self.submit_sm,
            submit_sm_per_s=round(submit_rate, 1),
            acknowledged=c.acked,
            errors=c.rejected + c.fate_unknown + self.local_errors,
            in_flight=self.in_flight,
            backlog=max(0, due - self.next_message),
            receipts=c.receipts,
            matched=c.matched,
            parked=c.parked,
        )

    # ------------------------------------------------------------------ report

    def build_report(self, counts: CorrelationCounts, complete: bool, elapsed: float, cpu: CpuStats) -> LoadReport:
        c = self.config
        receipts_requested = bool(c.registered_delivery & RECEIPT_MASK)
        phase = max((self.last_response or self.t0) - self.t0, 1e-9) if self.submit_sm else 0.0
        per_s: Callable[[int], float] = lambda n: round(n / phase, 1) if phase else 0.0  # noqa: E731
        submits = SubmitStats(
            messages_planned=self.count,
            messages_sent=self.messages_sent,
            messages_not_sent=self.count - self.messages_sent,
            messages_by_kind=dict(sorted(self.by_kind.items())),
            submit_sm=self.submit_sm,
            segments=self.segments,
            acknowledged=counts.acked,
            errors=counts.rejected + counts.fate_unknown,
            rejected=counts.rejected - self.local_errors,
            fate_unknown=counts.fate_unknown,
            local_errors=self.local_errors,
            errors_by_status=dict(sorted(self.errors_by_status.items())),
        )
        receipts = ReceiptStats(
            expected=counts.acked if receipts_requested else 0,
            received=counts.receipts + self.malformed_receipts,
            matched=counts.matched,
            unmatched=counts.unmatched,
            duplicates=counts.duplicates,
            intermediate=counts.intermediate,
            missing=counts.missing if receipts_requested else 0,
            malformed=self.malformed_receipts,
            guessed=counts.guessed,
            parked_peak=counts.parked_peak,
            parked_dropped=counts.parked_dropped,
            by_state=dict(sorted(self.receipt_states.items())),
            reused_ids=counts.reused_ids,
        )
        failures = []
        if submits.errors:
            failures.append(f"{submits.errors} submit errors")
        if not complete:
            failures.append(f"hard time limit of {c.hard_limit:g} s reached")
        if c.require_receipts and receipts.missing:
            failures.append(f"{receipts.missing} receipts missing")
        link_stats = [link.stats for link in self.links]
        return LoadReport(
            ok=not failures,
            failures=failures,
            incomplete=not complete,
            elapsed_s=round(elapsed, 3),
            settings=RunSettings(
                target=f"{c.host}:{c.port}",
                system_id=c.system_id,
                bind_mode=c.bind_mode.value,
                binds=c.binds,
                rx_binds=c.receiver_binds,
                window=c.window,
                rate=c.rate,
                count=self.count,
                mix=format_mix(c.mix),
                concat=c.concat.value,
                seed=c.seed,
                registered_delivery=c.registered_delivery,
                max_seconds=c.hard_limit,
                receipt_timeout=c.receipt_timeout,
            ),
            submits=submits,
            receipts=receipts,
            deliver=DeliverStats(deliver_sm=self.deliver_sm, mobile_originated=self.mobile_originated),
            throughput=Throughput(
                submit_phase_s=round(phase, 3),
                messages_per_s=per_s(self.messages_sent),
                submit_sm_per_s=per_s(self.submit_sm),
                segments_per_s=per_s(self.segments),
                acknowledged_per_s=per_s(counts.acked),
            ),
            latency_ms=Latencies(
                resp_from_scheduled=self.resp_from_scheduled.summary(),
                resp_from_sent=self.resp_from_sent.summary(),
                receipt_from_scheduled=self.correlator.receipt_from_scheduled.summary(),
                receipt_from_sent=self.correlator.receipt_from_sent.summary(),
            ),
            cpu=cpu,
            links=LinkStats(
                connect_failures=sum(s.connect_failures for s in link_stats),
                bind_failures=sum(s.bind_failures for s in link_stats),
                disconnects=sum(s.disconnects for s in link_stats),
            ),
        )


def _cpu_now() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def run_load(config: LoadConfig, *, progress: ProgressCallback | None = None) -> LoadReport:
    """Run one bounded load test against ``config``'s SMSC and return its report.

    Raises ``ConfigError`` for an unusable configuration and ``LoadTestError`` when the binds do not come up within
    ``bind_timeout``; every other problem (refused submits, lost connections, missing receipts) is in the report.
    ``progress`` is called about once per second from the event loop (keep it fast).
    """
    config = config.validated()
    run = _LoadRun(config, progress)
    started = monotonic()
    user0, sys0 = _cpu_now()
    failure: BaseException | None = None
    complete = False
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(link.run(), name=f"loadtest-{link.config.mode}") for link in run.links]
        reporter = group.create_task(run.report_progress(started)) if progress is not None else None
        try:
            await run.bind()
            complete = await run.submit()
            await run.await_receipts(complete)
        except (LoadTestError, NetError) as exc:
            failure = exc
        finally:
            run.phase = "done"
            if reporter is not None:
                reporter.cancel()
            await run.stop(tasks)
    if failure is not None:
        raise failure
    counts = run.correlator.finish()
    elapsed = monotonic() - started
    user1, sys1 = _cpu_now()
    process = (user1 - user0) + (sys1 - sys0)
    cpu = CpuStats(
        process_s=round(process, 3),
        user_s=round(user1 - user0, 3),
        system_s=round(sys1 - sys0, 3),
        us_per_submit_sm=round(process / run.submit_sm * 1e6, 2) if run.submit_sm else 0.0,
        utilisation=round(process / elapsed, 3) if elapsed > 0 else 0.0,
    )
    return run.build_report(counts, complete, elapsed, cpu)
