"""Structured logging (structlog): JSON lines in production, console in a terminal; personal data masked.

Event keys named in ``PHONE_KEYS`` and ``TEXT_KEYS`` are masked at every level above debug, so a log line can carry
``destination_addr=...`` without leaking it. Per-message events are logged at debug only (hot path rule)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from .masking import mask_phone, mask_text

PHONE_KEYS = frozenset({"destination_addr", "source_addr", "to", "msisdn", "phone", "number", "recipient"})
TEXT_KEYS = frozenset({"text", "short_message", "message_payload", "body"})


def mask_personal_data(_: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers and texts unless the event is logged at debug."""
    if method_name == "debug":
        return event_dict
    for key in PHONE_KEYS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = mask_phone(value)
    for key in TEXT_KEYS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str | bytes):
            event_dict[key] = mask_text(value)
    return event_dict


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog (and the stdlib root logger it renders through). ``json=None``: JSON unless a TTY."""
    as_json = not sys.stderr.isatty() if json is None else json
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            mask_personal_data,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A lazy structlog logger carrying ``component=name``; module-level loggers created before
    ``configure_logging`` still follow the configuration (the proxy binds on first use)."""
    return structlog.get_logger(component=name)
