"""Webhook queries (store/webhooks.py): one row per webhook in `webhooks` (migration 008), its
event globs as JSON text, its cursor and the state of the attempt in progress."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from signalosd.models.type_filter import TypeFilter
from signalosd.store.sqlite.base import TxBase

_COLUMNS = (
    "w.id, w.url, w.events, w.format, w.account_id, a.name AS account, w.secret, w.created_at, "
    "w.delivered_seq, w.failing_seq, w.failing_since, w.failures, w.last_error, "
    "w.last_attempt_at"
)
_FROM = "FROM webhooks w LEFT JOIN accounts a ON a.id = w.account_id"


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["events"] = json.loads(out["events"])
    return out


class WebhooksSql(TxBase):
    def insert_webhook(
        self,
        url: str,
        events: list[str],
        format_: str,
        account_id: int | None,
        secret: str,
        delivered_seq: int,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO webhooks (url, events, format, account_id, secret, created_at, "
            "delivered_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (url, json.dumps(events), format_, account_id, secret, self.now, delivered_seq),
        )
        return int(cur.lastrowid or 0)

    def webhook(self, webhook_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE w.id = ?", (webhook_id,)
        ).fetchone()
        return None if row is None else _row(row)

    def webhooks(self) -> list[dict[str, Any]]:
        return [_row(r) for r in self.conn.execute(f"SELECT {_COLUMNS} {_FROM} ORDER BY w.id")]

    def count_webhooks(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM webhooks").fetchone()[0])

    def delete_webhook(self, webhook_id: int) -> bool:
        cur = self.conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        return cur.rowcount > 0

    def webhook_advanced(self, webhook_id: int, seq: int, delivered: bool) -> None:
        if delivered:
            self.conn.execute(
                "UPDATE webhooks SET delivered_seq = max(delivered_seq, ?), failing_seq = NULL, "
                "failing_since = NULL, failures = 0, last_attempt_at = ? WHERE id = ?",
                (seq, self.now, webhook_id),
            )
        else:
            self.conn.execute(
                "UPDATE webhooks SET delivered_seq = max(delivered_seq, ?) WHERE id = ?",
                (seq, webhook_id),
            )

    def webhook_attempt_failed(
        self, webhook_id: int, seq: int, error: str, failing_since: str, failures: int
    ) -> None:
        self.conn.execute(
            "UPDATE webhooks SET failing_seq = ?, failing_since = ?, failures = ?, "
            "last_error = ?, last_attempt_at = ? WHERE id = ?",
            (seq, failing_since, failures, error, self.now, webhook_id),
        )

    def webhook_floor(self) -> int | None:
        row = self.conn.execute("SELECT min(delivered_seq) FROM webhooks").fetchone()
        return None if row[0] is None else int(row[0])

    def count_events(
        self, after: int, upto: int, account_ids: Sequence[int] | None, types: TypeFilter | None
    ) -> int:
        """Counted like `read_events` reads: the type filter chooses among the range's
        distinct types in Python (linear time), SQLite only tests membership."""
        where = self._events_where(after, upto, account_ids, types)
        if where is None:
            return 0
        clause, args = where
        sql = f"SELECT count(*) FROM events e WHERE {clause}"
        return int(self.conn.execute(sql, args).fetchone()[0])
