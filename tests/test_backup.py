"""`signalosd backup DEST`: an online, consistent, verified copy of the database.

The copy is one snapshot: it holds every event committed before the backup started, gapless,
while a writer keeps committing during the copy (and is never blocked by it). A restored copy
starts a daemon that serves /readyz, and a client whose cursor is past the restored log gets an
explicit reset.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signalosd.clock import SystemClock
from signalosd.config import Settings
from signalosd.ops.backup import BackupError, backup
from signalosd.store.open import sync_transaction
from signalosd.store.sqlite.migrations import MIGRATIONS
from tests.daemon_process import call, clean_env, daemon_pool, events

CLI_TIMEOUT_S = 60
ACTOR = {"kind": "system", "id": None, "label": "backup-test"}


def backup_cli(state_dir: Path, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "signalosd",
            "backup",
            str(dest),
            "--state-dir",
            str(state_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=clean_env(),
    )


def store_at(db_path: Path) -> Settings:
    """Settings whose store is the database file at `db_path`."""
    settings = Settings(state_dir=db_path.parent)
    assert settings.db_path == db_path
    return settings


def seed(db_path: Path, events: int, padding: int = 400) -> None:
    """A database with some bulk, so that a paged copy takes many steps."""
    with sync_transaction(store_at(db_path), SystemClock()) as tx:
        for n in range(events):
            tx.append_event(None, "backup_test_seed", {"n": n, "pad": "x" * padding}, ACTOR)


def event_seqs(db_path: Path) -> list[int]:
    conn = sqlite3.connect(db_path)
    try:
        return [int(r[0]) for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    finally:
        conn.close()


def head(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


class Writer(threading.Thread):
    """Commits one event per transaction, as fast as it can, until stopped."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(daemon=True)
        self.db_path = db_path
        self.committed: list[int] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.progress = threading.Condition()

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                with sync_transaction(store_at(self.db_path), SystemClock()) as tx:
                    seq = tx.append_event(None, "backup_test_tick", {"n": n}, ACTOR).seq
                with self.progress:
                    self.committed.append(seq)
                    self.progress.notify_all()
                n += 1
        except BaseException as exc:
            self.error = exc

    def wait_for_more_than(self, count: int, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        with self.progress:
            while len(self.committed) <= count:
                left = deadline - time.monotonic()
                assert left > 0, "the writer made no progress while the backup was running"
                assert self.error is None, self.error
                self.progress.wait(left)


# ---- consistency under concurrent writes ------------------------------------------------------


def test_backup_while_a_writer_commits_holds_every_event_before_it_started(tmp_path: Path) -> None:
    db_path = tmp_path / "state" / "signalos.db"
    seed(db_path, 3000)
    dest = tmp_path / "backups" / "signalos-backup.db"
    dest.parent.mkdir()

    writer = Writer(db_path)
    writer.start()
    try:
        writer.wait_for_more_than(20)  # the writer is going
        head_before = head(db_path)
        steps: list[tuple[int, int]] = []

        def progress(status: int, remaining: int, total: int) -> None:
            # Mid-copy, the writer must still be able to commit: the backup holds a read
            # snapshot, never the write lock. Checked on the first steps (keeps the test fast).
            if len(steps) < 5:
                writer.wait_for_more_than(len(writer.committed))
            steps.append((remaining, total))

        done = backup(db_path, dest, pages=16, progress=progress)
    finally:
        writer.stop.set()
        writer.join(10)
    assert writer.error is None, writer.error
    assert len(steps) > 5, f"the copy was not paged: {steps}"
    # Never restarted: the pages left only ever go down.
    assert [r for r, _ in steps] == sorted((r for r, _ in steps), reverse=True)

    assert integrity(dest) == "ok"
    seqs = event_seqs(dest)
    assert done.snapshot_seq >= head_before
    assert seqs == list(range(1, done.snapshot_seq + 1))  # every event up to the snapshot, no gap
    assert set(range(1, head_before + 1)) <= set(seqs)
    assert done.inspection.head_seq == head(dest) == done.snapshot_seq
    assert head(db_path) > done.snapshot_seq  # the writer kept committing after the snapshot
    assert done.inspection.migrations == [name for name, _ in MIGRATIONS]
    assert done.size == dest.stat().st_size

    # One self-contained private file: no journal mode that needs -wal/-shm, nothing left over.
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


# ---- refusals ----------------------------------------------------------------------------


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed(state / "signalos.db", 3)
    dest = tmp_path / "backup.db"
    dest.write_text("an older backup")

    done = backup_cli(state, dest)
    assert done.returncode == 1
    assert "already exists" in done.stderr and "--force" in done.stderr
    assert "Traceback" not in done.stderr
    assert dest.read_text() == "an older backup"
    assert not (tmp_path / "backup.db.tmp").exists()

    done = backup_cli(state, dest, "--force")
    assert done.returncode == 0, done.stderr
    assert integrity(dest) == "ok"
    assert event_seqs(dest) == [1, 2, 3]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_no_database_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "typo"
    dest = tmp_path / "backup.db"
    done = backup_cli(state, dest)
    assert done.returncode == 1
    assert f"no database at {state / 'signalos.db'}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not state.exists()
    assert not dest.exists()
    with pytest.raises(BackupError, match="no database"):
        backup(state / "signalos.db", dest)


def test_refuses_a_directory_or_a_missing_parent(tmp_path: Path) -> None:
    db_path = tmp_path / "state" / "signalos.db"
    seed(db_path, 1)
    with pytest.raises(BackupError, match="is a directory"):
        backup(db_path, tmp_path)
    with pytest.raises(BackupError, match="does not exist"):
        backup(db_path, tmp_path / "nowhere" / "backup.db")


def test_summary_line_names_path_size_seq_and_migrations(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed(state / "signalos.db", 7)
    dest = tmp_path / "backup.db"
    done = backup_cli(state, dest)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert str(dest) in line
    assert f"{dest.stat().st_size} bytes" in line
    assert "last event seq 7" in line
    assert "001_initial,002_agent" in line
    assert "integrity ok" in line


# ---- a running daemon, and restore -------------------------------------------------------------


async def test_backup_of_a_busy_daemon_restores_and_serves(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dest = tmp_path / "backup.db"
    with daemon_pool() as start:
        d = start(state)
        admin = d.admin
        stop = asyncio.Event()
        replies: list[int] = []

        async def hammer(s: aiohttp.ClientSession) -> None:
            paths = ("/api/trading/pause", "/api/trading/resume")
            n = 0
            while not stop.is_set():
                status, body = await call(s, "POST", f"{d.url}{paths[n % 2]}", admin, json={})
                assert status in (200, 202), body
                replies.append(status)
                n += 1

        async with aiohttp.ClientSession() as s:
            task = asyncio.create_task(hammer(s))
            try:
                while len(replies) < 20:
                    await asyncio.sleep(0.02)
                head_before = head(d.db_path)  # a reader beside the daemon (WAL)
                assert head_before > 20
                during = len(replies)
                done = await asyncio.to_thread(backup_cli, state, dest)
                assert done.returncode == 0, done.stderr
                await asyncio.sleep(0.1)
                assert len(replies) > during  # the daemon kept answering
            finally:
                stop.set()
                await task
        d.signal(signal.SIGTERM)
        assert await d.await_exit() == 0

        assert integrity(dest) == "ok"
        seqs = event_seqs(dest)
        assert seqs == list(range(1, seqs[-1] + 1))
        assert seqs[-1] >= head_before

        # Restore into a fresh state directory, as docs/operations.md describes.
        restored = tmp_path / "restored"
        restored.mkdir(mode=0o700)
        shutil.copyfile(dest, restored / "signalos.db")
        (restored / "signalos.db").chmod(0o600)
        r = start(restored)
        assert "event=bootstrap" not in r.output  # the restored accounts and tokens are used
        async with aiohttp.ClientSession() as s:
            status, body = await call(s, "GET", f"{r.url}/readyz")
            assert status == 200 and body["status"] == "ready", body
            got: list[dict[str, Any]] = []
            since = 0
            while True:
                status, body = await call(
                    s, "GET", f"{r.url}/api/events", admin, params={"since": since, "limit": 1000}
                )
                assert status == 200, body
                got += body["events"]
                if not body["events"]:
                    break
                since = body["events"][-1]["seq"]
            assert [e["seq"] for e in got] == seqs
            # A client that saw the newer log (before the restore) is told to reset.
            status, body = await call(
                s, "GET", f"{r.url}/api/events", admin, params={"since": seqs[-1] + 50}
            )
            assert status == 409, body
            assert body["error"]["code"] == "events_reset"
            assert body["error"]["details"]["reason"] == "future"
        r.signal(signal.SIGTERM)
        assert await r.await_exit() == 0


# ---- restore ---------------------------------------------------------------------------------


def _restore(state: Path, src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalosd", "restore", str(src), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


async def test_a_restore_resets_clients_instead_of_reusing_seqs(tmp_path: Path) -> None:
    """After a restore, new events must not reuse seqs that clients saw before it: a client
    resuming from its old cursor gets an explicit reset, never a silent gap."""
    state, backup_file = tmp_path / "state", tmp_path / "b.db"
    with daemon_pool() as start:
        first = start(state)
        async with aiohttp.ClientSession() as s:
            await call(s, "POST", f"{first.url}/api/trading/pause", first.admin)
            done = await asyncio.to_thread(backup_cli, state, backup_file)
            assert done.returncode == 0, done.stderr
            await call(s, "POST", f"{first.url}/api/trading/resume", first.admin)
            before = await events(s, first)
        refused = await asyncio.to_thread(_restore, state, backup_file)
        assert refused.returncode == 1 and "stop it first" in refused.stderr  # daemon running
        first.signal(signal.SIGTERM)
        assert await first.await_exit() == 0

        restored = await asyncio.to_thread(_restore, state, backup_file)
        assert restored.returncode == 0, restored.stderr
        assert list(state.glob("signalos.db.before-restore-*"))  # the old one is kept
        assert "warning" not in restored.stderr  # the backup is stricter (paused), not looser

        second = start(state)
        async with aiohttp.ClientSession() as s:
            old_cursor = before[-1]["seq"]
            status, body = await call(
                s, "GET", f"{second.url}/api/events", second.admin, params={"since": old_cursor}
            )
            assert status == 409 and body["error"]["code"] == "events_reset", body
            base = body["error"]["details"]["pruned_through"]
            assert base > old_cursor
            _, state_now = await call(s, "GET", f"{second.url}/api/trading/state", second.admin)
            assert state_now["mode"] == "paused"  # as it was when the backup was taken
            await call(s, "POST", f"{second.url}/api/trading/resume", second.admin)
            status, body = await call(
                s, "GET", f"{second.url}/api/events", second.admin, params={"since": base}
            )
            assert status == 200
            assert body["events"][0]["seq"] == base + 1
            assert body["events"][0]["type"] == "database_restored"


async def test_a_restore_keeps_a_halt_the_backup_does_not_have(tmp_path: Path) -> None:
    """A backup taken while running, restored after an emergency stop: the desk must not trade
    again by itself, nor the backup bring back the entry the stop cancelled. The restored
    database stays halted, in a newer halt generation, and says why."""
    state, backup_file = tmp_path / "state", tmp_path / "b.db"
    signal_body = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
    with daemon_pool() as start:
        first = start(state)
        async with aiohttp.ClientSession() as s:
            _, entry = await call(
                s, "POST", f"{first.url}/api/signals", first.admin, json=signal_body
            )
            done = await asyncio.to_thread(backup_cli, state, backup_file)
            assert done.returncode == 0, done.stderr
            _, stop = await call(s, "POST", f"{first.url}/api/trading/emergency-stop", first.admin)
        first.signal(signal.SIGTERM)
        assert await first.await_exit() == 0
        restored = await asyncio.to_thread(_restore, state, backup_file)
        assert restored.returncode == 0, restored.stderr
        assert (
            "warning: account default was halted before the restore and is running in the "
            "backup: it stays halted (lift it with 'signalos --account default resume "
            "--from-halt' once it should trade)" in restored.stderr
        )
        second = start(state)
        async with aiohttp.ClientSession() as s:
            _, now = await call(s, "GET", f"{second.url}/api/trading/state", second.admin)
            command_id = entry["command"]["id"]
            _, command = await call(
                s, "GET", f"{second.url}/api/commands/{command_id}", second.admin
            )
            url = f"{second.url}/api/events"
            _, reset = await call(s, "GET", url, second.admin)  # the old seqs count as pruned
            since = {"since": reset["error"]["details"]["pruned_through"]}
            _, after = await call(s, "GET", url, second.admin, params=since)
            kept = [e for e in after["events"] if e["type"] == "mode_kept_by_restore"]
    assert now["mode"] == "halted" and now["halt_gen"] > stop["halt_gen"]
    assert command["command"]["status"] == "cancelled"  # the backup's entry stays fenced off
    assert [k["data"]["backup_mode"] for k in kept] == ["running"]
