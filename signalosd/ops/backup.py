"""`signalosd backup DEST` and `signalosd restore SRC`.

Backup: an online, verified copy of the database to one file.

The copy is written to DEST.tmp (mode 0600 from its creation: it holds token hashes and the
trade history), checked (`PRAGMA integrity_check`), fsynced, then renamed over DEST, so DEST is
either absent, the previous file, or a complete, checked backup; never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from signalosd.models import Actor, ActorKind, CommandType, EventType, Mode
from signalosd.outbox.cancel import cancel_fenced, cancel_unfinished
from signalosd.store import StoreError, Tx
from signalosd.store.file_backup import Inspection
from signalosd.store.open import file_backup

RESTORE_ACTOR = Actor(
    kind=ActorKind.LOCAL, id=f"uid:{os.getuid()}", label="signalosd restore"
).recorded()


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
    pages: int | None = None,
    progress: Callable[[int, int, int], object] | None = None,
) -> BackupResult:
    """Copy the database at `db_path` to `dest`, with the daemon running or not (`pages` per
    step: None, the store's default)."""
    files = file_backup()
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
            snapshot = files.copy(db_path, tmp, pages=pages, progress=progress)
            found = files.inspect(tmp)
        except (StoreError, OSError) as exc:
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


RESTORE_MARGIN = 10**9  # seqs skipped when the replaced database cannot be read


# How far each mode is from trading freely: a restore never lowers it.
_STRICTNESS: dict[str, int] = {Mode.RUNNING: 0, Mode.PAUSED: 1, Mode.HALTED: 2}
# How an operator lifts each mode, once it should trade again.
_TO_LIFT: dict[str, str] = {Mode.PAUSED: "resume", Mode.HALTED: "resume --from-halt"}


@dataclass(frozen=True)
class RestoreResult:
    db_path: Path
    aside: Path | None  # where the replaced database was moved
    backup_head: int
    base: int  # new events continue after this seq
    # (account, mode before the restore, mode in the backup) where the backup traded more
    # freely: the restored database keeps the stricter mode of before.
    kept: tuple[tuple[str, str, str], ...] = ()

    def summary(self) -> str:
        moved = f"; the previous database is at {self.aside}" if self.aside else ""
        return (
            f"restored {self.db_path} from a backup ending at seq {self.backup_head}; new events "
            f"continue after seq {self.base}, and clients resuming from before get a reset{moved}"
        )

    def warnings(self) -> list[str]:
        """One line per account whose stricter mode the restore kept."""
        return [
            f"account {account} was {before} before the restore and is {after} in the backup: "
            f"it stays {before} (lift it with 'signalos --account {account} "
            f"{_TO_LIFT[before]}' once it should trade)"
            for account, before, after in self.kept
        ]


def _stricter(
    before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]
) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (account, mode, after[account][0])
        for account, (mode, _) in sorted(before.items())
        if account in after
        and _STRICTNESS.get(after[account][0], 0) < _STRICTNESS.get(mode, 0)
        and mode in _TO_LIFT
    )


def _fail_closed(
    tx: Tx, before: dict[str, tuple[str, int]], kept: tuple[tuple[str, str, str], ...]
) -> None:
    """In the restored database: no account's halt generation goes below what its agent may
    already know, and an account that was stricter before keeps that mode. A kept halt is a
    new generation that cancels the backup's unfinished entries and resumes, exactly as an
    emergency stop would: the backup must not bring back what the stop fenced off."""
    ids = {str(a["name"]): int(a["id"]) for a in tx.list_accounts()}
    for account, (_, halt_gen) in before.items():
        if account in ids:
            tx.raise_halt_gen(ids[account], halt_gen)
    for account, mode, backup_mode in kept:
        account_id = ids[account]
        reason = f"kept by signalosd restore: {mode} before the restore"
        tx.set_mode(account_id, mode, reason)
        if mode == Mode.HALTED:
            halt_gen = tx.next_halt_gen(account_id)
            cancelled = cancel_fenced(tx, account_id, halt_gen, RESTORE_ACTOR)
        else:  # paused: no entry from the backup's time may run
            cancelled = cancel_unfinished(
                tx, account_id, [CommandType.OPEN_TRADE], reason, RESTORE_ACTOR
            )
        tx.append_event(
            account_id,
            "mode_kept_by_restore",
            {
                "mode": mode,
                "backup_mode": backup_mode,
                "halt_gen": tx.get_state(account_id)["halt_gen"],
                "cancelled_commands": cancelled,
            },
            RESTORE_ACTOR,
        )


def restore(src: Path, db_path: Path) -> RestoreResult:
    """Put a backup in place of the database (the daemon must be stopped: the caller holds the
    state directory's lock). The replaced database is moved aside, never deleted.

    New events continue above every seq the replaced database had handed out, and everything
    up to there counts as pruned: a client resuming with a cursor from before the restore gets
    an explicit reset instead of silently missing events whose seqs would be reused."""
    if not src.is_file():
        raise BackupError(f"no backup file at {src}")
    files = file_backup()
    try:
        found = files.inspect(src)
    except StoreError as exc:
        raise BackupError(f"{src} is not a readable signalosd database: {exc}") from None
    if found.integrity != "ok":
        raise BackupError(f"{src} fails its integrity check: {found.integrity}")
    if "001_initial" not in found.migrations:
        raise BackupError(f"{src} is not a signalosd database (no schema migrations)")
    old_head = files.head_seq_of(db_path) if db_path.exists() else None
    old_modes = files.modes_of(db_path) if db_path.exists() else {}
    aside = None
    if db_path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = db_path.with_name(db_path.name + suffix)
            if part.exists():
                os.replace(part, aside.with_name(aside.name + suffix))
    tmp = db_path.with_name(db_path.name + ".restore.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        shutil.copyfile(src, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, db_path)
        _fsync_dir(db_path.parent)
    except OSError as exc:
        _remove(tmp)
        raise BackupError(f"cannot put {src} in place at {db_path}: {exc}") from exc
    if old_head is None:
        base = found.head_seq + (RESTORE_MARGIN if aside is not None else 0)
    else:
        base = max(found.head_seq, old_head) + 1
    data = {
        "backup": str(src),
        "backup_last_seq": found.head_seq,
        "previous_last_seq": old_head,
        "continues_after": base,
    }
    kept = _stricter(old_modes, files.modes_of(db_path))

    def restored(tx: Tx) -> None:
        tx.append_event(None, EventType.DATABASE_RESTORED, data, RESTORE_ACTOR)
        _fail_closed(tx, old_modes, kept)

    files.restart_numbering(db_path, base, restored)
    return RestoreResult(db_path, aside, found.head_seq, base, kept)
