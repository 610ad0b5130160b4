"""Errors of the gateway service, translated at its boundary into SMPP statuses and HTTP codes."""

from __future__ import annotations


class SubmitRefusedError(Exception):
    """A submit refused with an SMPP ``status`` and a machine-readable ``code`` (used by the HTTP API)."""

    def __init__(self, status: int, code: str, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds until a retry can succeed (rate limit, overload)
