"""Masking of personal data for logs (152-FZ): phone numbers and message text never appear in full above debug."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d")


def mask_phone(number: str) -> str:
    """Keep the country/operator prefix and the last two digits: ``79161234567`` → ``7916*****67``.

    Alphanumeric sender names (not personal data) are returned unchanged; short numbers are fully masked."""
    digits = sum(1 for _ in _DIGITS.finditer(number))
    if digits < max(5, len(number) // 2):
        return number
    if len(number) <= 7:
        return "*" * len(number)
    stars = max(5, len(number) - 6)
    return number[: len(number) - stars - 2] + "*" * stars + number[-2:]


def mask_text(text: str | bytes) -> str:
    """Message text is replaced by its length."""
    return f"<{len(text)} {'octets' if isinstance(text, bytes) else 'chars'}>"
