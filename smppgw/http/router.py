"""A tiny router: exact paths and ``{param}`` segments, answering 404 and 405 itself.

    router = Router()
    router.add("POST", "/v1/messages", submit)            # async def submit(request, params) -> Response
    router.add("GET", "/v1/messages/{id}", get_message)   # params == {"id": "..."}
    server = HttpServer(router)                           # a Router is a Handler

Exact paths are one dict lookup; patterns are tried in the order they were added, segment by segment (a
``{param}`` matches one non-empty segment, never a ``/``). A ``HEAD`` request falls back to the ``GET`` route
when no ``HEAD`` route exists (the server drops the body). A path that matches with another method gets 405 with
an ``Allow`` header; no match gets 404. Both answer with the JSON error shape of ``error_response``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .types import Request, Response, error_response

__all__ = ["RouteHandler", "Router"]

RouteHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]
_NO_PARAMS: dict[str, str] = {}


class _Pattern:
    __slots__ = ("methods", "segments")

    def __init__(self, segments: tuple[str, ...]) -> None:
        self.segments = segments  # literal segment, or "{name}" for a parameter
        self.methods: dict[str, RouteHandler] = {}

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(self.segments, parts, strict=True):
            if seg[:1] == "{":
                if not part:
                    return None
                params[seg[1:-1]] = part
            elif seg != part:
                return None
        return params


class Router:
    """Maps ``(method, path)`` to a ``RouteHandler``; call it as the server's ``Handler``."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, RouteHandler]] = {}
        self._patterns: list[_Pattern] = []

    def add(self, method: str, path: str, handler: RouteHandler) -> None:
        """Register ``handler`` for ``method`` (upper-case) on ``path`` (``/a/{name}/b``); duplicates raise."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        method = method.upper()
        segments = tuple(path.split("/"))
        if any(seg[:1] == "{" for seg in segments):
            for seg in segments:
                if (seg[:1] == "{") != (seg[-1:] == "}") or seg == "{}":
                    raise ValueError(f"bad parameter segment {seg!r} in {path!r}")
            pattern = next((p for p in self._patterns if p.segments == segments), None)
            if pattern is None:
                pattern = _Pattern(segments)
                self._patterns.append(pattern)
            table = pattern.methods
        else:
            table = self._exact.setdefault(path, {})
        if method in table:
            raise ValueError(f"route {method} {path} already registered")
        table[method] = handler

    async def __call__(self, request: Request) -> Response:
        method = request.method
        methods = self._exact.get(request.path)
        if methods is not None:
            handler = methods.get(method)
            if handler is None and method == "HEAD":
                handler = methods.get("GET")
            if handler is not None:
                return await handler(request, _NO_PARAMS)
            return self._not_allowed(request, set(methods))
        allowed: set[str] = set()
        parts = request.path.split("/")
        for pattern in self._patterns:
            params = pattern.match(parts)
            if params is None:
                continue
            handler = pattern.methods.get(method)
            if handler is None and method == "HEAD":
                handler = pattern.methods.get("GET")
            if handler is not None:
                return await handler(request, params)
            allowed.update(pattern.methods)
        if allowed:
            return self._not_allowed(request, allowed)
        return error_response(404, "not_found", f"no route for {request.path}")

    @staticmethod
    def _not_allowed(request: Request, allowed: set[str]) -> Response:
        if "GET" in allowed:
            allowed.add("HEAD")
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} not allowed on {request.path}",
            [("Allow", ", ".join(sorted(allowed)))],
        )
