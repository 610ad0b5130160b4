"""Values exchanged between the HTTP server and the application: ``Request``, ``Response``, ``Handler``.

Both are plain ``__slots__`` classes (built once per request on the hot path; a frozen dataclass costs several
times more to construct). Treat them as immutable: the server never looks at a ``Request`` after handing it to the
application, and it reads a ``Response`` exactly once, when the handler returns it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

import msgspec

__all__ = ["Handler", "Request", "Response", "error_response"]

_json_encode = msgspec.json.Encoder().encode


class Request:
    """One parsed HTTP request with its whole body.

    - ``method``: upper-case token as sent (``"GET"``, ``"POST"`` …).
    - ``path``: the path without the query, percent-decoded (UTF-8); ``raw_path`` keeps the bytes as sent.
    - ``query_string``: the raw query (no ``?``), ``""`` if none; ``query`` parses it on first use.
    - ``headers``: ``dict`` keyed by **lower-case** name (latin-1 decoded); repeated headers are joined with ``", "``.
    - ``body``: the complete body (de-chunked), ``b""`` if none. Never larger than the server's ``max_body``.
    - ``client``: the peer ``(host, port)``, ``None`` if the transport did not say.
    - ``http_version``: ``"1.1"`` or ``"1.0"``.
    """

    __slots__ = ("_query", "body", "client", "headers", "http_version", "method", "path", "query_string", "raw_path")

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        client: tuple[str, int] | None = None,
        http_version: str = "1.1",
        raw_path: bytes = b"",
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers: dict[str, str] = {} if headers is None else headers
        self.body = body
        self.client = client
        self.http_version = http_version
        self.raw_path = raw_path or path.encode("utf-8")
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        """The query parameters (blank values kept; for a repeated name the last one wins)."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} body={len(self.body)}B>"


class Response:
    """What a handler returns. ``body`` is sent as is with a ``Content-Length``; ``headers`` are extra
    ``(name, value)`` pairs (do not set ``Content-Length``, ``Connection`` or ``Transfer-Encoding``: the server
    owns those). ``content_type=""`` sends no ``Content-Type``. A value containing CR or LF is refused (the
    request is answered 500) so user data can never split a response.
    """

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type

    @classmethod
    def json(cls, value: object, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
        """``value`` encoded with msgspec (structs, dicts, lists …) as ``application/json``."""
        return cls(status, _json_encode(value), headers)

    def __repr__(self) -> str:
        return f"<Response {self.status} body={len(self.body)}B>"


def error_response(status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """The project's JSON error shape: ``{"error": {"code": code, "message": message}}``."""
    return Response(status, _json_encode({"error": {"code": code, "message": message}}), headers)


Handler = Callable[[Request], Awaitable[Response]]
"""The application: one async callable per server. Routing is the application's job (see ``Router``)."""
