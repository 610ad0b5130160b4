"""GET /v1/reports end to end: a real GatewayApp (SQLite in tmp), messages written through the store API.

The data set (Moscow time, UTC+3) spans 1-3 March 2025 over an account tree acme → acme-sub → acme-subsub, plus
``other``, ``ghost`` (traffic of an account no longer configured) and the admin ``root``.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest

from smppgw.config import AccountConfig
from smppgw.core.message import Message, MessageIdGenerator, State, TrafficClass
from smppgw.http.reports_api import MAX_RUNNING, ReportsApi
from smppgw.http.types import Request
from smppgw.service.gateway import Account
from smppgw.store.base import ReportRow, SegmentRow, Store
from smppgw.store.memory import MemoryStore

from .api_helpers import ACME, OTHER, AppThread, Reply, make_config, sync_request

SUB, SUBSUB, ROOT = "sub-token", "subsub-token", "root-token"
ACCOUNTS = (
    AccountConfig(system_id="acme", http_token=ACME),
    AccountConfig(system_id="acme-sub", http_token=SUB, parent="acme"),
    AccountConfig(system_id="acme-subsub", http_token=SUBSUB, parent="acme-sub"),
    AccountConfig(system_id="other", http_token=OTHER),
    AccountConfig(system_id="root", http_token=ROOT, admin=True),
)
PERIOD = {"from": "2025-03-01", "to": "2025-03-03"}


class Sent(msgspec.Struct, frozen=True):
    """One message of the data set: created at ``created`` (Moscow), with its fate."""

    created: str
    account: str
    klass: str
    operator: str
    state: State
    parts: int = 1
    submit_after: float | None = None  # seconds after creation; None: never reached an operator
    done_after: float | None = None  # seconds after creation (final states)


DATA = (
    Sent("2025-03-01T00:00", "acme", "marketing", "mts", State.ACCEPTED),  # exactly at `from`: included
    Sent("2025-03-01T10:00", "acme", "otp", "mts", State.DELIVERED, 1, 1.0, 5.0),  # latency 4
    Sent("2025-03-01T12:00", "acme", "otp", "beeline", State.DELIVERED, 2, 2.0, 12.0),  # latency 10
    Sent("2025-03-01T15:00", "acme-sub", "otp", "mts", State.DELIVERED, 1, 1.0, 21.0),  # latency 20
    Sent("2025-03-01T23:30", "acme", "marketing", "mts", State.UNDELIVERABLE, 1, 1.0, 60.0),
    Sent("2025-03-02T00:30", "acme", "transactional", "megafon", State.EXPIRED, 1, 1.0, 90.0),  # 1 March in UTC
    Sent("2025-03-02T09:00", "acme", "otp", "mts", State.FAILED, 1, None, 1.0),
    Sent("2025-03-02T10:00", "acme", "service", "tele2", State.QUEUED),
    Sent("2025-03-02T11:00", "acme", "collection", "mts", State.SUBMITTED, 1, 1.0),
    Sent("2025-03-02T12:00", "acme", "collection", "", State.HELD),
    Sent("2025-03-02T15:00", "acme-subsub", "otp", "mts", State.UNKNOWN, 1, 1.0, 600.0),
    Sent("2025-03-03T00:00", "acme", "otp", "mts", State.DELIVERED, 1, 1.0, 2.0),  # exactly at `to`: excluded
    Sent("2025-03-01T11:00", "other", "otp", "mts", State.DELIVERED, 1, 1.0, 3.0),
    Sent("2025-03-01T11:00", "ghost", "otp", "mts", State.REJECTED, 1, 1.0, 2.0),
)


def moscow(local: str) -> float:
    return datetime.fromisoformat(f"{local}+03:00").timestamp()


def write(store: Store, data: tuple[Sent, ...]) -> None:
    """Through the store API, as the gateway writes: message, live states, segments, final state."""
    ids = MessageIdGenerator()
    for item in sorted(data, key=lambda s: moscow(s.created)):
        created = moscow(item.created)
        message_id = ids.next(int(created * 1000))
        store.add_message(_message(message_id, created, item))
        if item.submit_after is not None:
            store.set_state(message_id, State.SUBMITTED, created + item.submit_after)
            for part in range(item.parts):
                submitted = created + item.submit_after + part
                smsc_id = f"{message_id}-{part}"
                row = SegmentRow(
                    message_id=message_id, part=part, connector="sim", smsc_id=smsc_id, submitted_at=submitted
                )
                store.add_segment(row)
        if item.state is not State.ACCEPTED and not (item.state is State.SUBMITTED and item.submit_after):
            store.set_state(message_id, item.state, created + (item.done_after or 0.5))


def _message(message_id: str, created: float, item: Sent) -> Message:
    return Message(
        id=message_id,
        account=item.account,
        origin="http",
        source_addr="MFO",
        source_ton=5,
        source_npi=0,
        dest="79161234567",
        traffic_class=TrafficClass(item.klass),
        text="Код 1234",
        segments=item.parts,
        connector="sim",
        operator=item.operator,
        created_at=created,
        expires_at=created + 86_400,
        smsc_ids=[None] * item.parts,
        part_states=[None] * item.parts,
    )


async def _commit(store: Store) -> bool:
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.after_commit(done.set_result)
    return await done


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppThread]:
    config = make_config(tmp_path_factory.mktemp("reports") / "gw.sqlite3", accounts=ACCOUNTS)
    app = AppThread(config).start()
    try:

        async def load(gateway_app: Any) -> bool:
            write(gateway_app.store, DATA)
            return await _commit(gateway_app.store)

        assert app.call(load)
        yield app
    finally:
        app.stop()


def report(
    gw: AppThread,
    token: str | None = ACME,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    query: dict[str, str] | None = None,
    **params: str,
) -> Reply:
    """The report over ``PERIOD`` by day, with ``query`` (names that are not identifiers) and ``params`` over it."""
    encoded = urlencode({**PERIOD, "group_by": "day", **(query or {}), **params})
    return sync_request(gw.port, "GET", f"/v1/reports?{encoded}", token=token, headers=headers)


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/json", reply.headers
    return reply.json()  # type: ignore[no-any-return]


def totals(gw: AppThread, token: str = ACME, query: dict[str, str] | None = None) -> int:
    return int(ok(report(gw, token, query=query))["totals"]["total"])


COLUMNS = (
    *("total", "sent", "delivered", "undelivered", "expired", "unknown", "pending", "segments"),
    *("delivery_rate", "latency_p50", "latency_p95"),
)


def line(group: str, *figures: Any) -> dict[str, Any]:
    return {"group": group, **dict(zip(COLUMNS, figures, strict=True))}


# ------------------------------------------------------------------------------------------------ JSON


def test_daily_report_of_the_account_tree(gw: AppThread) -> None:
    body = ok(report(gw))
    assert body["groups"] == [
        line("2025-03-01", 5, 4, 3, 1, 0, 0, 1, 6, 0.75, 10.0, 20.0),
        line("2025-03-02", 6, 3, 0, 1, 1, 1, 3, 6, 0.0, None, None),
    ]
    assert body["totals"] == line("total", 11, 7, 3, 2, 1, 1, 4, 12, round(3 / 7, 4), 10.0, 20.0)
    assert body["accounts"] == ["acme", "acme-sub", "acme-subsub"]
    assert (body["from"], body["to"]) == ("2025-03-01T00:00:00+03:00", "2025-03-03T00:00:00+03:00")
    assert (body["tz"], body["group_by"]) == ("Europe/Moscow", "day")


def test_time_zone_moves_both_the_period_and_the_days(gw: AppThread) -> None:
    body = ok(report(gw, tz="UTC"))  # [1 March 03:00, 3 March 03:00) Moscow: loses 00:00 on 1st, gains 00:00 on 3rd
    assert [(g["group"], g["total"], g["expired"]) for g in body["groups"]] == [
        ("2025-03-01", 5, 1),
        ("2025-03-02", 6, 0),
    ]
    assert body["from"] == "2025-03-01T00:00:00Z"


def test_date_times_with_offsets_and_exclusive_to(gw: AppThread) -> None:
    body = ok(report(gw, query={"from": "2025-03-02T00:00:00+03:00", "to": "2025-03-03T00:00:00+03:00"}))
    assert body["totals"]["total"] == 6
    later = ok(report(gw, query={"from": "2025-03-02T00:00:00+03:00", "to": "2025-03-03T00:00:00.001+03:00"}))
    assert later["totals"]["total"] == 7
    # an unescaped "+" decodes to a space: still understood
    path = "/v1/reports?group_by=day&from=2025-03-02T00:00:00+03:00&to=2025-03-02T21:00:00Z"
    assert ok(sync_request(gw.port, "GET", path, token=ACME))["totals"]["total"] == 6


def test_by_class_and_by_operator(gw: AppThread) -> None:
    by_class = ok(report(gw, group_by="class"))
    assert {g["group"]: g["total"] for g in by_class["groups"]} == {
        "collection": 2,
        "marketing": 2,
        "otp": 5,
        "service": 1,
        "transactional": 1,
    }
    by_operator = ok(report(gw, group_by="operator"))
    assert {g["group"]: g["total"] for g in by_operator["groups"]} == {
        "": 1,
        "beeline": 1,
        "megafon": 1,
        "mts": 7,
        "tele2": 1,
    }
    assert by_class["totals"] == by_operator["totals"] == ok(report(gw))["totals"]


# ------------------------------------------------------------------------------------------------ CSV


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"format": "csv"}, ()),
        ({}, (("Accept", "text/csv"),)),
        ({}, (("Accept", "application/json;q=0.5, text/csv"),)),
    ],
)
def test_csv(gw: AppThread, params: dict[str, str], headers: tuple[tuple[str, str], ...]) -> None:
    reply = report(gw, headers=headers, query=params)
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"] == 'attachment; filename="report-acme-day-20250301-20250303.csv"'
    table = list(csv.reader(io.StringIO(reply.body.decode("utf-8"))))
    assert table == [
        ["day", *COLUMNS],
        ["2025-03-01", "5", "4", "3", "1", "0", "0", "1", "6", "0.75", "10.0", "20.0"],
        ["2025-03-02", "6", "3", "0", "1", "1", "1", "3", "6", "0.0", "", ""],
        ["total", "11", "7", "3", "2", "1", "1", "4", "12", "0.4286", "10.0", "20.0"],
    ]


def test_format_json_wins_over_accept(gw: AppThread) -> None:
    ok(report(gw, headers=(("Accept", "text/csv"),), format="json"))
    ok(report(gw, headers=(("Accept", "*/*"),)))


# ------------------------------------------------------------------------------------------------ visibility


@pytest.mark.parametrize(
    ("token", "account", "expected"),
    [
        (ACME, "acme", 9),
        (ACME, "acme-sub", 1),
        (ACME, "acme-subsub", 1),
        (SUB, None, 2),
        (SUB, "acme-sub", 1),
        (SUBSUB, None, 1),
        (OTHER, None, 1),
        (ROOT, None, 14 - 1),  # everything but the message at `to`, the ghost account's included
        (ROOT, "other", 1),
        (ROOT, "ghost", 1),
        (ROOT, "acme", 9),
        (ROOT, "root", 0),
    ],
)
def test_visibility(gw: AppThread, token: str, account: str | None, expected: int) -> None:
    params = {} if account is None else {"account": account}
    assert totals(gw, token, params) == expected


def test_who_is_counted_is_said(gw: AppThread) -> None:
    assert ok(report(gw, SUB))["accounts"] == ["acme-sub", "acme-subsub"]
    assert ok(report(gw, ROOT))["accounts"] is None


@pytest.mark.parametrize(
    ("token", "account"),
    [(SUB, "acme"), (SUBSUB, "acme-sub"), (ACME, "other"), (ACME, "ghost"), (ACME, "nobody"), (OTHER, "acme")],
)
def test_hidden_accounts_are_not_found(gw: AppThread, token: str, account: str) -> None:
    reply = report(gw, token, account=account)
    assert reply.status == 404, reply
    assert reply.json() == {"error": {"code": "not_found", "message": "no such account"}}


def test_authentication_is_required(gw: AppThread) -> None:
    for token in (None, "wrong-token"):
        reply = report(gw, token)
        assert reply.status == 401 and reply.code == "unauthorized", reply
        assert reply.headers["www-authenticate"] == "Bearer"


# ------------------------------------------------------------------------------------------------ bad requests


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": ""}, "missing_parameter"),
        ({"group_by": ""}, "missing_parameter"),
        ({"from": "yesterday"}, "invalid_date"),
        ({"to": "2025-02-30"}, "invalid_date"),
        ({"from": "1969-12-31"}, "invalid_date"),
        ({"to": "2025-03-01"}, "invalid_range"),
        ({"to": "2025-02-28"}, "invalid_range"),
        ({"to": "2026-03-03"}, "range_too_long"),
        ({"tz": "Mars/Olympus_Mons"}, "unknown_timezone"),
        ({"tz": "../../etc/passwd"}, "unknown_timezone"),
        ({"tz": "Europe"}, "unknown_timezone"),
        ({"group_by": "week"}, "invalid_group_by"),
        ({"format": "xml"}, "invalid_format"),
        ({"acount": "acme"}, "unknown_parameter"),
    ],
)
def test_bad_parameters(gw: AppThread, params: dict[str, str], code: str) -> None:
    reply = report(gw, query=params)
    assert reply.status == 422, reply
    assert reply.code == code, reply
    assert reply.json()["error"]["message"]


def test_a_year_and_a_day_is_allowed(gw: AppThread) -> None:
    assert totals(gw, query={"from": "2024-03-02", "to": "2025-03-03"}) == 11  # 366 days


def test_bad_parameters_come_before_visibility(gw: AppThread) -> None:
    assert report(gw, SUB, account="acme", group_by="week").status == 422


# ------------------------------------------------------------------------------------------------ bounded


class _StalledStore(MemoryStore):
    """Reports wait on ``gate``: lets a test hold reports running."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def report_rows(self, *args: Any, **kwargs: Any) -> Any:
        await self.gate.wait()
        yield [ReportRow("acme", "otp", "mts", "delivered", 1, 0.0, 1.0, 2.0)]


async def test_too_many_running_reports_get_503() -> None:
    store = _StalledStore()
    api = ReportsApi(store, {"acme": ACCOUNTS[0]})
    account = Account(ACCOUNTS[0], 0.0)
    request = Request("GET", "/v1/reports", urlencode({**PERIOD, "group_by": "day"}))
    running = [asyncio.create_task(api.get(request, {}, account)) for _ in range(MAX_RUNNING)]
    await asyncio.sleep(0)
    refused = await api.get(request, {}, account)
    assert refused.status == 503 and dict(refused.headers)["Retry-After"] == "5"
    store.gate.set()
    assert [r.status for r in await asyncio.gather(*running)] == [200] * MAX_RUNNING
    assert (await api.get(request, {}, account)).status == 200
