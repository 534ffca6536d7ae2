"""The account history behind the equity chart (account_history.py): one compact row per
account per sampling interval, and its downsampled read.

A row is one interval of one account: the last applied status in it (`ts`, `balance`,
`equity`) and the lowest and highest equity seen during it, so a dip between two rows is kept.
The table is keyed by (account_id, ts) without a rowid (the key is the order the chart reads
in); `account_history_by_ts` serves retention across accounts.
"""

from __future__ import annotations

from typing import Any

from signalosd.store.sqlite.base import TxBase


def _ms(ts: str) -> str:
    """SQL for the milliseconds since the epoch of a fixed-width ISO time (clock.iso): exact
    integers, so bucket edges do not drift as julianday()'s floating point days would."""
    return f"(CAST(strftime('%s', {ts}) AS INTEGER) * 1000 + CAST(substr({ts}, 21, 3) AS INTEGER))"


# Bucket b = floor((t - start) * points / (end - start)) in integers; the last one also holds
# `end`. Each bucket's last row (SQLite takes the bare columns of a group from its max() row)
# is joined with the bucket's lowest and highest equity.
_DOWNSAMPLE = f"""
WITH s AS (
    SELECT ts, balance, equity, equity_min, equity_max,
           min((({_ms("ts")} - {_ms(":start")}) * :points) / ({_ms(":end")} - {_ms(":start")}),
               :points - 1) AS b
    FROM account_history
    WHERE account_id = :account_id AND ts >= :start AND ts <= :end
)
SELECT l.t, l.balance, l.equity, r.lo, r.hi
FROM (SELECT b, max(ts) AS t, balance, equity FROM s GROUP BY b) AS l
JOIN (SELECT b, min(equity_min) AS lo, max(equity_max) AS hi FROM s GROUP BY b) AS r USING (b)
ORDER BY l.b
"""


class HistorySql(TxBase):
    """Account history: sample, downsample, prune."""

    def sample_account(
        self,
        account_id: int,
        interval_start: str,
        balance: float,
        equity: float,
        low: float,
        high: float,
    ) -> None:
        """Fold a status (at this transaction's time, equity seen between `low` and `high`
        since the previous one) into the account's row of the interval that began at
        `interval_start`, or start that interval's row."""
        row = self.conn.execute(
            "SELECT ts FROM account_history WHERE account_id = ? ORDER BY ts DESC LIMIT 1",
            (account_id,),
        ).fetchone()
        if row is not None and row[0] >= interval_start:  # this interval's (or, after the
            # clock went back, a later one's): never a second row for it
            self.conn.execute(
                "UPDATE account_history SET ts = max(ts, ?), balance = ?, equity = ?, "
                "equity_min = min(equity_min, ?), equity_max = max(equity_max, ?) "
                "WHERE account_id = ? AND ts = ?",
                (self.now, balance, equity, low, high, account_id, row[0]),
            )
            return
        self.conn.execute(
            "INSERT INTO account_history (account_id, ts, balance, equity, equity_min, "
            "equity_max) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, self.now, balance, equity, low, high),
        )

    def account_history(
        self, account_id: int, start: str, end: str, points: int
    ) -> list[dict[str, Any]]:
        """At most `points` points between `start` and `end` (clock.iso times, inclusive,
        start before end), oldest first: one per non-empty bucket of (end - start) / points."""
        args = {"account_id": account_id, "start": start, "end": end, "points": points}
        return [
            {"t": t, "balance": balance, "equity": equity, "equity_min": lo, "equity_max": hi}
            for t, balance, equity, lo, hi in self.conn.execute(_DOWNSAMPLE, args)
        ]

    def prune_account_history(self, before_ts: str, chunk: int) -> int:
        """Delete at most `chunk` rows older than `before_ts`, of any account."""
        cur = self.conn.execute(
            "DELETE FROM account_history WHERE (account_id, ts) IN "
            "(SELECT account_id, ts FROM account_history WHERE ts < ? LIMIT ?)",
            (before_ts, chunk),
        )
        return cur.rowcount
