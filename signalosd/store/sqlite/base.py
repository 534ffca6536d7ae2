"""TxBase: one SQLite transaction and its event log queries (the other queries build on it;
tx.py puts them together)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from signalosd.clock import iso
from signalosd.models.type_filter import TypeFilter
from signalosd.store.records import EventRecord, dumps
from signalosd.store.sqlite.schema import Schema

_EVENT_COLUMNS = "e.seq, e.account_id, a.name AS account, e.type, e.data, e.ts, e.actor"


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


class TxBase:
    """One transaction. `now` is fixed for the whole transaction; `schema` is the database's
    as read when its connection was opened."""

    def __init__(self, conn: sqlite3.Connection, now: datetime, schema: Schema) -> None:
        self.conn = conn
        self.schema = schema
        self.now_dt = now
        self.now = iso(now)
        self.events: list[EventRecord] = []
        self._names: dict[int, str] = {}  # account names (they never change)
        self._actors: dict[int, tuple[dict[str, Any], str]] = {}
        # Rows read in this transaction and kept in step with its writes (see trades.py);
        # dropped whenever a savepoint rolls back.
        self._rows: dict[Any, dict[str, Any]] = {}
        self._row_keys: dict[Any, Any] = {}

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Apply one item of a batch on its own: if it fails, only it is undone (its events
        too), and the rest of the group commit goes ahead."""
        marker = len(self.events)
        self.conn.execute("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO item")
            self.conn.execute("RELEASE item")
            del self.events[marker:]
            self._rows.clear()
            self._row_keys.clear()
            raise
        self.conn.execute("RELEASE item")

    # ---- events ---------------------------------------------------------------------------

    def append_event(
        self, account_id: int | None, type_: str, data: dict[str, Any], actor: dict[str, Any]
    ) -> EventRecord:
        data_json = dumps(data)
        # A batch appends many events with the same actor: encode it once per transaction.
        cached = self._actors.get(id(actor))
        if cached is None or cached[0] is not actor:
            cached = self._actors[id(actor)] = (actor, dumps(actor))
        actor_json = cached[1]
        cur = self.conn.execute(
            "INSERT INTO events (account_id, type, data, ts, actor) VALUES (?, ?, ?, ?, ?)",
            (account_id, type_, data_json, self.now, actor_json),
        )
        account = None
        if account_id is not None:
            account = self._names.get(account_id)
            if account is None:
                account = self._names[account_id] = self.conn.execute(
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
        types: TypeFilter | None = None,
        upto: int | None = None,
    ) -> list[EventRecord]:
        """Events with seq > after (and <= upto), visible to `account_ids` (None: all) and
        matching `types` (None: all; then `upto` is required, it bounds the scan).

        The type filter is decided in Python by the same `TypeFilter` the live fan-out uses
        (so replay and live choose the same events, in linear time): with a wildcard, the
        distinct types of the seq range are read first and matched; SQLite then only tests
        membership, at a cost that does not depend on the patterns."""
        if types is not None and upto is None:
            raise ValueError("a type-filtered read needs an upper seq (upto) to bound it")
        where = self._events_where(after, upto, account_ids, types)
        if where is None:
            return []
        clause, args = where
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN accounts a ON a.id = e.account_id "
            f"WHERE {clause}"
        )
        sql += " ORDER BY e.seq LIMIT ?"
        args.append(limit)
        return [_event(r) for r in self.conn.execute(sql, args)]

    def _events_where(
        self,
        after: int,
        upto: int | None,
        account_ids: Sequence[int] | None,
        types: TypeFilter | None,
    ) -> tuple[str, list[Any]] | None:
        """The WHERE clause (over `events e`) and its arguments for events with seq > after
        (and <= upto), visible to `account_ids` and matching `types`; None when no type of
        the range matches (nothing to read). `types` needs `upto`, which bounds its scan."""
        clause = "e.seq > ?"
        args: list[Any] = [after]
        if upto is not None:
            clause += " AND e.seq <= ?"
            args.append(upto)
        if types is not None:
            wanted = types.exact
            if wanted is None:
                present = self.conn.execute(
                    "SELECT DISTINCT type FROM events WHERE seq > ? AND seq <= ?", (after, upto)
                )
                wanted = types.select(row[0] for row in present)
            if not wanted:
                return None
            clause += " AND e.type IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(wanted))
        if account_ids is not None:
            marks = ",".join("?" * len(account_ids))
            # Unary + keeps SQLite off events_by_account here: its OR-of-index plan collects
            # every matching row up to `upto` and sorts them before LIMIT, so a replay paged
            # by 1,000 was quadratic (100,000 events: ~2 s of reads). Walking the primary key
            # in seq order stops at LIMIT; a page never rescans what an earlier one returned.
            clause += f" AND (+e.account_id IS NULL OR +e.account_id IN ({marks}))"
            args += list(account_ids)
        return clause, args
