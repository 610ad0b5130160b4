"""Many rows per SQL statement, so the writer thread crosses the GIL once per statement instead of once per row.

Why: ``executemany`` releases and re-takes the GIL around every row's ``sqlite3_step``. While the event loop thread is
busy, each re-take waits for it to let go (up to the 5 ms switch interval), so under load the writer managed a few
thousand rows/s (measured: 1.5 µs per row with the loop idle, over 300 µs with it busy). A multi-row ``INSERT``,
an ``UPDATE ... FROM (VALUES ...)`` and a ``DELETE ... IN (...)`` write a whole chunk in one step.

Rows go in chunks of ``max_rows`` and one statement of the remainder's exact size: every statement is a GIL round trip
for the writer thread, which costs up to a switch interval each while the loop is busy, so a group of 47 rows is one
statement, not five (32 + 8 + 4 + 2 + 1). The connection's statement cache keeps the texts prepared.

Updates and deletes keep the last row per key: within one statement SQLite would apply an arbitrary one of several
rows for the same key, whereas ``executemany`` applies them in order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

MAX_ROWS = 256
"""Rows per statement at most (also bounded by SQLite's variable limit)."""

_MAX_TEXTS = 64
"""Statement texts kept per statement kind (the connection's statement cache keeps them prepared)."""

Row = tuple[Any, ...]


class BulkStatement:
    """How one queued statement is written for many rows: ``run(db, rows)``."""

    __slots__ = ("_build", "_dedupe_key", "_texts", "max_rows", "width")

    def __init__(self, width: int, build: Callable[[int], str], *, dedupe_key: int | None, max_variables: int) -> None:
        self.width = width
        self._build = build
        self._dedupe_key = dedupe_key
        self._texts: dict[int, str] = {}
        limit = max(1, max_variables // max(width, 1))
        size = 1
        while size * 2 <= min(MAX_ROWS, limit):
            size *= 2
        self.max_rows = size

    def text(self, rows: int) -> str:
        sql = self._texts.get(rows)
        if sql is None:
            if len(self._texts) >= _MAX_TEXTS:  # group sizes vary: keep the cache bounded
                self._texts.clear()
            sql = self._texts[rows] = self._build(rows)
        return sql

    def run(self, db: sqlite3.Connection, rows: Sequence[Row]) -> None:
        if self._dedupe_key is not None and len(rows) > 1:
            key = self._dedupe_key
            rows = list({row[key]: row for row in rows}.values())
        start, total, size = 0, len(rows), self.max_rows
        while start < total:  # full chunks, then the rest in one statement of its exact size
            chunk = rows[start : start + size]
            db.execute(self.text(len(chunk)), [value for row in chunk for value in row])
            start += size


def _tuples(width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return ",".join([one] * rows)


def bulk_insert(head: str, width: int, *, max_variables: int) -> BulkStatement:
    """``head`` is everything before the rows: ``"INSERT [OR ...] INTO t (a, b) VALUES "``. Rows keep their order
    (for ``INSERT OR REPLACE`` the last of several rows for one key wins, as with ``executemany``)."""
    return BulkStatement(width, lambda n: head + _tuples(width, n), dedupe_key=None, max_variables=max_variables)


def bulk_update(table: str, columns: Sequence[str], key: str, *, max_variables: int) -> BulkStatement:
    """Rows are ``(*new values of columns, key value)`` — the parameter order of
    ``UPDATE table SET c1=?, c2=? WHERE key=?``."""
    width = len(columns) + 1
    sets = ", ".join(f"{column} = v.column{i}" for i, column in enumerate(columns, start=1))

    def build(n: int) -> str:
        return f"UPDATE {table} SET {sets} FROM (VALUES {_tuples(width, n)}) AS v WHERE {table}.{key} = v.column{width}"

    return BulkStatement(width, build, dedupe_key=width - 1, max_variables=max_variables)


def bulk_delete(table: str, key: str, *, max_variables: int) -> BulkStatement:
    """Rows are ``(key value,)``."""

    def build(n: int) -> str:
        return f"DELETE FROM {table} WHERE {key} IN ({','.join('?' * n)})"

    return BulkStatement(1, build, dedupe_key=0, max_variables=max_variables)


def supports_bulk_update() -> bool:
    """``UPDATE ... FROM`` needs SQLite 3.33 (2020)."""
    return sqlite3.sqlite_version_info >= (3, 33, 0)


def max_variables(db: sqlite3.Connection) -> int:
    """The connection's bound-parameter limit (32766 since SQLite 3.32, 999 before)."""
    try:
        return int(db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except AttributeError:  # Python < 3.11
        return 999
