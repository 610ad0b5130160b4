"""A simulated day of sending policies across Russia's time zones: an injected clock, no sleeping.

    python bench/policy_day.py [--seed 1] [--per-minute 40] [--start 2026-03-06T00:00:00+03:00] [--hours 24]
                               [--late-stops 0] [--json]

A real :class:`~smppgw.service.gateway.Gateway` (MemoryStore, the router of ``smppgw.app.build_router``, the shipped
numbering plan and production calendar, the default ``[policy]``) runs on a simulated clock in one-minute steps.
Each minute: advance the clock, ``sweep()``, then drain the connector's lanes through its own
``_send_what_we_can`` over a fake link (every part is answered ESME_ROK and the message is then marked DELIVERED),
then submit ``--per-minute`` messages spread over the minute (10 % otp, 30 % transactional, 10 % service,
30 % collection, 20 % marketing). A queued message therefore waits up to a minute: one accepted just before a
window closes meets the connector after it closed and is held again (the ``may_send`` path).

Recipients: a zone group (the numbering plan's ``tz_candidates``) is drawn uniformly, then a range of that group,
then a number in it, so the far east and the uncertain regions (Yakutia, federal ranges, the new regions) appear as
often as Moscow. Collection goes half to a pool of repeat debtors (fixed overdue days 0..90 each) so caps bite;
marketing goes to a pool of which ~5 % is on the stop list; 10 % of collection and marketing messages have a
validity of 0.5-8 h, short enough to expire while held. ``--late-stops N`` makes N pool numbers opt out during
the run (a message held before the opt-out must not go out after it).

The verification is independent of ``SendWindows`` and the cap ledger: for every collection and marketing message
that went out, its instant is converted with ``zoneinfo`` into every candidate zone of its number and compared
with the configured hours for that local date's kind (``WorkCalendar.kind``); collection sends are counted per
recipient per local day, ISO week and month in every candidate zone against the caps for the debtor's overdue
days. Exit status 1 when anything is violated (or the accounting does not add up), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from smppgw.app import build_router
from smppgw.config import (
    AccountConfig,
    CapsConfig,
    ConnectorConfig,
    GatewayConfig,
    PolicyConfig,
    RoutingConfig,
)
from smppgw.core.message import Message, State, TrafficClass
from smppgw.core.numbering import NumberInfo, NumberingPlan, default_plan
from smppgw.core.policy.calendar import DayKind, WorkCalendar
from smppgw.service.connector import Connector
from smppgw.service.errors import SubmitRefusedError
from smppgw.service.gateway import Gateway, TextSubmit
from smppgw.smpp.pdu import Pdu, SubmitSm, SubmitSmResp
from smppgw.store.memory import MemoryStore

MIX: tuple[tuple[TrafficClass, float], ...] = (
    (TrafficClass.OTP, 0.10),
    (TrafficClass.TRANSACTIONAL, 0.30),
    (TrafficClass.SERVICE, 0.10),
    (TrafficClass.COLLECTION, 0.30),
    (TrafficClass.MARKETING, 0.20),
)
CHECKED = (TrafficClass.COLLECTION, TrafficClass.MARKETING)
ACCOUNT = "acme"
STOPPED_SHARE = 0.05  # of the marketing pool, stopped before the day starts
GLOBAL_STOP_SHARE = 0.2  # of those, on the global list rather than the account's
SHORT_VALIDITY_SHARE = 0.10  # of collection and marketing: 0.5-8 h validity
POOL_PER_RATE = 50  # pool sizes = per-minute rate × this
MAX_LISTED = 20  # violations printed / put in the JSON
DEFAULT_START = datetime.fromisoformat("2026-03-06T00:00:00+03:00")  # a Friday; March 8 and its transfer follow


class SimClock:
    """The injected wall clock (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class JournalStore(MemoryStore):
    """The in-memory store, also keeping every state transition the gateway records: (state, at) per message."""

    def __init__(self) -> None:
        super().__init__()
        self.journal: defaultdict[str, list[tuple[State, float]]] = defaultdict(list)

    def set_state(
        self, message_id: str, state: State, at: float, *, status: int = 0, receipt_due: bool = False
    ) -> None:
        self.journal[message_id].append((state, at))
        super().set_state(message_id, state, at, status=status, receipt_due=receipt_due)


class _Window:
    free_slots = 10**9


class _Session:
    window = _Window()


class _SimConn:
    """A bound connection that never runs out of window slots; answers every submit_sm with ESME_ROK when told."""

    has_free_slot = True
    is_bound = True
    session = _Session()

    def __init__(self) -> None:
        self.pdus: list[SubmitSm] = []
        self._answers: list[tuple[Callable[[Pdu | None, BaseException | None], None], str]] = []

    def send_request(self, pdu: Pdu, done: Callable[[Pdu | None, BaseException | None], None]) -> None:
        assert isinstance(pdu, SubmitSm)
        self.pdus.append(pdu)
        self._answers.append((done, f"{len(self.pdus):x}"))

    def answer_all(self) -> None:
        answers, self._answers = self._answers, []
        for done, smsc_id in answers:
            done(SubmitSmResp(message_id=smsc_id), None)


class _SimLink:
    def __init__(self, conn: _SimConn) -> None:
        self.conn = conn
        self.connections = [conn]
        self.has_bound = True

    @property
    def bound(self) -> list[_SimConn]:
        return self.connections

    def pick(self) -> _SimConn:
        return self.conn


@dataclass
class Options:
    seed: int = 1
    per_minute: int = 40
    start: datetime = DEFAULT_START
    hours: float = 24.0
    late_stops: int = 0


@dataclass
class ClassFigures:
    submitted: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    held: int = 0
    released: int = 0
    immediate: int = 0
    expired: int = 0
    pending: int = 0
    other_final: int = 0


# ---------------------------------------------------------------------------------------------------- recipients


class Numbers:
    """Random Russian numbers: zone group uniformly, then a range of it, then a number in the range."""

    def __init__(self, plan: NumberingPlan, rng: random.Random) -> None:
        groups: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
        for start, end, info in plan.ranges():
            groups[info.tz_candidates].append((start, end))
        self.groups = [groups[key] for key in sorted(groups)]
        self.rng = rng

    def draw(self) -> str:
        ranges = self.rng.choice(self.groups)
        start, end = self.rng.choice(ranges)
        return f"7{self.rng.randint(start, end):010d}"


# ---------------------------------------------------------------------------------------------------- the day


class PolicyDay:
    """One simulated run: the gateway, its fake operator link, the traffic and what happened to each message."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.clock = SimClock(options.start.timestamp())
        self.calendar = WorkCalendar.load()
        plan = default_plan()
        self.config = GatewayConfig(
            accounts=(AccountConfig(system_id=ACCOUNT, password="pw", rate=1e9),),
            connectors=(ConnectorConfig(name="sim", rate=1e9),),
            routing=RoutingConfig(default="sim"),
            policy=PolicyConfig(),
        )
        self.store = JournalStore()
        self.gateway = Gateway(
            self.config, self.store, build_router(self.config, plan), clock=self.clock, calendar=self.calendar
        )
        self.connector = Connector(self.config.connectors[0], self.gateway, max_queue=10**9)
        self.connector.clock = self.clock
        self.conn = _SimConn()
        self.connector.link = _SimLink(self.conn)  # type: ignore[assignment]
        self.gateway.add_connector(self.connector)
        self.account = self.gateway.accounts[ACCOUNT]
        self.numbers = Numbers(plan, self.rng)
        pool = max(20, options.per_minute * POOL_PER_RATE)
        self.debtors: dict[str, int] = {self.numbers.draw(): self.rng.randint(0, 90) for _ in range(pool)}
        self.debtor_pool = list(self.debtors)
        self.marketing_pool = list(dict.fromkeys(self.numbers.draw() for _ in range(pool)))
        self.stopped_at: dict[tuple[str, str], float] = {}  # (scope, number) -> when it was stopped
        self.figures = {klass: ClassFigures() for klass, _ in MIX}
        self.messages: list[Message] = []
        self.sent: list[Message] = []

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        self._stop_before_start()
        late = self._late_stop_plan()
        start = self.clock.now
        minutes = round(self.options.hours * 60)
        for minute in range(minutes):
            now = start + minute * 60.0
            self.clock.now = now
            self.gateway.sweep()
            await self._drain()
            for i in range(self.options.per_minute):
                self.clock.now = now + (i + self.rng.random()) * 60.0 / self.options.per_minute
                while late and late[-1][0] <= self.clock.now:  # opt-outs between sends, never at a send instant
                    self._stop(ACCOUNT, late.pop()[1])
                await self._submit_one()
        self.clock.now = start + minutes * 60.0
        self.gateway.sweep()
        await self._drain()
        if self.store.pending:
            raise RuntimeError(f"{self.store.pending} store operations left uncommitted")

    def _stop_before_start(self) -> None:
        count = round(len(self.marketing_pool) * STOPPED_SHARE)
        for number in self.rng.sample(self.marketing_pool, count):
            self._stop("*" if self.rng.random() < GLOBAL_STOP_SHARE else ACCOUNT, number)

    def _late_stop_plan(self) -> list[tuple[float, str]]:
        """(instant, number) of pool numbers opting out during the run, latest first (popped from the end)."""
        stopped = {number for _, number in self.stopped_at}
        candidates = [n for n in self.marketing_pool if n not in stopped]
        chosen = self.rng.sample(candidates, min(self.options.late_stops, len(candidates)))
        span = self.options.hours * 3600.0
        plan = [(self.clock.now + self.rng.random() * span, number) for number in chosen]
        return sorted(plan, reverse=True)

    def _stop(self, scope: str, number: str) -> None:
        if self.gateway.set_stopped(scope, number, True, "bench"):
            self.stopped_at[(scope, number)] = self.clock.now

    async def _submit_one(self) -> None:
        klass = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        to, overdue, validity = self._recipient(klass)
        figures = self.figures[klass]
        figures.submitted += 1
        request = TextSubmit(
            to=to,
            sender="Lender",
            text=f"{klass.value} {self.rng.randrange(10**6):06d}",
            traffic_class=klass.value,
            validity=validity,
            overdue_days=overdue,
        )
        try:
            message = self.gateway.accept_text(self.account, request)
        except SubmitRefusedError as exc:
            figures.rejected[exc.code] += 1
            return
        outcome: list[bool] = []
        self.gateway.persist(message, outcome.append)
        await _settle(1)
        if outcome != [True]:
            raise RuntimeError(f"message {message.id} was not committed: {outcome}")
        figures.accepted += 1
        self.messages.append(message)

    def _recipient(self, klass: TrafficClass) -> tuple[str, int | None, float | None]:
        """(number, overdue days, validity seconds) for a message of ``klass``."""
        rng = self.rng
        short = rng.uniform(1800.0, 8 * 3600.0) if rng.random() < SHORT_VALIDITY_SHARE else None
        if klass is TrafficClass.COLLECTION:
            to = rng.choice(self.debtor_pool) if rng.random() < 0.5 else self.numbers.draw()
            overdue = self.debtors.setdefault(to, rng.randint(0, 90))
            return to, overdue, short
        if klass is TrafficClass.MARKETING:
            return rng.choice(self.marketing_pool), None, short
        return self.numbers.draw(), None, 300.0 if klass is TrafficClass.OTP else None

    async def _drain(self) -> None:
        """Send everything queued, through the connector's own loop; each part is accepted, then DELIVERED."""
        queued = [message for lane in self.connector.lanes for message, _ in lane]
        for _ in range(4):  # one pass takes everything (the link never runs out of slots); bounded anyway
            if not self.connector.queued:
                break
            self.connector._send_what_we_can()
            await _settle()
        self.conn.answer_all()
        now = self.clock.now
        for message in queued:
            if message.state is State.SUBMITTED:
                if message.submitted_at != now:
                    raise RuntimeError(f"message {message.id} submitted at {message.submitted_at}, not {now}")
                self.sent.append(message)
                self.gateway.message_failed(message, 0, State.DELIVERED)
        await _settle()

    # ------------------------------------------------------------------ accounting

    def tally(self) -> None:
        for message in self.messages:
            figures = self.figures[message.traffic_class]
            held = any(state is State.HELD for state, _ in self.store.journal.get(message.id, ()))
            figures.held += held
            if message.submitted_at is not None:
                if held:
                    figures.released += 1
                else:
                    figures.immediate += 1
            elif message.state is State.EXPIRED:
                figures.expired += 1
            elif not message.state.is_final:
                figures.pending += 1
            else:
                figures.other_final += 1


async def _settle(rounds: int = 3) -> None:
    """Let the MemoryStore commit what is queued (a commit and its callbacks run on the next loop iteration; a
    callback's own writes on the one after)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------------------- verification


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def _hours(policy: PolicyConfig, klass: TrafficClass) -> dict[DayKind, tuple[int, int]] | None:
    """Allowed seconds of the local day per day kind, parsed here from the config strings."""
    cfg = policy.hours_for(klass.value)
    if cfg is None:
        return None
    out = {}
    for kind, text in ((DayKind.WORKING, cfg.working_days), (DayKind.WEEKEND, cfg.weekends)):
        first, second = text.split("-")
        out[kind] = (_minutes(first) * 60, _minutes(second) * 60)
    return out


class Verifier:
    """Checks what went out against the configured hours, caps and stop list, without the gateway's helpers."""

    def __init__(self, day: PolicyDay) -> None:
        self.day = day
        self.resolver = day.gateway.router.resolver
        self.violations: list[str] = []
        self.counts: Counter[str] = Counter()
        self._zones: dict[str, ZoneInfo] = {}

    def zone(self, name: str) -> ZoneInfo:
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]

    def run(self) -> None:
        policy = self.day.config.policy
        hours = {klass: _hours(policy, klass) for klass in CHECKED}
        per_recipient: defaultdict[str, list[float]] = defaultdict(list)
        wire = Counter(pdu.destination_addr for pdu in self.day.conn.pdus)
        sent_parts = Counter[str]()
        for message in self.day.sent:
            sent_parts[message.dest] += message.segments
            assert message.submitted_at is not None
            at = message.submitted_at
            if at >= message.expires_at:
                self._violation("validity", message, at, "sent after its validity ended")
            klass = message.traffic_class
            if klass not in CHECKED:
                continue
            info = self.resolver.resolve(message.dest)
            window = hours[klass]
            if window is not None:
                self._check_window(message, info, at, window)
            if klass is TrafficClass.COLLECTION:
                per_recipient[message.dest].append(at)
            else:
                self._check_stop(message, at)
        if wire != sent_parts:
            self.violations.append("the PDUs on the wire do not match the messages recorded as sent")
        self._check_caps(per_recipient)

    def _violation(self, kind: str, message: Message, at: float, what: str) -> None:
        self.counts[kind] += 1
        if len(self.violations) < MAX_LISTED:
            when = datetime.fromtimestamp(at, self.zone("UTC")).isoformat()
            self.violations.append(f"{kind}: {message.traffic_class} {message.id} to {message.dest} at {when}: {what}")

    def _check_window(
        self, message: Message, info: NumberInfo | None, at: float, window: dict[DayKind, tuple[int, int]]
    ) -> None:
        zones = info.tz_candidates if info is not None else ("Europe/Moscow",)
        region = info.region if info is not None else None
        self.counts["window_checks"] += 1
        for name in zones:
            local = datetime.fromtimestamp(at, self.zone(name))
            kind = self.day.calendar.kind(local.date(), region)
            start, end = window[kind]
            second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
            self.counts["zone_checks"] += 1
            if not start <= second < end:
                self._violation("window", message, at, f"{local.isoformat()} in {name} is outside {kind.value} hours")

    def _check_stop(self, message: Message, at: float) -> None:
        self.counts["stop_checks"] += 1
        for scope in (ACCOUNT, "*"):
            stopped = self.day.stopped_at.get((scope, message.dest))
            if stopped is not None and stopped <= at:
                self._violation("stop", message, at, f"stopped in scope {scope!r} before it went out")

    def _check_caps(self, per_recipient: dict[str, list[float]]) -> None:
        caps: CapsConfig = self.day.config.policy.collection_caps
        for dest, instants in per_recipient.items():
            overdue = self.day.debtors[dest]
            per_day = caps.per_day_overdue if overdue >= caps.overdue_days_threshold else caps.per_day
            info = self.resolver.resolve(dest)
            zones = info.tz_candidates if info is not None else ("Europe/Moscow",)
            self.counts["cap_recipients"] += 1
            for name in zones:
                dates = [datetime.fromtimestamp(at, self.zone(name)).date() for at in instants]
                periods = (
                    ("day", per_day, Counter(dates)),
                    ("week", caps.per_week, Counter(d.isocalendar()[:2] for d in dates)),
                    ("month", caps.per_month, Counter((d.year, d.month) for d in dates)),
                )
                for period, limit, counter in periods:
                    for key, count in counter.items():
                        if count > limit:
                            self.counts["cap"] += 1
                            if len(self.violations) < MAX_LISTED:
                                self.violations.append(
                                    f"cap: {dest} got {count} collection messages in {name} {period} {key} "
                                    f"(limit {limit}, overdue {overdue} days)"
                                )


# ---------------------------------------------------------------------------------------------------- report

COLUMNS = (
    ("submitted", "submitted"),
    ("accepted", "accepted"),
    ("rej cap", "cap_exceeded"),
    ("rej stop", "stop_listed"),
    ("rej other", "rejected_other"),
    ("held", "held"),
    ("released", "released"),
    ("immediate", "immediate"),
    ("expired", "expired"),
    ("pending", "pending"),
)


def class_row(figures: ClassFigures) -> dict[str, int]:
    rejected = figures.rejected
    return {
        "submitted": figures.submitted,
        "accepted": figures.accepted,
        "cap_exceeded": rejected["cap_exceeded"],
        "stop_listed": rejected["stop_listed"],
        "rejected_other": sum(v for k, v in rejected.items() if k not in ("cap_exceeded", "stop_listed")),
        "held": figures.held,
        "released": figures.released,
        "immediate": figures.immediate,
        "expired": figures.expired,
        "pending": figures.pending,
        "other_final": figures.other_final,
    }


def simulate(options: Options) -> dict[str, Any]:
    """Run the day and verify it; the report as a JSON-able dict (``ok`` False on any violation)."""
    started = time.perf_counter()
    day = PolicyDay(options)
    asyncio.run(day.run())
    day.tally()
    verifier = Verifier(day)
    verifier.run()
    classes = {klass.value: class_row(day.figures[klass]) for klass, _ in MIX}
    problems = list(verifier.violations)
    for name, row in classes.items():
        rejected = row["cap_exceeded"] + row["stop_listed"] + row["rejected_other"]
        ends = row["released"] + row["immediate"] + row["expired"] + row["pending"] + row["other_final"]
        if row["submitted"] != row["accepted"] + rejected or row["accepted"] != ends:
            problems.append(f"accounting: {name} does not add up: {row}")
    counts = verifier.counts
    return {
        "settings": {
            "seed": options.seed,
            "per_minute": options.per_minute,
            "start": options.start.isoformat(),
            "hours": options.hours,
            "late_stops": options.late_stops,
        },
        "classes": classes,
        "verification": {
            "sent": len(day.sent),
            "pdus": len(day.conn.pdus),
            "window_checked": counts["window_checks"],
            "zone_checks": counts["zone_checks"],
            "window_violations": counts["window"],
            "cap_recipients": counts["cap_recipients"],
            "cap_violations": counts["cap"],
            "stop_checked": counts["stop_checks"],
            "stop_violations": counts["stop"],
            "validity_violations": counts["validity"],
            "stopped_numbers": len(day.stopped_at),
        },
        "gateway": {
            "held_transitions": day.gateway.stats.held,
            "final": dict(day.gateway.stats.final),
            "live_at_end": len(day.gateway.live),
        },
        "problems": problems,
        "ok": not problems and not (counts["window"] or counts["cap"] or counts["stop"] or counts["validity"]),
        "seconds": round(time.perf_counter() - started, 2),
    }


def format_text(report: dict[str, Any]) -> str:
    headers = ["class"] + [title for title, _ in COLUMNS]
    rows = [[name] + [str(row[key]) for _, key in COLUMNS] for name, row in report["classes"].items()]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    lines += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows
    ]
    v = report["verification"]
    lines += [
        "",
        f"sent {v['sent']} messages ({v['pdus']} submit_sm); stop list holds {v['stopped_numbers']} numbers",
        f"windows: {v['window_checked']} collection/marketing sends checked in {v['zone_checks']} candidate zones, "
        f"{v['window_violations']} outside their hours",
        f"caps: {v['cap_recipients']} collection recipients checked per local day/ISO week/month, "
        f"{v['cap_violations']} over a cap",
        f"stop list: {v['stop_checked']} marketing sends checked, {v['stop_violations']} to a stopped number",
        f"validity: {v['validity_violations']} sent after their validity ended",
    ]
    lines += [f"VIOLATION {p}" for p in report["problems"]]
    lines.append(f"{'OK' if report['ok'] else 'VIOLATIONS'} in {report['seconds']} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-minute", type=int, default=40, help="messages submitted per simulated minute")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(), help="ISO instant with a UTC offset")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (at most 744)")
    parser.add_argument("--late-stops", type=int, default=0, help="marketing pool numbers opting out during the run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        parser.error("--start needs a UTC offset, e.g. 2026-03-06T00:00:00+03:00")
    if not 0 < args.hours <= 744 or not 1 <= args.per_minute <= 10_000 or args.late_stops < 0:
        parser.error("--hours must be in (0, 744], --per-minute in 1..10000, --late-stops >= 0")
    return Options(args.seed, args.per_minute, start, args.hours, args.late_stops)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments
    report = simulate(parse_args(arguments))
    report["command"] = shlex.join(["python", "bench/policy_day.py", *arguments])
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"$ {report['command']}")
        print(format_text(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
