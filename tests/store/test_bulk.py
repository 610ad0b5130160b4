"""Multi-row statements give exactly the result of ``executemany`` row by row (order, duplicates, chunking)."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from smppgw.store.bulk import bulk_delete, bulk_insert, bulk_update, max_variables

SCHEMA = "CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b INTEGER)"
INSERT = "INSERT OR REPLACE INTO t (k, a, b) VALUES (?,?,?)"
UPDATE = "UPDATE t SET a=?, b=? WHERE k=?"
DELETE = "DELETE FROM t WHERE k=?"

keys = st.integers(0, 40)
inserts = st.lists(st.tuples(keys, st.text(max_size=3), st.integers(-5, 5)), max_size=600)
updates = st.lists(st.tuples(st.text(max_size=3), st.integers(-5, 5), keys), max_size=300)
deletes = st.lists(st.tuples(keys), max_size=100)


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute(SCHEMA)
    return db


@settings(max_examples=200, deadline=None)
@given(inserts, updates, deletes, st.sampled_from([3, 30, 32766]))
def test_bulk_equals_row_by_row(
    ins: list[tuple[int, str, int]], ups: list[tuple[str, int, int]], dels: list[tuple[int]], variables: int
) -> None:
    expected, actual = _db(), _db()
    for sql, rows in ((INSERT, ins), (UPDATE, ups), (DELETE, dels)):
        expected.executemany(sql, rows)
    bulk_insert("INSERT OR REPLACE INTO t (k, a, b) VALUES ", 3, max_variables=variables).run(actual, ins)
    bulk_update("t", ("a", "b"), "k", max_variables=variables).run(actual, ups)
    bulk_delete("t", "k", max_variables=variables).run(actual, dels)
    query = "SELECT k, a, b FROM t ORDER BY k"
    assert actual.execute(query).fetchall() == expected.execute(query).fetchall()


def test_chunks_are_powers_of_two_within_the_variable_limit() -> None:
    statement = bulk_insert("INSERT INTO t (k, a, b) VALUES ", 3, max_variables=100)
    assert statement.max_rows == 32  # 33 rows x 3 > 100
    assert max_variables(_db()) >= 999
