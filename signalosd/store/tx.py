"""Tx: one SQLite transaction with the daemon's queries as methods.

A Tx is handed to a whole-transaction function that runs on the store's thread, so domain code
reads the row, decides (with the pure rules in `state.py`) and writes, atomically, without
writing SQL. Events appended here are published by the Database only after COMMIT.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..clock import iso
from .records import EventRecord, dumps

_TRADE_COLUMNS = (
    "t.id, a.name AS account, t.ticket, t.symbol, t.side, t.volume, t.open_price, "
    "t.current_price, t.sl, t.tp, t.profit, t.swap, t.status, t.opened_at, t.closed_at, "
    "t.signal_id, t.trailing, t.volume_min, t.volume_step, t.updated_at"
)
_COMMAND_COLUMNS = (
    "c.id, a.name AS account, c.type, c.trade_id, c.params, c.status, c.attempts, c.created_at, "
    "c.sent_at, c.acked_at, c.done_at, c.expires_at, c.result, c.issued_by"
)
_EVENT_COLUMNS = "e.seq, e.account_id, a.name AS account, e.type, e.data, e.ts, e.actor"


def _command_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["params"] = json.loads(d["params"])
    d["result"] = json.loads(d["result"]) if d["result"] is not None else None
    d["issued_by"] = json.loads(d["issued_by"])
    return d


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        row["seq"],
        row["account_id"],
        row["account"],
        row["type"],
        row["data"],
        row["ts"],
        row["actor"],
    )


def _type_filter(types: Sequence[str] | None) -> tuple[str, list[str]]:
    """SQL for a list of event types where `*` is a wildcard (`command_*`)."""
    if not types:
        return "", []
    parts = ["e.type GLOB ?" if "*" in t else "e.type = ?" for t in types]
    # In GLOB `?` and `[…]` are wildcards too: make them literal, so only `*` is special.
    args = [t.replace("[", "[[]").replace("?", "[?]") if "*" in t else t for t in types]
    return " AND (" + " OR ".join(parts) + ")", args


class Tx:
    """Queries inside one transaction. `now` is fixed for the whole transaction."""

    def __init__(self, conn: sqlite3.Connection, now: datetime) -> None:
        self.conn = conn
        self.now_dt = now
        self.now = iso(now)
        self.events: list[EventRecord] = []

    # ---- accounts -------------------------------------------------------------------------

    def has_accounts(self) -> bool:
        return self.conn.execute("SELECT 1 FROM accounts LIMIT 1").fetchone() is not None

    def account_by_name(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, name FROM accounts WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def list_accounts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT id, name FROM accounts ORDER BY id")]

    def create_account(self, name: str, actor: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO accounts (name, created_at) VALUES (?, ?)", (name, self.now)
        )
        account_id = int(cur.lastrowid or 0)
        self.conn.execute(
            "INSERT INTO trading_state (account_id, mode, stealth, since) "
            "VALUES (?, 'running', 0, ?)",
            (account_id, self.now),
        )
        self.append_event(account_id, "account_created", {"account": name}, actor)
        return account_id

    # ---- tokens ---------------------------------------------------------------------------

    def insert_token(
        self, token_id: str, account_id: int, role: str, label: str, token_hash: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO tokens (id, account_id, role, label, hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, account_id, role, label, token_hash, self.now),
        )

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT t.id, t.account_id, a.name AS account, t.role, t.label, t.hash, "
            "t.last_used_at, t.revoked_at FROM tokens t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.hash = ?",
            (token_hash,),
        ).fetchone()
        return dict(row) if row else None

    def touch_token(self, token_id: str) -> None:
        self.conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (self.now, token_id))

    def revoke_token(self, token_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, account_id, role, label, revoked_at FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None:
            return None
        if row["revoked_at"] is None:
            self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (self.now, token_id))
        return dict(row)

    def list_tokens(self, account_id: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT t.id, a.name AS account, t.role, t.label, t.created_at, t.last_used_at, "
            "t.revoked_at FROM tokens t JOIN accounts a ON a.id = t.account_id"
        )
        args: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE t.account_id = ?"
            args = (account_id,)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY t.created_at, t.id", args)]

    # ---- trading state --------------------------------------------------------------------

    def get_state(self, account_id: int) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT a.name AS account, s.mode, s.stealth, s.reason, s.since FROM trading_state s "
            "JOIN accounts a ON a.id = s.account_id WHERE s.account_id = ?",
            (account_id,),
        ).fetchone()
        d = dict(row)
        d["stealth"] = bool(d["stealth"])
        return d

    def set_mode(self, account_id: int, mode: str, reason: str | None) -> None:
        self.conn.execute(
            "UPDATE trading_state SET mode = ?, reason = ?, since = ? WHERE account_id = ?",
            (mode, reason, self.now, account_id),
        )

    def set_stealth(self, account_id: int, enabled: bool) -> None:
        self.conn.execute(
            "UPDATE trading_state SET stealth = ? WHERE account_id = ?", (int(enabled), account_id)
        )

    # ---- trades ---------------------------------------------------------------------------

    def get_trade(self, account_id: int, trade_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {_TRADE_COLUMNS} FROM trades t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.account_id = ? AND t.id = ?",
            (account_id, trade_id),
        ).fetchone()
        return dict(row) if row else None

    def list_trades(
        self, account_id: int, statuses: Iterable[str] | None, symbol: str | None, limit: int
    ) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {_TRADE_COLUMNS} FROM trades t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.account_id = ?"
        )
        args: list[Any] = [account_id]
        if statuses is not None:
            wanted = list(statuses)
            sql += f" AND t.status IN ({','.join('?' * len(wanted))})"
            args += wanted
        if symbol is not None:
            sql += " AND t.symbol = ?"
            args.append(symbol)
        sql += " ORDER BY t.id DESC LIMIT ?"
        args.append(limit)
        return [dict(r) for r in self.conn.execute(sql, args)]

    def insert_trade(self, account_id: int, fields: dict[str, Any]) -> int:
        cols = dict(fields, account_id=account_id, updated_at=self.now)
        names = ", ".join(cols)
        cur = self.conn.execute(
            f"INSERT INTO trades ({names}) VALUES ({', '.join('?' * len(cols))})",
            tuple(cols.values()),
        )
        return int(cur.lastrowid or 0)

    def update_trade(self, trade_id: int, fields: dict[str, Any]) -> None:
        cols = dict(fields, updated_at=self.now)
        assign = ", ".join(f"{name} = ?" for name in cols)
        self.conn.execute(f"UPDATE trades SET {assign} WHERE id = ?", (*cols.values(), trade_id))

    # ---- commands -------------------------------------------------------------------------

    def insert_command(
        self,
        command_id: str,
        account_id: int,
        type_: str,
        trade_id: int | None,
        params: dict[str, Any],
        priority: int,
        expires_at: str | None,
        issued_by: dict[str, Any],
    ) -> dict[str, Any]:
        self.conn.execute(
            "INSERT INTO commands (id, account_id, type, trade_id, params, status, priority, "
            "created_at, expires_at, issued_by) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            (
                command_id,
                account_id,
                type_,
                trade_id,
                dumps(params),
                priority,
                self.now,
                expires_at,
                dumps(issued_by),
            ),
        )
        command = self.get_command(account_id, command_id)
        assert command is not None
        return command

    def get_command(self, account_id: int | None, command_id: str) -> dict[str, Any] | None:
        sql = (
            f"SELECT {_COMMAND_COLUMNS} FROM commands c JOIN accounts a ON a.id = c.account_id "
            "WHERE c.id = ?"
        )
        args: tuple[Any, ...] = (command_id,)
        if account_id is not None:
            sql += " AND c.account_id = ?"
            args = (command_id, account_id)
        row = self.conn.execute(sql, args).fetchone()
        return _command_dict(row) if row else None

    def commands_with_status(
        self, account_id: int, status: str, type_: str | None = None
    ) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {_COMMAND_COLUMNS} FROM commands c JOIN accounts a ON a.id = c.account_id "
            "WHERE c.account_id = ? AND c.status = ?"
        )
        args: list[Any] = [account_id, status]
        if type_ is not None:
            sql += " AND c.type = ?"
            args.append(type_)
        return [_command_dict(r) for r in self.conn.execute(sql + " ORDER BY c.seq", args)]

    def set_command_status(
        self, command_id: str, status: str, result: dict[str, Any] | None = None
    ) -> None:
        self.conn.execute(
            "UPDATE commands SET status = ?, done_at = ?, result = ? WHERE id = ?",
            (status, self.now, dumps(result) if result is not None else None, command_id),
        )

    def queue_depths(self, account_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT status, count(*) FROM commands WHERE account_id = ? "
            "AND status IN ('queued', 'sent', 'acked') GROUP BY status",
            (account_id,),
        )
        depths = {"queued": 0, "sent": 0, "acked": 0}
        depths.update({status: n for status, n in rows})
        return depths

    def command_counts(self) -> list[tuple[str, str, int]]:
        """(type, status, count) over all accounts, for /metrics."""
        return [
            (r[0], r[1], r[2])
            for r in self.conn.execute(
                "SELECT type, status, count(*) FROM commands GROUP BY type, status ORDER BY 1, 2"
            )
        ]

    # ---- events ---------------------------------------------------------------------------

    def append_event(
        self, account_id: int | None, type_: str, data: dict[str, Any], actor: dict[str, Any]
    ) -> EventRecord:
        data_json, actor_json = dumps(data), dumps(actor)
        cur = self.conn.execute(
            "INSERT INTO events (account_id, type, data, ts, actor) VALUES (?, ?, ?, ?, ?)",
            (account_id, type_, data_json, self.now, actor_json),
        )
        account = None
        if account_id is not None:
            account = self.conn.execute(
                "SELECT name FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()[0]
        event = EventRecord(
            int(cur.lastrowid or 0), account_id, account, type_, data_json, self.now, actor_json
        )
        self.events.append(event)
        return event

    def head_seq(self) -> int:
        """The highest seq ever assigned (pruning does not lower it)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def pruned_through(self) -> int:
        """Every event with seq <= this has been deleted by retention."""
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = 'events_pruned_through'"
        ).fetchone()
        return int(row[0]) if row else 0

    def read_events(
        self,
        after: int,
        limit: int,
        account_ids: Sequence[int] | None,
        types: Sequence[str] | None = None,
        upto: int | None = None,
    ) -> list[EventRecord]:
        """Events with seq > after (and <= upto), visible to `account_ids` (None: all)."""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN accounts a ON a.id = e.account_id "
            "WHERE e.seq > ?"
        )
        args: list[Any] = [after]
        if upto is not None:
            sql += " AND e.seq <= ?"
            args.append(upto)
        if account_ids is not None:
            marks = ",".join("?" * len(account_ids))
            # Unary + keeps SQLite off events_by_account here: its OR-of-index plan collects
            # every matching row up to `upto` and sorts them before LIMIT, so a replay paged
            # by 1,000 was quadratic (100,000 events: ~2 s of reads). Walking the primary key
            # in seq order stops at LIMIT; a page never rescans what an earlier one returned.
            sql += f" AND (+e.account_id IS NULL OR +e.account_id IN ({marks}))"
            args += list(account_ids)
        type_sql, type_args = _type_filter(types)
        sql += type_sql + " ORDER BY e.seq LIMIT ?"
        args += [*type_args, limit]
        return [_event(r) for r in self.conn.execute(sql, args)]

    def prune_events(self, before_ts: str) -> int:
        """Delete events older than `before_ts`; remember the highest seq deleted."""
        row = self.conn.execute(
            "SELECT max(seq), count(*) FROM events WHERE ts < ?", (before_ts,)
        ).fetchone()
        highest, count = row[0], row[1]
        if not count:
            return 0
        self.conn.execute("DELETE FROM events WHERE seq <= ?", (highest,))
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(max(highest, self.pruned_through())),),
        )
        return int(count)

    # ---- idempotency ----------------------------------------------------------------------

    def idempotent_reply(self, account_id: int, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT fingerprint, status, body FROM idempotency WHERE account_id = ? AND key = ?",
            (account_id, key),
        ).fetchone()
        return dict(row) if row else None

    def save_idempotent_reply(
        self, account_id: int, key: str, fingerprint: str, status: int, body: bytes
    ) -> None:
        self.conn.execute(
            "INSERT INTO idempotency (account_id, key, fingerprint, status, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, key, fingerprint, status, body, self.now),
        )

    def prune_idempotency(self, before_ts: str) -> int:
        cur = self.conn.execute("DELETE FROM idempotency WHERE created_at < ?", (before_ts,))
        return cur.rowcount
