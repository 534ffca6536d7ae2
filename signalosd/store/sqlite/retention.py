"""Retention queries, each bounded, so pruning a big database never holds the writer long.

Maintenance (maintenance.py) finds what is old on the read side (`prune_candidates`, a window of
primary keys per read) and deletes it in chunks of at most `chunk` rows, each chunk its own
short write transaction: an emergency stop queued meanwhile commits between two chunks.
Every delete re-checks its conditions, so a row that changed since it was found stays.
The reference checks use the indexes of migration 004 (and the foreign key from
trades.signal_id to signals has one), so no chunk scans a whole table.
"""

from __future__ import annotations

import json

from signalosd.store.sqlite.base import TxBase

_FINISHED = "'succeeded', 'failed', 'expired', 'cancelled'"
_IN_LIST = "(SELECT value FROM json_each(?))"  # one parameter, however many keys

# table -> (integer key, what makes a row old enough to consider; `?` is the cutoff)
_OLD = {
    "commands": ("seq", f"status IN ({_FINISHED}) AND coalesce(done_at, created_at) < ?"),
    "trades": ("id", "status IN ('closed', 'failed') AND updated_at < ?"),
    "signals": ("id", "status IN ('skipped', 'accepted') AND created_at < ?"),
}


class RetentionSql(TxBase):
    """Bounded retention: events, idempotent replies, finished commands, trades, signals."""

    # ---- events ---------------------------------------------------------------------------

    def newest_event_before(self, before_ts: str) -> int:
        """The highest seq of an event older than `before_ts` (0: none). Retention deletes
        every seq up to it (a read: it walks events_by_ts, so it runs off the writer)."""
        row = self.conn.execute("SELECT max(seq) FROM events WHERE ts < ?", (before_ts,)).fetchone()
        return int(row[0] or 0)

    def prune_events_through(self, highest: int, chunk: int) -> int:
        """Delete the oldest events with seq <= `highest`, at most `chunk` of them (a range of
        the primary key), and remember the highest seq deleted; the number deleted."""
        row = self.conn.execute("SELECT min(seq) FROM events").fetchone()
        if row[0] is None or row[0] > highest:
            return 0
        upto = min(highest, int(row[0]) + chunk - 1)
        top, count = self.conn.execute(
            "SELECT max(seq), count(*) FROM events WHERE seq <= ?", (upto,)
        ).fetchone()
        self.conn.execute("DELETE FROM events WHERE seq <= ?", (upto,))
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(max(int(top), self.pruned_through())),),
        )
        return int(count)

    # ---- idempotent replies ---------------------------------------------------------------

    def prune_idempotency(self, before_ts: str, chunk: int) -> int:
        """Delete at most `chunk` stored replies older than `before_ts` (idempotency_by_age)."""
        cur = self.conn.execute(
            "DELETE FROM idempotency WHERE rowid IN "
            "(SELECT rowid FROM idempotency WHERE created_at < ? LIMIT ?)",
            (before_ts, chunk),
        )
        return cur.rowcount

    # ---- finding old rows (read side) -----------------------------------------------------

    def key_range(self, table: str) -> tuple[int, int]:
        """(lowest key - 1, highest key) of a retention table: where candidates are looked for."""
        key = _OLD[table][0]
        lo, hi = self.conn.execute(f"SELECT min({key}), max({key}) FROM {table}").fetchone()
        return (0, 0) if lo is None else (int(lo) - 1, int(hi))

    def prune_candidates(
        self, table: str, before_ts: str, after: int, window: int, limit: int
    ) -> tuple[list[int], int]:
        """Keys in (after, after + window] of rows old enough to consider, at most `limit`,
        and the key to look after next time. At most `window` rows are examined."""
        key, old = _OLD[table]
        keys = [
            int(r[0])
            for r in self.conn.execute(
                f"SELECT {key} FROM {table} WHERE {key} > ? AND {key} <= ? AND {old} "
                f"ORDER BY {key} LIMIT ?",
                (after, after + window, before_ts, limit),
            )
        ]
        return keys, keys[-1] if len(keys) >= limit else after + window

    # ---- deleting them (one chunk per write transaction) ----------------------------------

    def prune_commands(self, seqs: list[int], before_ts: str) -> int:
        """Delete those of `seqs` that are still finished and done before `before_ts`. The
        signals and trades that name one keep their row, with the reference cleared: a
        command id that no longer resolves is never handed out."""
        ids = [
            r[0]
            for r in self.conn.execute(
                f"SELECT id FROM commands WHERE seq IN {_IN_LIST} AND {_OLD['commands'][1]}",
                (json.dumps(seqs), before_ts),
            )
        ]
        if not ids:
            return 0
        listed = json.dumps(ids)
        for table in ("signals", "trades"):
            self.conn.execute(
                f"UPDATE {table} SET command_id = NULL WHERE command_id IN {_IN_LIST}", (listed,)
            )
        self._forget_rows()  # cached trade rows may name a command that is gone
        cur = self.conn.execute(f"DELETE FROM commands WHERE id IN {_IN_LIST}", (listed,))
        return cur.rowcount

    def prune_trades(self, ids: list[int], before_ts: str) -> int:
        """Delete those of `ids` still closed or failed, last updated before `before_ts`, that
        no command names (a command's trade_id always resolves). Live trades never go."""
        gone = [
            r[0]
            for r in self.conn.execute(
                f"DELETE FROM trades WHERE id IN {_IN_LIST} AND {_OLD['trades'][1]} "
                "AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.trade_id = trades.id) "
                "RETURNING id",
                (json.dumps(ids), before_ts),
            )
        ]
        if gone:
            self._forget_rows()
            # A younger signal may name a deleted trade (e.g. one retired after its position
            # was adopted under another row): clear the reference rather than leave it dangling.
            self.conn.execute(
                f"UPDATE signals SET trade_id = NULL WHERE trade_id IN {_IN_LIST}",
                (json.dumps(gone),),
            )
        return len(gone)

    def prune_signals(self, ids: list[int], before_ts: str) -> int:
        """Delete those of `ids` still skipped or accepted, created before `before_ts`, whose
        trade is gone (or that never had one) and that no trade names: a signal of a live or
        kept trade stays. Run after the trades (trades.signal_id is a foreign key)."""
        cur = self.conn.execute(
            f"DELETE FROM signals WHERE id IN {_IN_LIST} AND {_OLD['signals'][1]} "
            "AND (trade_id IS NULL "
            "OR NOT EXISTS (SELECT 1 FROM trades t WHERE t.id = signals.trade_id)) "
            "AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.signal_id = signals.id)",
            (json.dumps(ids), before_ts),
        )
        return cur.rowcount

    def _forget_rows(self) -> None:
        self._rows.clear()
        self._row_keys.clear()
