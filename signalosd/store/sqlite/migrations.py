"""Schema migrations: an ordered list of small named functions, applied ones recorded.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def _run(conn: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it COMMITs first, which would break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m001_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            role TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        );
        CREATE TABLE trading_state (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
            mode TEXT NOT NULL,
            stealth INTEGER NOT NULL DEFAULT 0,
            reason TEXT,
            since TEXT NOT NULL
        );
        CREATE TABLE signals (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            entry REAL,
            sl REAL,
            tp TEXT NOT NULL DEFAULT '[]',
            volume REAL NOT NULL,
            source TEXT NOT NULL,
            external_id TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            command_id TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (account_id, external_id)
        );
        CREATE TABLE trades (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            ticket INTEGER,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            volume REAL NOT NULL,
            open_price REAL,
            current_price REAL,
            sl REAL,
            tp REAL,
            profit REAL NOT NULL DEFAULT 0,
            swap REAL NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            opened_at TEXT,
            closed_at TEXT,
            close_reason TEXT,
            signal_id INTEGER REFERENCES signals(id),
            trailing REAL,
            volume_min REAL NOT NULL DEFAULT 0.01,
            volume_step REAL NOT NULL DEFAULT 0.01,
            updated_at TEXT NOT NULL,
            UNIQUE (account_id, ticket)
        );
        CREATE INDEX trades_by_status ON trades (account_id, status);
        CREATE TABLE commands (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            type TEXT NOT NULL,
            trade_id INTEGER,
            params TEXT NOT NULL,
            status TEXT NOT NULL,
            priority INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            acked_at TEXT,
            done_at TEXT,
            expires_at TEXT,
            result TEXT,
            issued_by TEXT NOT NULL
        );
        CREATE INDEX commands_outbox ON commands (account_id, status, priority, seq);
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            account_id INTEGER,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL
        );
        CREATE INDEX events_by_account ON events (account_id, seq);
        CREATE INDEX events_by_ts ON events (ts);
        CREATE TABLE idempotency (
            account_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            status INTEGER NOT NULL,
            body BLOB NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (account_id, key)
        );
        CREATE INDEX idempotency_by_age ON idempotency (created_at);
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    )


def _m002_agent(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        ALTER TABLE signals ADD COLUMN trade_id INTEGER;
        ALTER TABLE trades ADD COLUMN command_id TEXT;
        CREATE TABLE agent_status (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
            session_id TEXT,
            connected INTEGER NOT NULL DEFAULT 0,
            connected_at TEXT,
            last_seen TEXT,
            agent_version TEXT,
            broker TEXT,
            login TEXT,
            server TEXT,
            mt5 TEXT,
            mt5_at TEXT
        );
        CREATE INDEX commands_expiry ON commands (status, expires_at);
        CREATE INDEX signals_by_account ON signals (account_id, id)
        """,
    )


def _m003_fence(conn: sqlite3.Connection) -> None:
    """The emergency stop as a fence: each stop starts a new halt generation of its account;
    every command carries the generation it was issued in, so an agent can refuse an entry or
    a resume from before the latest stop. The agent's own report of its mode sits beside."""
    _run(
        conn,
        """
        ALTER TABLE trading_state ADD COLUMN halt_gen INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE commands ADD COLUMN halt_gen INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE agent_status ADD COLUMN agent_mode TEXT;
        ALTER TABLE agent_status ADD COLUMN agent_halt_gen INTEGER;
        ALTER TABLE agent_status ADD COLUMN clock_offset_s REAL;
        ALTER TABLE agent_status ADD COLUMN journal_keep_s REAL;
        ALTER TABLE agent_status ADD COLUMN mode_mismatch INTEGER NOT NULL DEFAULT 0
        """,
    )


def _m004_retention_indexes(conn: sqlite3.Connection) -> None:
    """Indexes on the columns retention follows from row to row (store/sqlite/retention.py), so
    each chunk of a prune looks references up instead of scanning whole tables; the one on
    trades.signal_id also serves the foreign key check when a signal is deleted. Partial:
    only rows that hold a reference are indexed."""
    _run(
        conn,
        """
        CREATE INDEX signals_by_command ON signals (command_id) WHERE command_id IS NOT NULL;
        CREATE INDEX signals_by_trade ON signals (trade_id) WHERE trade_id IS NOT NULL;
        CREATE INDEX trades_by_command ON trades (command_id) WHERE command_id IS NOT NULL;
        CREATE INDEX trades_by_signal ON trades (signal_id) WHERE signal_id IS NOT NULL;
        CREATE INDEX commands_by_trade ON commands (trade_id) WHERE trade_id IS NOT NULL
        """,
    )


def _m005_events_by_type(conn: sqlite3.Connection) -> None:
    """Event reads filtered by exact types (`?type=emergency_stop`, a dashboard's stream of
    trades) walk this index instead of every event of the bounded seq range: a rare type costs
    microseconds, not milliseconds, per page, whoever asks for it how often."""
    _run(conn, "CREATE INDEX events_by_type ON events (type, seq)")


def _m006_account_history(conn: sqlite3.Connection) -> None:
    """The equity chart's time series (store/sqlite/history.py): a row per account per sampling
    interval, clustered by account and time (the chart's read is one range of the key), and an
    index on time alone for retention across accounts."""
    _run(
        conn,
        """
        CREATE TABLE account_history (
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            ts TEXT NOT NULL,
            balance REAL NOT NULL,
            equity REAL NOT NULL,
            equity_min REAL NOT NULL,
            equity_max REAL NOT NULL,
            PRIMARY KEY (account_id, ts)
        ) WITHOUT ROWID;
        CREATE INDEX account_history_by_ts ON account_history (ts)
        """,
    )


def _m007_risk(conn: sqlite3.Connection) -> None:
    """The risk guard's per-account limits and memory (store/sqlite/risk.py), one JSON object
    each, kept with the account across restarts."""
    _run(
        conn,
        """
        CREATE TABLE risk_limits (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
            limits TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE risk_memory (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
            memory TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    )


def _m008_webhooks(conn: sqlite3.Connection) -> None:
    """Outgoing webhooks (store/sqlite/webhooks.py): each one's cursor into the event log
    (`delivered_seq`, the alert outbox of docs/alerts.md) and the attempt in progress
    (`failing_seq`, since when, how many attempts). AUTOINCREMENT: an id is never reused, so a
    `webhook_failed` event always names one webhook. The secret is kept as given: signing
    needs it (the database file is the daemon's own, mode 0600)."""
    _run(
        conn,
        """
        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            format TEXT NOT NULL,
            account_id INTEGER REFERENCES accounts(id),
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL,
            delivered_seq INTEGER NOT NULL,
            failing_seq INTEGER,
            failing_since TEXT,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_attempt_at TEXT
        )
        """,
    )


MIGRATIONS: list[Migration] = [
    ("001_initial", _m001_initial),
    ("002_agent", _m002_agent),
    ("003_fence", _m003_fence),
    ("004_retention_indexes", _m004_retention_indexes),
    ("005_events_by_type", _m005_events_by_type),
    ("006_account_history", _m006_account_history),
    ("007_risk", _m007_risk),
    ("008_webhooks", _m008_webhooks),
]


def apply_migrations(conn: sqlite3.Connection, now: str) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process (a daemon starting, `signalosd token …`) may have applied it
            # between our look and our lock.
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
