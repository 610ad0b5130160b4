"""Stop-list endpoints and CLI end to end: the real daemon (SQLite, HTTP), durable across a restart; the collection
cap under concurrent HTTP submits."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from smppgw.config import AccountConfig
from smppgw.http import stoplist_cli as cli

from .api_helpers import ACME, OTHER, AppThread, make_config, message, store_rows, sync_request

ADMIN = "admin-token"
NUMBER = "79161234567"


def _config(path: Path):  # type: ignore[no-untyped-def]
    return make_config(
        path,
        accounts=(
            AccountConfig(system_id="acme", http_token=ACME, rate=50_000.0),
            AccountConfig(system_id="other", http_token=OTHER, rate=50_000.0),
            AccountConfig(system_id="root", http_token=ADMIN, admin=True),
        ),
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stoplist") / "gw.sqlite3"


@pytest.fixture(scope="module")
def gw(store_path: Path) -> Iterator[AppThread]:
    app = AppThread(_config(store_path)).start()
    try:
        yield app
    finally:
        app.stop()


def call(gw: AppThread, method: str, path: str, token: str = ACME, body: object = None):  # type: ignore[no-untyped-def]
    return sync_request(gw.port, method, path, body, token=token)


def send(gw: AppThread, klass: str, to: str = NUMBER, token: str = ACME):  # type: ignore[no-untyped-def]
    return sync_request(gw.port, "POST", "/v1/messages", message(to=to, **{"class": klass}), token=token)


def test_put_get_delete_and_the_effect_on_marketing(gw: AppThread) -> None:
    reply = call(gw, "PUT", "/v1/stoplist/+7%20916%20123-45-67")
    assert reply.status == 200, reply
    assert reply.json() == {"number": NUMBER, "scope": "acme", "stopped": True, "changed": True}
    assert call(gw, "PUT", f"/v1/stoplist/{NUMBER}").json()["changed"] is False
    refused = send(gw, "marketing")
    assert refused.status == 422 and refused.code == "stop_listed", refused
    assert send(gw, "otp").status == 202
    assert send(gw, "marketing", token=OTHER).status == 202  # another brand's list
    state = call(gw, "GET", "/v1/stoplist/89161234567").json()
    assert state["stopped"] is True and state["scopes"] == ["acme"]
    assert [(e["scope"], e["stopped"], e["source"]) for e in state["history"]] == [("acme", True, "http:acme")]
    assert call(gw, "DELETE", f"/v1/stoplist/{NUMBER}").status == 200
    assert call(gw, "DELETE", f"/v1/stoplist/{NUMBER}").status == 404
    assert send(gw, "marketing").status == 202
    history = call(gw, "GET", f"/v1/stoplist/{NUMBER}").json()["history"]
    assert [e["stopped"] for e in history] == [True, False]


def test_global_scope_is_for_admins_and_binds_everyone(gw: AppThread) -> None:
    number = "79161112233"
    assert call(gw, "PUT", f"/v1/stoplist/{number}?scope=global").status == 403
    assert call(gw, "PUT", f"/v1/stoplist/{number}?scope=nonsense").status == 422
    assert call(gw, "PUT", f"/v1/stoplist/{number}?scope=global", token=ADMIN).status == 200
    assert send(gw, "marketing", to=number).code == "stop_listed"
    assert send(gw, "marketing", to=number, token=OTHER).code == "stop_listed"
    assert call(gw, "GET", f"/v1/stoplist/{number}").json()["scopes"] == ["global"]


def test_bad_numbers_and_auth(gw: AppThread) -> None:
    reply = call(gw, "PUT", "/v1/stoplist/12ab")
    assert reply.status == 422 and reply.code == "invalid_number"
    assert sync_request(gw.port, "PUT", f"/v1/stoplist/{NUMBER}", None, token=None).status == 401


def test_csv_import_counts_and_reports_bad_lines(gw: AppThread) -> None:
    body = b"number\n79160000001\n+7 916 000-00-02\n\nnot-a-number\n89160000001\n"
    reply = sync_request(gw.port, "POST", "/v1/stoplist", body, token=ACME, headers=[("Content-Type", "text/csv")])
    assert reply.status == 200, reply
    out = reply.json()
    assert (out["added"], out["already"], out["invalid"]) == (2, 1, 1)
    assert out["errors"][0]["line"] == 5
    assert send(gw, "marketing", to="79160000002").code == "stop_listed"


def test_cli_add_show_import(gw: AppThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        cli.configure(parser)
        return cli.main(parser.parse_args([*argv, "--url", f"http://127.0.0.1:{gw.port}", "--token", ACME]))

    def printed() -> dict[str, object]:  # the daemon logs to the same stdout in this process: take the last JSON
        out = capsys.readouterr().out
        start = max(out.rfind("\n{"), -1) + 1
        value: dict[str, object] = json.loads(out[start:])
        return value

    assert run("add", "+7", "916", "555-44-33") == 0
    assert printed()["number"] == "79165554433"
    assert run("show", "79165554433") == 0
    assert printed()["stopped"] is True
    csv_file = tmp_path / "numbers.csv"
    csv_file.write_text("79165554401\n79165554402\nbad\n79165554403\n", encoding="utf-8")
    assert run("import", str(csv_file), "--chunk", "2") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == {"added": 3, "already": 0, "invalid": 1}
    assert "numbers.csv:3:" in captured.err
    assert run("remove", "79169999999") == 1  # not on the list: 404


def test_stop_list_survives_a_restart(tmp_path: Path) -> None:
    number = "79167778899"
    first = AppThread(_config(tmp_path / "gw.sqlite3")).start()
    try:
        assert call(first, "PUT", f"/v1/stoplist/{number}").status == 200
    finally:
        first.stop()
    again = AppThread(_config(tmp_path / "gw.sqlite3")).start()
    try:
        assert send(again, "marketing", to=number).code == "stop_listed"
    finally:
        again.stop()


def test_concurrent_collection_submits_take_the_last_cap_slot_once(gw: AppThread) -> None:
    """20 clients race for the recipient's one daily collection slot: exactly one wins, the rest get 422."""
    number = "79165550000"
    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda _: send(gw, "collection", to=number), range(20)))
    assert sorted(r.status for r in replies) == [202] + [422] * 19, replies
    assert {r.code for r in replies if r.status == 422} == {"cap_exceeded"}
    assert store_rows(gw.store_path, "SELECT count(*) FROM cap_ledger WHERE msisdn=?", (number,))[0][0] == 1
