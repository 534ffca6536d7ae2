"""Retention and account-history queries of the store interface (Tx).

Retention is bounded: old rows are found on the read side (a window of keys per read) and
deleted in chunks of at most `chunk` rows, each chunk a short write transaction of its own
(ops/maintenance.py); every delete re-checks its conditions.
"""

from __future__ import annotations

from typing import Any, Protocol


class RetentionQueries(Protocol):
    """Bounded retention: events, idempotent replies, finished commands, trades, signals."""

    def newest_event_before(self, before_ts: str) -> int:
        """The highest seq of an event older than `before_ts` (0: none)."""
        ...

    def prune_events_through(self, highest: int, chunk: int) -> int:
        """Delete the oldest events with seq <= `highest`, at most `chunk` of them, and
        remember the highest seq deleted; the number deleted."""
        ...

    def prune_idempotency(self, before_ts: str, chunk: int) -> int:
        """Delete at most `chunk` stored replies older than `before_ts`."""
        ...

    def key_range(self, table: str) -> tuple[int, int]:
        """(lowest key - 1, highest key) of a retention table (commands, trades, signals)."""
        ...

    def prune_candidates(
        self, table: str, before_ts: str, after: int, window: int, limit: int
    ) -> tuple[list[int], int]:
        """Keys in (after, after + window] of rows old enough to consider, at most `limit`,
        and the key to look after next time."""
        ...

    def prune_commands(self, seqs: list[int], before_ts: str) -> int:
        """Delete those of `seqs` still finished and done before `before_ts`."""
        ...

    def prune_trades(self, ids: list[int], before_ts: str) -> int:
        """Delete those of `ids` still closed or failed and old, that no command names."""
        ...

    def prune_signals(self, ids: list[int], before_ts: str) -> int:
        """Delete those of `ids` still skipped or accepted and old, of no kept trade."""
        ...


class HistoryQueries(Protocol):
    """The account history behind the equity chart: sample, downsample, prune."""

    def sample_account(
        self,
        account_id: int,
        interval_start: str,
        balance: float,
        equity: float,
        low: float,
        high: float,
    ) -> None:
        """Fold a status (equity seen between `low` and `high` since the previous one) into
        the account's row of the interval that began at `interval_start`."""
        ...

    def account_history(
        self, account_id: int, start: str, end: str, points: int
    ) -> list[dict[str, Any]]:
        """At most `points` points {t, balance, equity, equity_min, equity_max} between
        `start` and `end`, oldest first."""
        ...

    def prune_account_history(self, before_ts: str, chunk: int) -> int:
        """Delete at most `chunk` rows older than `before_ts`, of any account."""
        ...
