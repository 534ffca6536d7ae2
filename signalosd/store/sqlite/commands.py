"""Outbox (command) queries."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from signalosd.store.records import dumps
from signalosd.store.sqlite.base import TxBase

_COMMAND_COLUMNS = (
    "c.id, a.name AS account, c.type, c.trade_id, c.params, c.status, c.attempts, c.created_at, "
    "c.sent_at, c.acked_at, c.done_at, c.expires_at, c.result, c.issued_by, c.halt_gen"
)


def _command_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["params"] = json.loads(d["params"])
    d["result"] = json.loads(d["result"]) if d["result"] is not None else None
    d["issued_by"] = json.loads(d["issued_by"])
    return d


class CommandsSql(TxBase):
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
        halt_gen: int,
    ) -> dict[str, Any]:
        self.conn.execute(
            "INSERT INTO commands (id, account_id, type, trade_id, params, status, priority, "
            "created_at, expires_at, issued_by, halt_gen) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
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
                halt_gen,
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

    def unfinished_of_types(self, account_id: int, types: Iterable[str]) -> list[dict[str, Any]]:
        """Queued, sent or acked commands of these types, in commit order."""
        wanted = list(types)
        rows = self.conn.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM commands c JOIN accounts a ON a.id = c.account_id "
            "WHERE c.account_id = ? AND c.status IN ('queued', 'sent', 'acked') "
            f"AND c.type IN ({','.join('?' * len(wanted))}) ORDER BY c.seq",
            (account_id, *wanted),
        )
        return [_command_dict(r) for r in rows]

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

    # ---- delivery -------------------------------------------------------------------------

    def unfinished_commands(self, account_id: int) -> list[dict[str, Any]]:
        """Queued, sent and acked commands in delivery order: emergency stop first, then by
        commit order."""
        rows = self.conn.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM commands c JOIN accounts a ON a.id = c.account_id "
            "WHERE c.account_id = ? AND c.status IN ('queued', 'sent', 'acked') "
            "ORDER BY c.priority, c.seq",
            (account_id,),
        )
        return [_command_dict(r) for r in rows]

    def mark_sent(self, command_id: str) -> bool:
        """Record a (re)send. Only a queued command becomes `sent`: an ack or result that
        was committed first is never overwritten."""
        cur = self.conn.execute(
            "UPDATE commands SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,"
            " sent_at = ?, attempts = attempts + 1 "
            "WHERE id = ? AND status IN ('queued', 'sent', 'acked')",
            (self.now, command_id),
        )
        return cur.rowcount > 0

    def mark_acked(self, account_id: int, command_id: str) -> bool:
        cur = self.conn.execute(
            "UPDATE commands SET status = 'acked', acked_at = ? "
            "WHERE account_id = ? AND id = ? AND status IN ('queued', 'sent')",
            (self.now, account_id, command_id),
        )
        return cur.rowcount > 0

    def finish_command(
        self, account_id: int, command_id: str, status: str, result: dict[str, Any]
    ) -> bool:
        """Move an unfinished command to a final status; False if it was already final."""
        cur = self.conn.execute(
            "UPDATE commands SET status = ?, done_at = ?, result = ? "
            "WHERE account_id = ? AND id = ? AND status IN ('queued', 'sent', 'acked')",
            (status, self.now, dumps(result), account_id, command_id),
        )
        return cur.rowcount > 0

    def unfinished_past_expiry(self, queued_before: str, sent_before: str) -> list[tuple[int, str]]:
        """(account id, command id) of queued commands that expired before `queued_before`
        and sent or acked ones that expired before `sent_before`, in commit order."""
        rows = self.conn.execute(
            "SELECT account_id, id, seq FROM commands WHERE status = 'queued' "
            "AND expires_at IS NOT NULL AND expires_at <= ? "
            "UNION ALL SELECT account_id, id, seq FROM commands WHERE status IN ('sent', 'acked') "
            "AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY seq",
            (queued_before, sent_before),
        )
        return [(r[0], r[1]) for r in rows]

    # ---- agent status ---------------------------------------------------------------------

    def agent_status(self, account_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT session_id, connected, connected_at, last_seen, agent_version, broker, "
            "login, server, mt5, mt5_at, agent_mode, agent_halt_gen, clock_offset_s, "
            "journal_keep_s, mode_mismatch FROM agent_status WHERE account_id = ?",
            (account_id,),
        ).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["connected"] = bool(d["connected"])
        d["mode_mismatch"] = bool(d["mode_mismatch"])
        d["mt5"] = json.loads(d["mt5"]) if d["mt5"] else None
        return d

    def save_agent_status(self, account_id: int, fields: dict[str, Any]) -> None:
        cols = dict(fields)
        self.schema.check("agent_status", cols)
        if "mt5" in cols:
            cols["mt5"] = dumps(cols["mt5"])
        names = ", ".join(cols)
        updates = ", ".join(f"{n} = excluded.{n}" for n in cols)
        self.conn.execute(
            f"INSERT INTO agent_status (account_id, {names}) "
            f"VALUES (?, {', '.join('?' * len(cols))}) "
            f"ON CONFLICT (account_id) DO UPDATE SET {updates}",
            (account_id, *cols.values()),
        )
