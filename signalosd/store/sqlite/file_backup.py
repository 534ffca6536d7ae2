"""Online backup of the database file with SQLite's backup API, and a check of the copy.

The copy is taken inside one read transaction on the source: in WAL mode that is a fixed
snapshot that never blocks the daemon's writer, so copying it page by page neither stalls the
daemon nor restarts when the daemon commits in between (without the open read transaction,
SQLite restarts a paged backup whenever another connection writes the source).
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from signalosd.clock import SystemClock
from signalosd.store.file_backup import Inspection, Snapshot
from signalosd.store.sqlite.connect import BUSY_TIMEOUT_MS
from signalosd.store.sqlite.errors import store_errors
from signalosd.store.sqlite.sync import sync_transaction
from signalosd.store.tx import Tx

PAGES_PER_STEP = 1024  # 4 MiB at the default page size


def _open_existing(path: Path) -> sqlite3.Connection:
    """Open without ever creating the file (a mistyped --state-dir must not make a database)."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _head_seq(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    except sqlite3.OperationalError:  # no AUTOINCREMENT table yet: an empty schema
        return 0
    return int(row[0]) if row else 0


def copy_database(
    source: Path,
    target: Path,
    *,
    pages: int = PAGES_PER_STEP,
    progress: Callable[[int, int, int], object] | None = None,
) -> Snapshot:
    """Copy the database at `source` into the (new, empty) file `target` as one consistent
    snapshot, `pages` pages per step. The copy is left in rollback-journal mode: one
    self-contained file (the daemon switches it back to WAL when it opens it)."""
    src = _open_existing(source)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.execute("BEGIN")
            try:
                # The first read starts the read transaction: the snapshot the copy is of.
                head = _head_seq(src)
                src.backup(dst, pages=pages, progress=progress)
            finally:
                src.execute("COMMIT")
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    return Snapshot(head)


def inspect(path: Path) -> Inspection:
    """Open a copy and check it: integrity, the event log's extent and the applied migrations."""
    conn = _open_existing(path)
    try:
        problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(10)")]
        integrity = "ok" if problems == ["ok"] else "; ".join(problems)
        extent = "SELECT min(seq), max(seq), count(*) FROM events"
        first, last, count = conn.execute(extent).fetchone()
        migrations = [str(r[0]) for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]
        return Inspection(
            integrity=integrity,
            head_seq=_head_seq(conn),
            events=int(count),
            first_seq=first,
            last_seq=last,
            migrations=migrations,
        )
    finally:
        conn.close()


def head_seq_of(path: Path) -> int | None:
    """The event head of a database file, or None when it cannot be read (lost, corrupt)."""
    try:
        conn = _open_existing(path)
    except sqlite3.Error:
        return None
    try:
        return _head_seq(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def modes_of(path: Path) -> dict[str, tuple[str, int]]:
    """Each account's trading mode and halt generation in a database file ({} when it cannot
    be read; generation 0 in a database from before halt generations)."""
    try:
        conn = _open_existing(path)
    except sqlite3.Error:
        return {}
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(trading_state)")}
        gen = "s.halt_gen" if "halt_gen" in columns else "0"
        rows = conn.execute(
            f"SELECT a.name, s.mode, {gen} FROM trading_state s "
            "JOIN accounts a ON a.id = s.account_id"
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {str(name): (str(mode), int(halt_gen)) for name, mode, halt_gen in rows}


def restart_numbering(path: Path, base: int, event: Callable[[Tx], object]) -> None:
    """After a restore: continue the event log at `base` and mark everything up to it as gone,
    so every cursor a client kept from before the restore gets an explicit reset, never a
    silent gap (new events would otherwise reuse seqs those clients have already seen).

    A backup from an older version has its schema brought up first (the daemon would do so at
    its next start anyway), so that `event` can use today's columns."""
    with sync_transaction(path, SystemClock()) as tx:
        tx.conn.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
        tx.conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (base,))
        tx.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(base),),
        )
        event(tx)


class SqliteFileBackup:
    """The store interface's FileBackup (store/file_backup.py) for SQLite files: the functions
    above, with sqlite3 errors raised as StoreError."""

    def copy(
        self,
        source: Path,
        target: Path,
        *,
        pages: int | None = None,
        progress: Callable[[int, int, int], object] | None = None,
    ) -> Snapshot:
        with store_errors():
            return copy_database(
                source, target, pages=PAGES_PER_STEP if pages is None else pages, progress=progress
            )

    def inspect(self, path: Path) -> Inspection:
        with store_errors():
            return inspect(path)

    def head_seq_of(self, path: Path) -> int | None:
        return head_seq_of(path)

    def modes_of(self, path: Path) -> dict[str, tuple[str, int]]:
        return modes_of(path)

    def restart_numbering(self, path: Path, base: int, event: Callable[[Tx], object]) -> None:
        restart_numbering(path, base, event)  # sync_transaction raises StoreError already
