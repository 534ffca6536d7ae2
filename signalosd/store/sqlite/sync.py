"""A write transaction without the daemon (the `signalosd token` commands, a restore)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signalosd.clock import Clock, iso
from signalosd.store.sqlite.connect import connect_sync, create_private
from signalosd.store.sqlite.errors import store_errors
from signalosd.store.sqlite.migrations import apply_migrations
from signalosd.store.sqlite.schema import Schema
from signalosd.store.sqlite.tx import SqliteTx


@contextmanager
def sync_transaction(path: Path, clock: Clock) -> Iterator[SqliteTx]:
    """One BEGIN IMMEDIATE transaction on the database at `path` (created and migrated if
    need be), committed when the block ends, rolled back if it raises.

    Safe while the daemon runs: WAL plus BEGIN IMMEDIATE with a busy timeout; the daemon's
    writer notices the events appended here and publishes them in order."""
    with store_errors():
        create_private(path)
        conn = connect_sync(path, writer=True)
        try:
            apply_migrations(conn, iso(clock.now()))
            schema = Schema.read(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(conn, clock.now(), schema)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may already have rolled back
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
