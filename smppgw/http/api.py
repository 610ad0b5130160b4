"""The HTTP API: submit, batch, status, health, readiness, metrics, OpenAPI.

Request and response bodies are msgspec Structs defined once here: they validate input, encode output and generate
the OpenAPI document. Every submit answers only after the message is durably committed (the same group commit as
SMPP). Errors carry a machine-readable code: 400 malformed JSON, 401/404 auth and ownership, 422 validation, 429
rate limit and 503 overload (both with Retry-After). Bad input never gets a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from smppgw.core.message import Message, State
from smppgw.obs.metrics import exposition
from smppgw.service.errors import SubmitRefusedError
from smppgw.service.gateway import Account, Gateway, Stored, TextSubmit
from smppgw.smpp.text import Encoding, choose_encoding

from .client import CallbackError, split_url
from .reports_api import ReportsApi, openapi_paths
from .router import Router
from .stoplist_api import ImportOut, StopListApi, StopStateOut
from .types import Request, Response, error_response

MAX_BATCH = 1000
BATCH_SLICE = 100
"""Batch items accepted per turn of the event loop (1,000 at once held the loop for ~50 ms)."""
_T = TypeVar("_T")

ClassName = Literal["otp", "transactional", "service", "marketing", "collection"]


class MessageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename={"sender": "from", "klass": "class"}):
    """A message to send. ``to``: E.164 or national Russian number; ``from``: sender name (≤ 11 chars) or number."""

    to: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    sender: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    klass: ClassName | None = None
    callback_url: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://")] | None = None
    client_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    validity: Annotated[int, msgspec.Meta(ge=1, le=7 * 86_400)] | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    send_at: datetime | None = None
    overdue_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] | None = None  # collection: sets the daily cap


class BatchIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    messages: Annotated[list[MessageIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The batch envelope; each message is validated on its own so one bad item rejects only itself."""

    messages: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class Accepted(msgspec.Struct, kw_only=True):
    id: str
    state: str
    segments: int
    encoding: str
    client_ref: str | None = None
    duplicate: bool = False


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    accepted: Accepted | None = None
    error: ErrorBody | None = None


class BatchOut(msgspec.Struct, kw_only=True):
    accepted: int
    rejected: int
    results: list[BatchItem]


class PartOut(msgspec.Struct, kw_only=True):
    part: int
    connector: str | None
    smsc_id: str | None
    submitted_at: datetime | None
    state: str | None
    receipt_done_date: str | None
    receipt_received_at: datetime | None


class MessageOut(msgspec.Struct, kw_only=True):
    """A message with its evidence: every transition's time."""

    id: str
    state: str
    status: int
    to: str
    sender: str = msgspec.field(name="from")
    klass: str = msgspec.field(name="class")
    segments: int
    client_ref: str | None
    accepted_at: datetime
    send_at: datetime | None
    expires_at: datetime
    done_at: datetime | None
    parts: list[PartOut]


_DECODE_ONE = msgspec.json.Decoder(MessageIn)
_DECODE_BATCH = msgspec.json.Decoder(_RawBatch)
MAX_SCHEDULE_AHEAD = 366 * 86_400.0
"""send_at may be at most a year ahead: further is a client error, and would overflow dates downstream."""

_HTTP_STATUS = {
    "invalid_number": 422,
    "no_route": 422,
    "invalid_sender": 422,
    "empty_text": 422,
    "text_too_long": 422,
    "invalid_validity": 422,
    "invalid_schedule": 422,
    "invalid_callback_url": 422,
    "stop_listed": 422,
    "cap_exceeded": 422,
    "rate_limited": 429,
    "overloaded": 503,
}


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class Api:
    """Binds the endpoints to one ``Gateway``."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        readiness: Callable[[], dict[str, Any]] | None = None,
        metrics_text: Callable[[], bytes] = exposition,
    ) -> None:
        self.gateway = gateway
        self._metrics_text = metrics_text  # with several workers: every worker's metrics, labelled by worker
        self._accounts_by_token: dict[str, Account] = {}
        for account in gateway.accounts.values():
            token = account.config.http_token
            if token:
                digest = token[7:].lower() if token.startswith("sha256:") else _sha256(token)
                self._accounts_by_token[digest] = account
        self._readiness = readiness
        self._known_tokens: dict[str, Account] = {}
        self.router = Router()
        self.router.add("POST", "/v1/messages", self._guard(self.submit))
        self.router.add("POST", "/v1/messages/batch", self._guard(self.submit_batch))
        self.router.add("GET", "/v1/messages/{id}", self._guard(self.get_message))
        self.router.add("GET", "/v1/reports", self._guard(ReportsApi.of(gateway).get))
        stoplist = StopListApi(gateway)
        self.router.add("POST", "/v1/stoplist", self._guard(stoplist.import_csv))
        self.router.add("PUT", "/v1/stoplist/{number}", self._guard(stoplist.put))
        self.router.add("DELETE", "/v1/stoplist/{number}", self._guard(stoplist.delete))
        self.router.add("GET", "/v1/stoplist/{number}", self._guard(stoplist.get))
        self.router.add("GET", "/healthz", self.healthz)
        self.router.add("GET", "/readyz", self.readyz)
        self.router.add("GET", "/metrics", self.metrics)
        self.router.add("GET", "/openapi.json", self.openapi)

    # ------------------------------------------------------------------ auth

    def _guard(
        self, handler: Callable[[Request, dict[str, str], Account], Awaitable[Response]]
    ) -> Callable[[Request, dict[str, str]], Awaitable[Response]]:
        async def guarded(request: Request, params: dict[str, str]) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return error_response(
                    401, "unauthorized", "a bearer token is required", [("WWW-Authenticate", "Bearer")]
                )
            token = token.strip()
            account = self._known_tokens.get(token)
            if account is None:
                account = self._accounts_by_token.get(_sha256(token))
                if account is not None and len(self._known_tokens) < 10_000:
                    self._known_tokens[token] = account  # valid tokens only: no hash per request
            if account is None:
                return error_response(401, "unauthorized", "unknown token", [("WWW-Authenticate", "Bearer")])
            return await handler(request, params, account)

        return guarded

    # ------------------------------------------------------------------ submit

    async def submit(self, request: Request, params: dict[str, str], account: Account) -> Response:
        body = _decode_body(_DECODE_ONE, request.body)
        if isinstance(body, Response):
            return body
        if body.client_ref is not None:
            existing = await self._existing(account, body.client_ref)
            if existing is not None:
                return Response.json(existing, 202)
        try:
            message = self.gateway.accept_text(account, _text_submit(body))
        except SubmitRefusedError as exc:
            self.gateway.reject(exc.code)
            return self._refused(exc)
        self.gateway.remember_client_ref(message)
        outcome: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self.gateway.persist(message, outcome.set_result)
        stored = await outcome
        if stored is False:
            return error_response(503, "store_unavailable", "the message could not be stored", [("Retry-After", "5")])
        if stored is not True:  # refused at commit: another worker took the key or the last cap slot first
            if stored.code == "duplicate" and body.client_ref is not None:
                existing = await self._existing(account, body.client_ref)
                if existing is not None:
                    return Response.json(existing, 202)
            return self._refused(stored)
        return Response.json(_accepted(message, self.gateway), 202)

    async def submit_batch(self, request: Request, params: dict[str, str], account: Account) -> Response:
        batch = _decode_body(_DECODE_BATCH, request.body)
        if isinstance(batch, Response):
            return batch
        items: list[MessageIn | ErrorBody] = []
        for raw in batch.messages:
            try:
                items.append(_DECODE_ONE.decode(raw))
            except msgspec.ValidationError as exc:
                items.append(ErrorBody(code="invalid_request", message=str(exc)))
        refs = [m.client_ref for m in items if isinstance(m, MessageIn) and m.client_ref is not None]
        stored = await self._stored_duplicates(account, refs)
        results: list[BatchItem] = []
        outcomes: list[tuple[BatchItem, Message, list[Stored]]] = []
        twins: list[tuple[BatchItem, Message]] = []  # answered with a message of this process not committed yet
        for index, item in enumerate(items):
            if index and index % BATCH_SLICE == 0:
                await asyncio.sleep(0)  # let the loop serve other requests and the connectors between slices
            if isinstance(item, ErrorBody):
                results.append(BatchItem(index=index, error=item))
            else:
                results.append(self._batch_item(index, item, account, stored, outcomes=outcomes, twins=twins))
        if outcomes or twins:
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.gateway.store.after_commit(done.set_result)  # fires after every message queued above
            await done
        for entry, message, outcome in outcomes:
            result = outcome[0] if outcome else False
            if result is True:
                entry.accepted = _accepted(message, self.gateway)
            elif result is False:
                entry.error = ErrorBody(code="store_unavailable", message="the message could not be stored")
            elif result.code == "duplicate" and message.client_ref is not None:
                existing = await self._existing(account, message.client_ref)
                if existing is not None:
                    entry.accepted = existing
                else:
                    entry.error = ErrorBody(code=result.code, message=str(result))
            else:
                entry.error = ErrorBody(code=result.code, message=str(result))
        for entry, known in twins:
            if not self._stored(known):
                assert known.client_ref is not None
                entry.accepted = await self._from_store(account, known.client_ref)
                if entry.accepted is None:  # its twin got no message: the same answer as it
                    refusal = self.gateway.refused_at_commit.get(known.id)
                    entry.error = (
                        ErrorBody(code="store_unavailable", message="the message could not be stored")
                        if refusal is None
                        else ErrorBody(code=refusal.code, message=str(refusal))
                    )
        accepted = sum(1 for r in results if r.accepted is not None)
        return Response.json(BatchOut(accepted=accepted, rejected=len(results) - accepted, results=results), 200)

    def _batch_item(
        self,
        index: int,
        item: MessageIn,
        account: Account,
        stored: dict[str, Accepted],
        *,
        outcomes: list[tuple[BatchItem, Message, list[Stored]]],
        twins: list[tuple[BatchItem, Message]],
    ) -> BatchItem:
        entry = BatchItem(index=index)
        if item.client_ref is not None:
            known = self.gateway.known_client_ref(account.config.system_id, item.client_ref)
            if known is not None:
                entry.accepted = _accepted(known, self.gateway, duplicate=True)
                if not self._stored(known):
                    twins.append((entry, known))  # checked again once the commit has decided
                return entry
            if item.client_ref in stored:
                entry.accepted = stored[item.client_ref]
                return entry
        try:
            message = self.gateway.accept_text(account, _text_submit(item))
        except SubmitRefusedError as exc:
            self.gateway.reject(exc.code)
            entry.error = ErrorBody(code=exc.code, message=str(exc))
            return entry
        self.gateway.remember_client_ref(message)
        result: list[Stored] = []
        self.gateway.persist(message, result.append)
        outcomes.append((entry, message, result))
        return entry

    async def _stored_duplicates(self, account: Account, refs: list[str]) -> dict[str, Accepted]:
        """client_ref → the answer for messages stored before (e.g. before a restart) under these keys."""
        if not refs:
            return {}
        found = await self.gateway.store.find_by_client_refs(account.config.system_id, refs)
        answers: dict[str, Accepted] = {}
        for ref, message_id in found.items():
            view = await self.gateway.store.find_message(message_id)
            if view is not None:
                answers[ref] = _accepted(view.message, self.gateway, duplicate=True)
        return answers

    async def _existing(self, account: Account, client_ref: str) -> Accepted | None:
        """The message already accepted under this idempotency key (waiting for its commit if need be)."""
        name = account.config.system_id
        known = self.gateway.known_client_ref(name, client_ref)
        if known is None:
            message_id = await self.gateway.store.find_by_client_ref(name, client_ref)
            known = self.gateway.known_client_ref(name, client_ref)  # a twin may have been accepted meanwhile
            if known is None and message_id is not None:
                view = await self.gateway.store.find_message(message_id)
                if view is not None:
                    return _accepted(view.message, self.gateway, duplicate=True)
        if known is None:
            return None
        if not self._stored(known):  # not committed yet: wait for it
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.gateway.store.after_commit(done.set_result)
            await done
            if not self._stored(known):  # refused at commit (another worker had the key) or the store failed
                return await self._from_store(account, client_ref)
        return _accepted(known, self.gateway, duplicate=True)

    def _stored(self, message: Message) -> bool:
        """Committed: live, or already final (a message refused at commit is neither)."""
        return message.id in self.gateway.live or message.state.is_final

    async def _from_store(self, account: Account, client_ref: str) -> Accepted | None:
        message_id = await self.gateway.store.find_by_client_ref(account.config.system_id, client_ref)
        view = None if message_id is None else await self.gateway.store.find_message(message_id)
        return None if view is None else _accepted(view.message, self.gateway, duplicate=True)

    def _refused(self, exc: SubmitRefusedError) -> Response:
        status = _HTTP_STATUS.get(exc.code, 422)
        headers: list[tuple[str, str]] = []
        if exc.retry_after is not None or status in (429, 503):
            headers.append(("Retry-After", str(max(1, math.ceil(exc.retry_after or 1.0)))))
        return error_response(status, exc.code, str(exc), headers)

    # ------------------------------------------------------------------ status

    async def get_message(self, request: Request, params: dict[str, str], account: Account) -> Response:
        message_id = params["id"]
        view = await self.gateway.store.find_message(message_id)
        if view is None or view.message.account != account.config.system_id:
            return error_response(404, "not_found", "no such message for this account")
        live = self.gateway.live.get(message_id)
        message = live if live is not None else view.message
        receipts = {r.part: r for r in view.receipts if r.part is not None}
        segments = {s.part: s for s in view.segments}
        parts = []
        for part in range(message.segments):
            segment = segments.get(part)
            receipt = receipts.get(part)
            parts.append(
                PartOut(
                    part=part + 1,
                    connector=None if segment is None else segment.connector,
                    smsc_id=None if segment is None else segment.smsc_id,
                    submitted_at=None if segment is None else _ts(segment.submitted_at),
                    state=None if receipt is None else receipt.state.lower(),
                    receipt_done_date=None if receipt is None else receipt.done_date,
                    receipt_received_at=None if receipt is None else _ts(receipt.received_at),
                )
            )
        out = MessageOut(
            id=message.id,
            state=message.state.value,
            status=message.status,
            to=message.dest,
            sender=message.source_addr,
            klass=message.traffic_class.value,
            segments=message.segments,
            client_ref=message.client_ref,
            accepted_at=datetime.fromtimestamp(message.created_at, UTC),
            send_at=_ts(message.send_at),
            expires_at=datetime.fromtimestamp(message.expires_at, UTC),
            done_at=_ts(message.done_at),
            parts=parts,
        )
        return Response.json(out)

    # ------------------------------------------------------------------ operations

    async def healthz(self, request: Request, params: dict[str, str]) -> Response:
        return Response.json({"status": "ok"})

    async def readyz(self, request: Request, params: dict[str, str]) -> Response:
        problems: list[str] = []
        if not self.gateway.store.healthy:
            problems.append("store is not writable")
        problems += [
            f"connector {c.name}: no bind up" for c in self.gateway.connectors.values() if not c.link.has_bound
        ]
        body = {"ready": not problems, "problems": problems}
        return Response.json(body, 200 if not problems else 503)

    async def metrics(self, request: Request, params: dict[str, str]) -> Response:
        return Response(200, self._metrics_text(), content_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request, params: dict[str, str]) -> Response:
        return Response(200, OPENAPI_JSON)


def _decode_body(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T | Response:
    """The typed body, or the error response: 400 for malformed JSON, 422 for JSON that breaks the schema."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        return error_response(422, "invalid_request", str(exc))
    except msgspec.DecodeError as exc:
        return error_response(400, "invalid_json", str(exc))


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _text_submit(body: MessageIn) -> TextSubmit:
    """The service's view of a validated body; send_at and callback_url checks the schema cannot express."""
    send_at: float | None = None
    if body.send_at is not None:
        if body.send_at.tzinfo is None:
            raise SubmitRefusedError(
                0x61, "invalid_schedule", "send_at needs a time zone (e.g. 2026-11-22T09:00:00+03:00)"
            )
        try:
            send_at = body.send_at.timestamp()
        except (OverflowError, ValueError, OSError) as exc:
            raise SubmitRefusedError(0x61, "invalid_schedule", f"send_at: {exc}") from None
        if send_at > time.time() + MAX_SCHEDULE_AHEAD:
            raise SubmitRefusedError(0x61, "invalid_schedule", "send_at may be at most a year ahead")
    if body.callback_url is not None:
        try:
            split_url(body.callback_url)
        except CallbackError as exc:
            raise SubmitRefusedError(0x45, "invalid_callback_url", str(exc)) from None
    return TextSubmit(
        to=body.to,
        sender=body.sender,
        text=body.text,
        traffic_class=body.klass,
        priority=body.priority,
        validity=float(body.validity) if body.validity is not None else None,
        send_at=send_at,
        client_ref=body.client_ref,
        callback_url=body.callback_url,
        overdue_days=body.overdue_days,
    )


def _accepted(message: Message, gateway: Gateway, *, duplicate: bool = False) -> Accepted:
    encoding = ""
    if message.text is not None:
        connector = gateway.connectors.get(message.connector)
        alphabet = connector.default_alphabet if connector is not None else Encoding.GSM7
        encoding = choose_encoding(message.text, alphabet).value
    state = message.state.value if message.state is not State.ACCEPTED else "accepted"
    return Accepted(
        id=message.id,
        state=state,
        segments=message.segments,
        encoding=encoding,
        client_ref=message.client_ref,
        duplicate=duplicate,
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, generated from the msgspec types above."""
    (message_in, batch_in, accepted, batch_out, message_out, error, stop_state, import_out), components = (
        msgspec.json.schema_components(
            [MessageIn, BatchIn, Accepted, BatchOut, MessageOut, ErrorBody, StopStateOut, ImportOut],
            ref_template="#/components/schemas/{name}",
        )
    )
    error_wrapper = {"type": "object", "properties": {"error": error}, "required": ["error"]}
    report_schemas, report_paths = openapi_paths(error_wrapper)

    def errors(*codes: int) -> dict[str, Any]:
        return {
            str(code): {"description": _REASONS[code], "content": {"application/json": {"schema": error_wrapper}}}
            for code in codes
        }

    def ok(code: int, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {str(code): {"description": description, "content": {"application/json": {"schema": schema}}}}

    security: list[dict[str, list[str]]] = [{"bearer": []}]
    number = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
    scope = {
        "name": "scope",
        "in": "query",
        "required": False,
        "description": "'account' (default: the account's brand list) or 'global' (admin accounts only)",
        "schema": {"type": "string", "enum": ["account", "global"]},
    }
    stop_change = {
        "type": "object",
        "properties": {
            "number": {"type": "string"},
            "scope": {"type": "string"},
            "stopped": {"type": "boolean"},
            "changed": {"type": "boolean"},
        },
        "required": ["number", "scope", "stopped", "changed"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "smppgw HTTP API", "version": "1"},
        "components": {
            "schemas": {**components, **report_schemas},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/messages": {
                "post": {
                    "summary": "Submit one message; answered once it is durably stored",
                    "security": security,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": message_in}}},
                    "responses": {**ok(202, accepted, "accepted"), **errors(400, 401, 422, 429, 503)},
                }
            },
            "/v1/messages/batch": {
                "post": {
                    "summary": f"Submit up to {MAX_BATCH} messages, each accepted or rejected individually",
                    "security": security,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": batch_in}}},
                    "responses": {**ok(200, batch_out, "per-message results"), **errors(400, 401, 422)},
                }
            },
            "/v1/messages/{id}": {
                "get": {
                    "summary": "A message's state and the evidence of every transition",
                    "security": security,
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {**ok(200, message_out, "the message"), **errors(401, 404)},
                }
            },
            "/v1/stoplist": {
                "post": {
                    "summary": "Import numbers into the stop list: CSV, one number per line (first column)",
                    "security": security,
                    "parameters": [
                        scope,
                        {
                            "name": "header",
                            "in": "query",
                            "required": False,
                            "description": "'auto' (default): a first line without digits is a header; 'no'",
                            "schema": {"type": "string", "enum": ["auto", "no"]},
                        },
                    ],
                    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
                    "responses": {**ok(200, import_out, "counts and the first invalid lines"), **errors(400, 401, 403)},
                }
            },
            "/v1/stoplist/{number}": {
                "put": {
                    "summary": "Stop a number (opt-out): marketing to it is refused",
                    "security": security,
                    "parameters": [number, scope],
                    "responses": {**ok(200, stop_change, "stopped"), **errors(401, 403, 422, 503)},
                },
                "delete": {
                    "summary": "Lift the stop",
                    "security": security,
                    "parameters": [number, scope],
                    "responses": {**ok(200, stop_change, "released"), **errors(401, 403, 404, 422, 503)},
                },
                "get": {
                    "summary": "Whether a number is stopped, with the history of changes",
                    "security": security,
                    "parameters": [number, scope],
                    "responses": {**ok(200, stop_state, "the number's state"), **errors(401, 403, 422)},
                },
            },
            **report_paths,
            "/healthz": {"get": {"summary": "Process alive", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "Store writable and a bind up on every connector",
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready, with why"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus exposition", "responses": {"200": {"description": "metrics"}}}},
        },
    }


_REASONS = {
    400: "malformed JSON",
    401: "missing or unknown bearer token",
    403: "the account may not do this (admin only)",
    404: "no such message for this account",
    422: "invalid request (unknown field, bad number, empty or too long text, no route)",
    429: "account rate limit exceeded (see Retry-After)",
    503: "overloaded or storage unavailable (see Retry-After)",
}

OPENAPI_JSON = msgspec.json.encode(openapi_document())
