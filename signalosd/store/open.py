"""The one way to get a store: the backend the settings choose (SQLite, the only one so far),
behind the store interface. Nothing else above the interface names a backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from signalosd.clock import Clock
from signalosd.config import Settings
from signalosd.store.database import Database
from signalosd.store.file_backup import FileBackup
from signalosd.store.sqlite.db import SqliteDatabase
from signalosd.store.sqlite.file_backup import SqliteFileBackup
from signalosd.store.sqlite.sync import sync_transaction as sqlite_transaction
from signalosd.store.tx import Tx


def open_store(settings: Settings, clock: Clock) -> Database:
    """The daemon's store, not opened yet: the app opens it (`await store.open()`) while it
    holds the state directory's lock, and closes it last."""
    return SqliteDatabase(settings.db_path, clock, scans_per_owner=settings.heavy_reads_per_token)


@contextmanager
def sync_transaction(settings: Settings, clock: Clock) -> Iterator[Tx]:
    """One write transaction without the daemon (the `signalosd token` commands), committed
    when the block ends; the store is created and migrated if need be. Safe while the daemon
    runs: it publishes the events appended here, in order."""
    with sqlite_transaction(settings.db_path, clock) as tx:
        yield tx


def file_backup() -> FileBackup:
    """The backend's file-level backup mechanics (`signalosd backup|restore`)."""
    return SqliteFileBackup()
