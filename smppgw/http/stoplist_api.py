"""Stop-list endpoints: ``PUT/DELETE/GET /v1/stoplist/{number}`` and ``POST /v1/stoplist`` (CSV import).

An account manages its own scope (its brand's list, ``stoplist`` in its config, else its system_id); an account with
``admin = true`` may add ``?scope=global`` to manage the list every account honours. A change is answered once it is
durable. Numbers are the account's own data, so answers show them in full; logs mask them.
"""

from __future__ import annotations

import asyncio
import csv
import io

import msgspec

from smppgw.core.numbering import InvalidNumberError, normalise_msisdn
from smppgw.core.policy.stoplist import GLOBAL_SCOPE
from smppgw.obs.logging import get_logger
from smppgw.service.gateway import Account, Gateway

from .types import Request, Response, error_response

log = get_logger("smppgw.http.stoplist")

MAX_IMPORT_ERRORS = 100
"""Invalid lines reported back in detail (all are counted)."""


class StopEventOut(msgspec.Struct, kw_only=True):
    scope: str
    stopped: bool
    at: float
    source: str


class StopStateOut(msgspec.Struct, kw_only=True):
    number: str
    stopped: bool  # by the scope asked about, or by the global list
    scopes: list[str]  # which of (the account's scope, "global") stop it
    history: list[StopEventOut]  # changes in those scopes, oldest first


class ImportLineError(msgspec.Struct, kw_only=True):
    line: int
    reason: str


class ImportOut(msgspec.Struct, kw_only=True):
    scope: str
    added: int
    already: int
    invalid: int
    errors: list[ImportLineError]


class StopListApi:
    """The handlers; ``Api`` registers them behind its bearer-token guard."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _scope(self, request: Request, account: Account) -> str | Response:
        wanted = request.query.get("scope", "")
        if wanted in ("", "account"):
            return self.gateway.policies.scope_of(account.config.system_id)
        if wanted == "global":
            if not account.config.admin:
                return error_response(403, "forbidden", "only an admin account manages the global stop list")
            return GLOBAL_SCOPE
        return error_response(422, "invalid_scope", "scope must be 'account' or 'global'")

    async def put(self, request: Request, params: dict[str, str], account: Account) -> Response:
        return await self._change(request, params, account, stopped=True)

    async def delete(self, request: Request, params: dict[str, str], account: Account) -> Response:
        return await self._change(request, params, account, stopped=False)

    async def _change(self, request: Request, params: dict[str, str], account: Account, *, stopped: bool) -> Response:
        scope = self._scope(request, account)
        if isinstance(scope, Response):
            return scope
        try:
            number = normalise_msisdn(params["number"])
        except InvalidNumberError as exc:
            return error_response(422, "invalid_number", str(exc))
        changed = self.gateway.set_stopped(scope, number, stopped, f"http:{account.config.system_id}")
        if not stopped and not changed:
            return error_response(404, "not_found", "the number is not on this stop list")
        if not await self._durable():  # also when unchanged: another request's change may not be durable yet
            return error_response(503, "store_unavailable", "the change could not be stored", [("Retry-After", "5")])
        log.info("stoplist_change", account=account.config.system_id, scope=scope, number=number, stopped=stopped)
        return Response.json({"number": number, "scope": _scope_name(scope), "stopped": stopped, "changed": changed})

    async def get(self, request: Request, params: dict[str, str], account: Account) -> Response:
        scope = self._scope(request, account)
        if isinstance(scope, Response):
            return scope
        try:
            number = normalise_msisdn(params["number"])
        except InvalidNumberError as exc:
            return error_response(422, "invalid_number", str(exc))
        stop_list = self.gateway.policies.stoplist
        visible = {scope, GLOBAL_SCOPE}
        scopes = [_scope_name(s) for s in (scope, GLOBAL_SCOPE) if stop_list.contains(s, number)]
        history = [
            StopEventOut(scope=_scope_name(e.scope), stopped=e.stopped, at=e.at, source=e.source)
            for e in await self.gateway.store.stop_history(number)
            if e.scope in visible
        ]
        state = StopStateOut(number=number, stopped=bool(scopes), scopes=list(dict.fromkeys(scopes)), history=history)
        return Response.json(state)

    async def import_csv(self, request: Request, params: dict[str, str], account: Account) -> Response:
        """One number per line (the first column), stopped in the account's scope. A first line without digits is
        a header and skipped, unless ``?header=no`` (the CLI sends its later chunks so)."""
        scope = self._scope(request, account)
        if isinstance(scope, Response):
            return scope
        try:
            text = request.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return error_response(400, "invalid_csv", "the body must be UTF-8 text")
        added = already = invalid = 0
        errors: list[ImportLineError] = []
        source = f"import:{account.config.system_id}"
        header = request.query.get("header", "auto") != "no"
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cell = row[0].strip() if row else ""
            if not cell or (header and line == 1 and not any(ch.isdigit() for ch in cell)):
                continue  # blank line or header
            try:
                number = normalise_msisdn(cell)
            except InvalidNumberError as exc:
                invalid += 1
                if len(errors) < MAX_IMPORT_ERRORS:
                    errors.append(ImportLineError(line=line, reason=exc.reason))
                continue
            if self.gateway.set_stopped(scope, number, True, source):
                added += 1
            else:
                already += 1
        if not await self._durable():
            return error_response(503, "store_unavailable", "the import could not be stored", [("Retry-After", "5")])
        log.info("stoplist_import", account=account.config.system_id, scope=scope, added=added, invalid=invalid)
        body = ImportOut(scope=_scope_name(scope), added=added, already=already, invalid=invalid, errors=errors)
        return Response.json(body)

    async def _durable(self) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.gateway.store.after_commit(done.set_result)
        return await done


def _scope_name(scope: str) -> str:
    return "global" if scope == GLOBAL_SCOPE else scope
