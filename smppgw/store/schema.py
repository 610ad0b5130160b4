"""Schema migrations: an ordered list of scripts; ``PRAGMA user_version`` records how many have run."""

from __future__ import annotations

import sqlite3

_FINAL = "('delivered','undeliverable','expired','rejected','deleted','unknown','failed')"

MIGRATIONS: tuple[str, ...] = (
    # 1: messages, their segments (one row per part sent, with the SMSC id) and every receipt received.
    f"""
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        origin TEXT NOT NULL,
        source_addr TEXT NOT NULL,
        source_ton INTEGER NOT NULL,
        source_npi INTEGER NOT NULL,
        dest TEXT NOT NULL,
        traffic_class TEXT NOT NULL,
        priority INTEGER NOT NULL,
        registered_delivery INTEGER NOT NULL,
        text TEXT,
        payload BLOB,
        data_coding INTEGER NOT NULL,
        esm_class INTEGER NOT NULL,
        tlvs BLOB,
        segments INTEGER NOT NULL,
        connector TEXT NOT NULL,
        operator TEXT NOT NULL,
        created_at REAL NOT NULL,
        send_at REAL,
        expires_at REAL NOT NULL,
        client_ref TEXT,
        callback_url TEXT,
        state TEXT NOT NULL,
        status INTEGER NOT NULL DEFAULT 0,
        updated_at REAL,
        done_at REAL,
        receipt_due INTEGER NOT NULL DEFAULT 0,
        receipt_sent_at REAL
    ) WITHOUT ROWID;
    CREATE INDEX messages_open ON messages(state) WHERE state NOT IN {_FINAL};
    CREATE INDEX messages_receipt_due ON messages(receipt_due) WHERE receipt_due = 1;
    CREATE UNIQUE INDEX messages_client_ref ON messages(account, client_ref) WHERE client_ref IS NOT NULL;
    CREATE TABLE segments (
        message_id TEXT NOT NULL,
        part INTEGER NOT NULL,
        connector TEXT NOT NULL,
        smsc_id TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        PRIMARY KEY (message_id, part)
    ) WITHOUT ROWID;
    CREATE TABLE receipts (
        id INTEGER PRIMARY KEY,
        connector TEXT NOT NULL,
        smsc_id TEXT NOT NULL,
        state TEXT NOT NULL,
        err TEXT,
        done_date TEXT,
        received_at REAL NOT NULL,
        raw TEXT NOT NULL,
        message_id TEXT,
        part INTEGER
    );
    CREATE INDEX receipts_message ON receipts(message_id);
    """,
    # 2: measured, a partial index on messages(state) cost 4.6 µs per insert and 7.5 µs per update (row rewrite of
    # the wide row included: 14.5 µs). Live state moves to a narrow table (1-3 µs per row); messages is updated
    # once, at the final state; receipts owed upstream are a narrow table; deliveries upstream are appended.
    f"""
    DROP INDEX messages_open;
    DROP INDEX messages_receipt_due;
    CREATE TABLE open_messages (id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO open_messages SELECT id, state FROM messages WHERE state NOT IN {_FINAL};
    CREATE TABLE receipts_due (id TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT INTO receipts_due SELECT id FROM messages WHERE receipt_due = 1;
    CREATE TABLE receipt_deliveries (message_id TEXT NOT NULL, delivered_at REAL NOT NULL);
    INSERT INTO receipt_deliveries SELECT id, receipt_sent_at FROM messages WHERE receipt_sent_at IS NOT NULL;
    """,
    # 3: the HTTP callback outbox (one row per message with a callback pending) and the log of callback outcomes.
    """
    CREATE TABLE callbacks (
        message_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        payload BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE callback_outcomes (message_id TEXT NOT NULL, http_status INTEGER NOT NULL, at REAL NOT NULL);
    """,
    # 4: sending policies. The stop list (current state per scope and number, plus an append-only log of every
    # change: evidence of an opt-out and of who lifted it), collection-cap reservations (one row per message, by
    # recipient-local day) and the overdue days a collection message came with.
    """
    ALTER TABLE messages ADD COLUMN overdue_days INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE stoplist (
        scope TEXT NOT NULL,
        msisdn INTEGER NOT NULL,
        stopped INTEGER NOT NULL,
        at REAL NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (scope, msisdn)
    ) WITHOUT ROWID;
    CREATE TABLE stoplist_log (scope TEXT NOT NULL, msisdn INTEGER NOT NULL, stopped INTEGER NOT NULL,
                               at REAL NOT NULL, source TEXT NOT NULL);
    CREATE INDEX stoplist_log_msisdn ON stoplist_log(msisdn);
    CREATE TABLE cap_ledger (
        message_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        msisdn TEXT NOT NULL,
        day INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX cap_ledger_day ON cap_ledger(day);
    """,
    # 5: hand-offs between worker processes (``smppgw run --workers N``). A receipt that arrived on a bind of a
    # worker that does not own its message is announced to the others (AUTOINCREMENT: sequence numbers follow commit
    # order and are never reused, so a reader's cursor misses nothing). A receipt owed to an upstream account with no
    # receiver session in the owning worker is left for a worker that has one: it takes the row with a lease
    # (claimed_by) that ends when the receipt is delivered or abandoned (the row goes), when that worker gives it back
    # (session lost) or when that worker starts again (its leases are freed). One row per message: leaving it twice
    # never makes two deliveries. Collection caps are counted per recipient inside the commit: indexed. A cancel_sm
    # that reached a worker not owning its message is passed to the owner the way receipts are (a cursor).
    """
    CREATE TABLE receipt_handoff (seq INTEGER PRIMARY KEY AUTOINCREMENT, receipt_id INTEGER NOT NULL,
                                  worker INTEGER NOT NULL, at REAL NOT NULL);
    CREATE TABLE delivery_handoff (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL,
                                   account TEXT NOT NULL, claimed_by INTEGER);
    CREATE INDEX delivery_handoff_account ON delivery_handoff(account, claimed_by, seq);
    CREATE UNIQUE INDEX delivery_handoff_message ON delivery_handoff(message_id);
    CREATE INDEX cap_ledger_recipient ON cap_ledger(account, msisdn, day);
    CREATE TABLE cancel_handoff (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL,
                                 account TEXT NOT NULL, at REAL NOT NULL);
    """,
)


def migrate(db: sqlite3.Connection) -> int:
    """Run every migration not yet applied, each in its own transaction; returns the schema version. Safe when
    several processes open the same file at once: the version is read again under the write lock."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > len(MIGRATIONS):
                raise RuntimeError(f"database schema version {version} is newer than this smppgw ({len(MIGRATIONS)})")
            if version == len(MIGRATIONS):
                db.execute("COMMIT")
                return int(version)
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
