"""Errors of the gateway service, translated at its boundary into SMPP statuses and HTTP codes."""

from __future__ import annotations


class SubmitRefusedError(Exception):
    """A submit refused with an SMPP ``status`` and a machine-readable ``code`` (used by the HTTP API)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
