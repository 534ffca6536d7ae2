"""The SQLite database: one writer thread, reader lanes, whole-transaction functions.

Why not a connection shared by coroutines: statements of concurrent coroutines would interleave
into one transaction. Here a write is a plain function run start to finish inside
`BEGIN IMMEDIATE … COMMIT` on the single writer thread (the writer thread is the lock), and the
events it appended are published from the event loop strictly in commit order, only after COMMIT.

Reads go to one of two lanes, each its own connections and threads, so that no client's long
read can delay a token check or an emergency stop (DESIGN invariant 11):

- `read`: short point reads (a token, an account, the trading state, a command's status) on
  one thread that long reads never occupy;
- `scan`: long reads (event pages, replays, reset snapshots, lists) on a small pool, at most
  `scans_per_owner` at once per owner (a token): the rest wait their turn, holding nothing.

Housekeeping is off the writer's path too: the writer runs with `wal_autocheckpoint = 0` (else
the COMMIT that crosses 1,000 WAL pages, maybe an emergency stop's, copies them all into the
database file first), and `checkpoint()` runs PASSIVE checkpoints on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from signalosd.clock import Clock, iso
from signalosd.store.records import EventRecord
from signalosd.store.sqlite.migrations import apply_migrations
from signalosd.store.sqlite.tx import Tx

T = TypeVar("T")
log = logging.getLogger("signalosd.store")

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


SCAN_THREADS = 2  # the long-read pool (the machine this targets has 2 cores)
BACKGROUND_NICE = 10  # long reads and checkpoints (see Database.open)
WAL_RESTART_FRAMES = 100_000  # ~400 MiB of WAL: see Database.checkpoint

Job = Callable[[sqlite3.Connection], None]


class _Worker(threading.Thread):
    """A thread that owns one connection and runs jobs from a queue on it, one at a time (the
    scan pool's threads share one queue)."""

    def __init__(
        self,
        name: str,
        conn: sqlite3.Connection,
        jobs: queue.SimpleQueue[Job | None],
        niceness: int = 0,
    ):
        super().__init__(name=name, daemon=True)
        self.conn = conn
        self.jobs = jobs
        self.niceness = niceness

    def run(self) -> None:
        if self.niceness:
            _lower_priority(self.niceness)
        while True:
            job = self.jobs.get()
            if job is None:
                break
            job(self.conn)
        self.conn.close()


def _lower_priority(niceness: int) -> None:
    """Give this thread a lower CPU priority than the event loop's and the writer's (Linux
    schedules threads one by one: setpriority on the thread id affects this thread alone)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class _Owner:
    """The long reads of one owner (a token): a semaphore and how many hold or wait for it."""

    __slots__ = ("slots", "users")

    def __init__(self, size: int) -> None:
        self.slots = asyncio.Semaphore(size)
        self.users = 0


class Database:
    """Async face of the store. `on_commit` receives each committed batch of events, in order."""

    def __init__(self, path: Path, clock: Clock, *, scans_per_owner: int = 2) -> None:
        self.path = path
        self.clock = clock
        self.on_commit: Callable[[list[EventRecord]], None] = lambda events: None
        self.scans_per_owner = scans_per_owner
        self.scans_waiting = 0  # long reads waiting for their owner's turn (observability)
        self.scans_pending = 0  # long reads handed to the pool and not finished yet
        self.checkpoints = 0  # background checkpoints run
        self._workers: list[_Worker] = []
        self._writer: queue.SimpleQueue[Job | None] | None = None
        self._reader: queue.SimpleQueue[Job | None] | None = None
        self._scanner: queue.SimpleQueue[Job | None] | None = None
        self._checkpointer: queue.SimpleQueue[Job | None] | None = None
        self._owners: dict[str, _Owner] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen_seq = 0  # highest event seq published (or known) by this process
        self._commits = 0  # writes committed; compared with the last complete checkpoint
        self._checkpointed = 0

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        create_private(self.path)
        writer_conn = connect_sync(self.path, writer=True)
        applied = apply_migrations(writer_conn, iso(self.clock.now()))
        for name in applied:
            log.info("event=migration_applied name=%s db=%s", name, self.path)
        # Checkpoints run in the background (checkpoint()), never inside one of our COMMITs.
        writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._seen_seq = Tx(writer_conn, self.clock.now()).head_seq()
        self._writer = self._lane("sqlite-writer", [writer_conn])
        self._reader = self._lane("sqlite-reader", [self._reader_conn()])
        # Long reads and checkpoints run at a lower CPU priority: on a busy machine the event
        # loop and the writer (an emergency stop's path) get the cores first.
        self._scanner = self._lane(
            "sqlite-scan", [self._reader_conn() for _ in range(SCAN_THREADS)], BACKGROUND_NICE
        )
        self._checkpointer = self._lane("sqlite-checkpoint", [self._reader_conn()], BACKGROUND_NICE)

    def _reader_conn(self) -> sqlite3.Connection:
        return connect_sync(self.path, writer=False)

    def _lane(
        self, name: str, conns: list[sqlite3.Connection], niceness: int = 0
    ) -> queue.SimpleQueue[Job | None]:
        jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        for i, conn in enumerate(conns):
            worker = _Worker(name if len(conns) == 1 else f"{name}-{i}", conn, jobs, niceness)
            self._workers.append(worker)
            worker.start()
        return jobs

    async def close(self) -> None:
        for worker in self._workers:
            worker.jobs.put(None)  # one stop per thread: a shared queue gets several
        for worker in self._workers:
            await asyncio.to_thread(worker.join)
        self._workers = []
        self._writer = self._reader = self._scanner = self._checkpointer = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def _submit(
        self,
        jobs: queue.SimpleQueue[Job | None] | None,
        job: Callable[[sqlite3.Connection], Any],
        deliver: Callable[[asyncio.Future[Any], Any], None],
        *,
        skip_if_abandoned: bool = False,
    ) -> asyncio.Future[Any]:
        if jobs is None or self._loop is None:
            raise RuntimeError("database is not open")
        loop = self._loop
        fut: asyncio.Future[Any] = loop.create_future()

        def run(conn: sqlite3.Connection) -> None:
            if skip_if_abandoned and fut.cancelled():
                outcome: Any = ("abandoned", None)  # a read nobody waits for any more
            else:
                try:
                    outcome = ("ok", job(conn))
                except BaseException as exc:  # handed to the awaiting coroutine
                    outcome = ("err", exc)
            loop.call_soon_threadsafe(deliver, fut, outcome)

        jobs.put(run)
        return fut

    @staticmethod
    def _resolve(fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
        if fut.cancelled():
            return
        if outcome[0] == "ok":
            fut.set_result(outcome[1])
        else:
            fut.set_exception(outcome[1])

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction; publish its events after COMMIT."""

        def job(conn: sqlite3.Connection) -> tuple[T, list[EventRecord]]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = Tx(conn, self.clock.now())
                external = self._external_events(tx)
                result = fn(tx)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may already have rolled back
                    conn.execute("ROLLBACK")
                raise
            # Only now are they certain to be published (a failed `fn` leaves them for the
            # next transaction or poll to pick up again).
            published = external + tx.events
            if published:
                self._seen_seq = published[-1].seq
            return result, published

        def deliver(fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
            if outcome[0] == "ok":
                self._commits += 1
                result, events = outcome[1]
                outcome = ("ok", result)
                try:
                    if events:
                        self.on_commit(events)  # committed: publish even if the caller went away
                except Exception:
                    log.exception("event=publish_failed first_seq=%d", events[0].seq)
            self._resolve(fut, outcome)

        result: T = await self._submit(self._writer, job, deliver)
        return result

    def _external_events(self, tx: Tx) -> list[EventRecord]:
        """Events another process (e.g. `signalosd token create`) committed since we last looked.

        Runs on the writer thread, so it is ordered with our own commits and the stream that
        subscribers see stays gapless."""
        head = tx.head_seq()
        if head <= self._seen_seq:
            return []
        return tx.read_events(self._seen_seq, head - self._seen_seq, None, upto=head)

    async def poll_external(self) -> None:
        """Publish events committed by other processes while this one was idle."""

        def job(conn: sqlite3.Connection) -> list[EventRecord]:
            events = self._external_events(Tx(conn, self.clock.now()))
            if events:
                self._seen_seq = events[-1].seq
            return events

        def deliver(fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
            if outcome[0] == "ok" and outcome[1]:
                self.on_commit(outcome[1])
            self._resolve(fut, ("ok", None) if outcome[0] == "ok" else outcome)

        await self._submit(self._writer, job, deliver)

    def _read_job(self, fn: Callable[[Tx], T]) -> Callable[[sqlite3.Connection], T]:
        def job(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(Tx(conn, self.clock.now()))
            finally:
                conn.execute("COMMIT")

        return job

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """A short point read (a token, an account, the trading state, a command's status) in
        one read transaction (a consistent view), on the point-read lane. Long reads must use
        `scan`: anything slow here would delay every token check."""
        fut = self._submit(self._reader, self._read_job(fn), self._resolve, skip_if_abandoned=True)
        result: T = await fut
        return result

    async def scan(self, fn: Callable[[Tx], T], *, owner: str | None = None) -> T:
        """A long read (a page of events, a snapshot, a list) in one read transaction, on the
        scan pool. At most `scans_per_owner` run at once per `owner` (a token id); the others
        wait here, in order, until one of the owner's reads has finished on its thread (not
        merely been given up by its caller, so abandoned requests cannot pile work up)."""
        job = self._read_job(fn)
        if owner is None:
            fut = self._submit(self._scanner, job, self._scanned, skip_if_abandoned=True)
            self.scans_pending += 1
            result: T = await fut
            return result
        slot = self._owners.get(owner)
        if slot is None:
            slot = self._owners[owner] = _Owner(self.scans_per_owner)
        slot.users += 1
        self.scans_waiting += 1
        try:
            await slot.slots.acquire()
        except BaseException:
            self._leave(owner, slot, holding=False)
            raise
        finally:
            self.scans_waiting -= 1

        def deliver(fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
            self._leave(owner, slot, holding=True)
            self._scanned(fut, outcome)

        try:
            fut = self._submit(self._scanner, job, deliver, skip_if_abandoned=True)
        except BaseException:
            self._leave(owner, slot, holding=True)
            raise
        self.scans_pending += 1
        result = await fut
        return result

    def _scanned(self, fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
        self.scans_pending -= 1
        self._resolve(fut, outcome)

    def _leave(self, owner: str, slot: _Owner, *, holding: bool) -> None:
        if holding:
            slot.slots.release()
        slot.users -= 1
        if slot.users == 0 and self._owners.get(owner) is slot:
            del self._owners[owner]

    @property
    def wal_dirty(self) -> bool:
        """Whether something was committed since the last complete checkpoint."""
        return self._commits != self._checkpointed

    async def checkpoint(self) -> bool:
        """Copy committed WAL frames into the database file (PASSIVE: it never waits for, nor
        blocks, the writer or a reader) on the checkpointer's own connection and thread, if
        anything was committed since the last complete checkpoint. Run in the background
        (app.py, every `wal_checkpoint_interval_s`); whether it ran.

        The WAL starts over only after a checkpoint that copied every frame; one that keeps
        racing back-to-back commits may never get there. Past `WAL_RESTART_FRAMES` a RESTART
        checkpoint forces it: it holds off writers only while it copies the frames the
        PASSIVE ones left, and only in that rare case (logged)."""
        mark = self._commits
        if not self.wal_dirty:
            return False

        def job(conn: sqlite3.Connection) -> tuple[int, int, int]:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= WAL_RESTART_FRAMES and copied < frames:
                log.warning("event=wal_restart_checkpoint frames=%d copied=%d", frames, copied)
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            return int(busy), int(frames), int(copied)

        busy, frames, copied = await self._submit(self._checkpointer, job, self._resolve)
        self.checkpoints += 1
        if not busy and copied >= frames:
            self._checkpointed = mark  # else a reader still needed old frames: next time
        return True


@contextmanager
def sync_transaction(path: Path, clock: Clock) -> Iterator[Tx]:
    """A write transaction without the daemon (the `signalosd token` commands).

    Safe while the daemon runs: WAL plus BEGIN IMMEDIATE with a busy timeout; the daemon's
    writer notices the events appended here and publishes them in order."""
    create_private(path)
    conn = connect_sync(path, writer=True)
    try:
        apply_migrations(conn, iso(clock.now()))
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(conn, clock.now())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
