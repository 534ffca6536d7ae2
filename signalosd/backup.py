"""`signalosd backup DEST`: an online, verified copy of the database to one file.

The copy is written to DEST.tmp (mode 0600 from its creation: it holds token hashes and the
trade history), checked (`PRAGMA integrity_check`), fsynced, then renamed over DEST, so DEST is
either absent, the previous file, or a complete, checked backup; never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .store.backup import PAGES_PER_STEP, Inspection, copy_database, inspect


class BackupError(Exception):
    """The backup was not made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    snapshot_seq: int
    inspection: Inspection

    def summary(self) -> str:
        i = self.inspection
        events = f"{i.events} events" + (f" (seq {i.first_seq}..{i.last_seq})" if i.events else "")
        return (
            f"backup {self.path}: {self.size} bytes, last event seq {i.head_seq}, {events}, "
            f"migrations {','.join(i.migrations) or '-'}, integrity ok"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    for p in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def backup(
    db_path: Path,
    dest: Path,
    *,
    force: bool = False,
    pages: int = PAGES_PER_STEP,
    progress: Callable[[int, int, int], object] | None = None,
) -> BackupResult:
    """Copy the database at `db_path` to `dest`, with the daemon running or not."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}; check --state-dir (or --config)")
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory; give the backup file's path")
    if dest.exists() and not force:
        raise BackupError(f"{dest} already exists; pass --force to overwrite it")
    if not dest.parent.is_dir():
        raise BackupError(f"directory {dest.parent} does not exist")
    if dest.resolve() == db_path.resolve():
        raise BackupError("the backup cannot replace the database itself")
    tmp = dest.with_name(dest.name + ".tmp")
    _remove(tmp)  # left over from an interrupted backup
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.chmod(tmp, 0o600)
            snapshot = copy_database(db_path, tmp, pages=pages, progress=progress)
            found = inspect(tmp)
        except (sqlite3.Error, OSError) as exc:
            raise BackupError(f"backup of {db_path} to {dest} failed: {exc}") from exc
        if found.integrity != "ok":
            raise BackupError(f"the copy failed its integrity check: {found.integrity}")
        if found.head_seq != snapshot.head_seq:
            raise BackupError(
                f"the copy's event head {found.head_seq} is not the snapshot's {snapshot.head_seq}"
            )
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        except OSError as exc:
            raise BackupError(f"cannot move the backup into place at {dest}: {exc}") from exc
    except BaseException:
        _remove(tmp)
        raise
    return BackupResult(dest, size, snapshot.head_seq, found)
