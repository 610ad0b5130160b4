"""``GET /v1/reports``: an account's traffic per day, class or operator, as JSON or CSV.

Query: ``from``, ``to`` (ISO 8601 dates or date-times; without an offset they are local to ``tz``, so a bare date is
local midnight; ``to`` exclusive; at most 366 days apart), ``group_by`` (``day`` | ``class`` | ``operator``), ``tz``
(IANA zone, default Europe/Moscow), ``account`` (the caller or one of its sub-accounts; any account for an admin;
omitted: the caller and all its sub-accounts, or every account for an admin), ``format`` (``json`` | ``csv``; omitted:
``Accept: text/csv`` selects CSV). Unknown parameters are refused, as unknown JSON fields are elsewhere.

Errors: 422 with a machine code from ``PARAM_ERRORS``; 404 ``not_found`` for an account the caller may not see
(whether it exists is not revealed); 503 ``reports_busy`` when ``MAX_RUNNING`` reports already run, since reports
share the store's read connection with status lookups (each store read is one chunk, so they interleave).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from smppgw.config import AccountConfig
from smppgw.service.gateway import Account, Gateway
from smppgw.service.reports import (
    GROUP_BYS,
    GroupBy,
    Report,
    ReportQuery,
    ScopeError,
    render_csv,
    report_scope,
    run_report,
)
from smppgw.store.base import Store

from .types import Request, Response, error_response

__all__ = ["MAX_RUNNING", "PARAM_ERRORS", "ParamError", "ReportParams", "ReportsApi", "openapi_paths", "parse_params"]

DEFAULT_TZ: Final = "Europe/Moscow"
MAX_RANGE_DAYS: Final = 366
MAX_RUNNING: Final = 2
PARAMETERS: Final = ("account", "from", "to", "group_by", "tz", "format")
_REQUIRED: Final = ("from", "to", "group_by")
_ZONE_KEY: Final = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_EARLIEST, _LATEST = 0.0, 253_370_764_800.0  # 1970-01-01 and 9999-01-01 UTC: every later step stays in range
_UNSAFE_FILENAME: Final = re.compile(r"[^A-Za-z0-9._-]")

PARAM_ERRORS: Final[dict[str, str]] = {
    "missing_parameter": "from, to and group_by are required",
    "unknown_parameter": f"only {', '.join(PARAMETERS)} are accepted",
    "invalid_date": "from / to: not an ISO 8601 date or date-time, or outside 1970-9998",
    "invalid_range": "to must be later than from",
    "range_too_long": f"from and to may be at most {MAX_RANGE_DAYS} days apart",
    "unknown_timezone": "tz: not an IANA time zone name",
    "invalid_group_by": f"group_by: one of {', '.join(GROUP_BYS)}",
    "invalid_format": "format: json or csv",
}
"""422 codes and what each means."""


class ParamError(ValueError):
    """A query parameter is missing or invalid; ``code`` is a key of ``PARAM_ERRORS``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ReportParams(msgspec.Struct, frozen=True, kw_only=True):
    """The validated query string."""

    account: str | None
    since: float
    until: float
    group_by: GroupBy
    tz: str
    csv: bool


def parse_params(query: Mapping[str, str], accept: str = "") -> ReportParams:
    """Validate the query string (``Accept`` chooses the format when ``format`` is absent); ``ParamError`` if bad."""
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise ParamError(
            "unknown_parameter", f"unknown parameter {unknown[0][:40]!r}; {PARAM_ERRORS['unknown_parameter']}"
        )
    missing = [name for name in _REQUIRED if not query.get(name)]
    if missing:
        raise ParamError("missing_parameter", f"missing: {', '.join(missing)}")
    tz = query.get("tz") or DEFAULT_TZ
    zone = _zone(tz)
    since, until = _instant("from", query["from"], zone), _instant("to", query["to"], zone)
    if until <= since:
        raise ParamError("invalid_range", PARAM_ERRORS["invalid_range"])
    if until - since > MAX_RANGE_DAYS * 86_400.0:
        raise ParamError("range_too_long", PARAM_ERRORS["range_too_long"])
    group_by = query["group_by"]
    if group_by not in GROUP_BYS:
        raise ParamError("invalid_group_by", PARAM_ERRORS["invalid_group_by"])
    return ReportParams(
        account=query.get("account") or None,
        since=since,
        until=until,
        group_by=group_by,
        tz=tz,
        csv=_wants_csv(query.get("format") or None, accept),
    )


def _zone(name: str) -> ZoneInfo:
    if len(name) <= 64 and _ZONE_KEY.fullmatch(name):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ParamError("unknown_timezone", f"{PARAM_ERRORS['unknown_timezone']} (e.g. Europe/Moscow, Asia/Omsk)")


def _instant(name: str, text: str, zone: ZoneInfo) -> float:
    """Epoch seconds of an ISO 8601 date or date-time; without an offset it is local to ``zone``."""
    try:
        moment = _fromisoformat(text.strip())
        seconds = (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).timestamp()
    except (ValueError, OverflowError, OSError):
        seconds = -1.0
    if not _EARLIEST <= seconds < _LATEST:
        raise ParamError("invalid_date", f"{name}: expected e.g. 2025-03-01 or 2025-03-01T09:00:00+03:00, 1970-9998")
    return seconds


def _fromisoformat(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        if " " not in text:
            raise
        head, _, offset = text.rpartition(" ")  # an unescaped "+03:00" in a query string arrives as " 03:00"
        return datetime.fromisoformat(f"{head}+{offset}")


def _wants_csv(fmt: str | None, accept: str) -> bool:
    """``format`` wins; else CSV when ``Accept`` ranks text/csv above application/json (wildcards mean JSON)."""
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise ParamError("invalid_format", PARAM_ERRORS["invalid_format"])
        return fmt == "csv"
    weights = _accept_weights(accept)
    return weights.get("text/csv", 0.0) > weights.get("application/json", 0.0)


def _accept_weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    return weights


class ReportsApi:
    """The handler, bound to a store and the configured accounts' parent links."""

    def __init__(self, store: Store, accounts: Mapping[str, AccountConfig]) -> None:
        self.store = store
        self._parents = {name: config.parent for name, config in accounts.items()}
        self._running = 0

    @classmethod
    def of(cls, gateway: Gateway) -> ReportsApi:
        return cls(gateway.store, {name: account.config for name, account in gateway.accounts.items()})

    async def get(self, request: Request, params: dict[str, str], account: Account) -> Response:
        caller = account.config
        try:
            wanted = parse_params(request.query, request.headers.get("accept", ""))
            scope = report_scope(self._parents, caller.system_id, admin=caller.admin, requested=wanted.account)
        except ParamError as exc:
            return error_response(422, exc.code, str(exc))
        except ScopeError:
            return error_response(404, "not_found", "no such account")
        if self._running >= MAX_RUNNING:
            return error_response(
                503, "reports_busy", f"{MAX_RUNNING} reports are running; retry later", [("Retry-After", "5")]
            )
        query = ReportQuery(
            accounts=scope, since=wanted.since, until=wanted.until, group_by=wanted.group_by, tz=wanted.tz
        )
        self._running += 1
        try:
            report = await run_report(self.store, query)
        finally:
            self._running -= 1
        if not wanted.csv:
            return Response.json(report, headers=[("Vary", "Accept")])
        label = wanted.account or (caller.system_id if scope is not None else "all")
        return _csv_response(report, label)


def _csv_response(report: Report, label: str) -> Response:
    name = f"report-{label}-{report.group_by}-{report.since:%Y%m%d}-{report.until:%Y%m%d}.csv"
    headers = [
        ("Content-Disposition", f'attachment; filename="{_UNSAFE_FILENAME.sub("_", name)}"'),
        ("Vary", "Accept"),
    ]
    return Response(200, render_csv(report).encode("utf-8"), headers, content_type="text/csv; charset=utf-8")


def openapi_paths(error_schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(component schemas, path items) of this endpoint, for ``openapi_document``."""
    (report,), schemas = msgspec.json.schema_components([Report], ref_template="#/components/schemas/{name}")

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": error_schema}}}

    def param(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}

    instant = "ISO 8601 date or date-time; without an offset, local to tz (a date is local midnight)"
    parameters = [
        param("from", {"type": "string"}, f"{instant}; inclusive", required=True),
        param(
            "to", {"type": "string"}, f"{instant}; exclusive, at most {MAX_RANGE_DAYS} days after from", required=True
        ),
        param("group_by", {"enum": list(GROUP_BYS)}, "day (creation date in tz), class or operator", required=True),
        param("tz", {"type": "string", "default": DEFAULT_TZ}, "IANA time zone"),
        param("account", {"type": "string"}, "the caller or a sub-account (any for an admin); omitted: all visible"),
        param("format", {"enum": ["json", "csv"]}, "omitted: Accept: text/csv selects CSV, else JSON"),
    ]
    ok = {
        "description": "one line per group with traffic, plus totals (CSV: a header row and a final total row)",
        "content": {"application/json": {"schema": report}, "text/csv": {"schema": {"type": "string"}}},
    }
    codes = ", ".join(PARAM_ERRORS)
    operation = {
        "summary": "Traffic report: counts, delivery rate and receipt latency per day, class or operator",
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": {
            "200": ok,
            "401": error("missing or unknown bearer token"),
            "404": error("no such account visible to the caller (existence is not revealed)"),
            "422": error(f"invalid query; error.code is one of: {codes}"),
            "503": error("too many reports running (see Retry-After)"),
        },
    }
    return schemas, {"/v1/reports": {"get": operation}}
