"""The stop list (opt-outs): numbers that must not get a brand's marketing, per scope (an account or brand) and
global. Held in memory as integers (about 60 bytes per number in a set); the store keeps it durable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

GLOBAL_SCOPE = "*"
"""The scope every account honours."""


class StopList:
    """Scope → set of stopped numbers (international digits as int)."""

    __slots__ = ("_scopes",)

    def __init__(self) -> None:
        self._scopes: dict[str, set[int]] = {}

    def add(self, scope: str, msisdn: str) -> bool:
        """Stop ``msisdn`` in ``scope``; False if it already was."""
        numbers = self._scopes.setdefault(scope, set())
        value = int(msisdn)
        if value in numbers:
            return False
        numbers.add(value)
        return True

    def remove(self, scope: str, msisdn: str) -> bool:
        """Lift the stop; False if it was not there."""
        numbers = self._scopes.get(scope)
        if numbers is None or int(msisdn) not in numbers:
            return False
        numbers.discard(int(msisdn))
        return True

    def contains(self, scope: str, msisdn: str) -> bool:
        numbers = self._scopes.get(scope)
        return numbers is not None and int(msisdn) in numbers

    def stopped(self, scope: str, msisdn: str) -> str | None:
        """The scope that stops ``msisdn`` for an account using ``scope`` (its own first, then global), or None."""
        value = int(msisdn)
        for candidate in (scope, GLOBAL_SCOPE):
            numbers = self._scopes.get(candidate)
            if numbers is not None and value in numbers:
                return candidate
        return None

    def load(self, rows: Iterable[tuple[str, str]]) -> None:
        for scope, msisdn in rows:
            self.add(scope, msisdn)

    def scopes(self) -> Iterator[tuple[str, int]]:
        """(scope, count) for every scope."""
        return ((scope, len(numbers)) for scope, numbers in self._scopes.items())

    def __len__(self) -> int:
        return sum(len(numbers) for numbers in self._scopes.values())
