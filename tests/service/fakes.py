"""Fakes shared by the service suites."""

from __future__ import annotations

from typing import Any


class FreeLink:
    """Stands in for a connector's ``ClientLink``: one always-bound connection whose window reports ``free`` slots.
    Nothing is really sent: ``pick()`` finds no connection, so a part that reaches it is queued for a retry."""

    def __init__(self, free: int = 10) -> None:
        window = type("Window", (), {"free_slots": free})()
        session = type("Session", (), {"window": window})()
        self.connections = [type("Conn", (), {"has_free_slot": True, "session": session})()]
        self.has_bound = True

    def pick(self) -> None:
        return None


class Clock:
    """An injected wall clock: tests move ``now``."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class RecordingConn:
    """Stands in for an SMPP connection that only answers: the responses sent, in order."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_response(self, pdu: Any) -> None:
        self.sent.append(pdu)
