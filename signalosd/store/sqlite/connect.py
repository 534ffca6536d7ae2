"""Opening SQLite files: the private state directory and file, and the pragmas every
connection of ours must have."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


def create_private(path: Path) -> None:
    """Create the state directory (0700) and database file (0600) if missing: the database
    holds token hashes and the trade history. SQLite gives its -wal and -shm files the
    database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def connect_sync(path: Path, *, writer: bool) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection of ours must have."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
        # synchronous is per connection: FULL makes a 2xx reply survive power loss.
        conn.execute("PRAGMA synchronous = FULL")
    return conn
