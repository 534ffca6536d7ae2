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
import logging
import queue
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from signalosd.clock import Clock, iso
from signalosd.store.records import EventRecord
from signalosd.store.sqlite.connect import connect_sync, create_private
from signalosd.store.sqlite.errors import as_store_error, store_errors
from signalosd.store.sqlite.lanes import Job, Owner, Worker
from signalosd.store.sqlite.migrations import apply_migrations
from signalosd.store.sqlite.schema import Schema
from signalosd.store.sqlite.tx import SqliteTx

T = TypeVar("T")
log = logging.getLogger("signalosd.store")

SCAN_THREADS = 2  # the long-read pool (the machine this targets has 2 cores)
BACKGROUND_NICE = 10  # long reads and checkpoints (see SqliteDatabase.open)
WAL_RESTART_FRAMES = 100_000  # ~400 MiB of WAL: see SqliteDatabase.checkpoint


class SqliteDatabase:
    """The store interface's Database (store/database.py) over one SQLite file. `on_commit`
    receives each committed batch of events, in order; sqlite3 errors reach callers as
    StoreError."""

    def __init__(self, path: Path, clock: Clock, *, scans_per_owner: int = 2) -> None:
        self.path = path
        self.clock = clock
        self.on_commit: Callable[[list[EventRecord]], None] = lambda events: None
        self.scans_per_owner = scans_per_owner
        self.scans_waiting = 0  # long reads waiting for their owner's turn (observability)
        self.scans_pending = 0  # long reads handed to the pool and not finished yet
        self.checkpoints = 0  # background checkpoints run
        self._workers: list[Worker] = []
        self._writer: queue.SimpleQueue[Job | None] | None = None
        self._reader: queue.SimpleQueue[Job | None] | None = None
        self._scanner: queue.SimpleQueue[Job | None] | None = None
        self._checkpointer: queue.SimpleQueue[Job | None] | None = None
        self._owners: dict[str, Owner] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen_seq = 0  # highest event seq published (or known) by this process
        self._commits = 0  # writes committed; compared with the last complete checkpoint
        self._checkpointed = 0
        self._schema = Schema({}, {})  # read from the database itself once it is open

    async def open(self) -> None:
        with store_errors():
            self._open()

    def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        create_private(self.path)
        writer_conn = connect_sync(self.path, writer=True)
        applied = apply_migrations(writer_conn, iso(self.clock.now()))
        for name in applied:
            log.info("event=migration_applied name=%s db=%s", name, self.path)
        self._schema = Schema.read(writer_conn)
        # Checkpoints run in the background (checkpoint()), never inside one of our COMMITs.
        writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._seen_seq = self._tx(writer_conn).head_seq()
        self._writer = self._lane("sqlite-writer", [writer_conn])
        self._reader = self._lane("sqlite-reader", [self._reader_conn()])
        # Long reads and checkpoints run at a lower CPU priority: on a busy machine the event
        # loop and the writer (an emergency stop's path) get the cores first.
        self._scanner = self._lane(
            "sqlite-scan", [self._reader_conn() for _ in range(SCAN_THREADS)], BACKGROUND_NICE
        )
        self._checkpointer = self._lane("sqlite-checkpoint", [self._reader_conn()], BACKGROUND_NICE)

    def _tx(self, conn: sqlite3.Connection) -> SqliteTx:
        return SqliteTx(conn, self.clock.now(), self._schema)

    def _reader_conn(self) -> sqlite3.Connection:
        return connect_sync(self.path, writer=False)

    def _lane(
        self, name: str, conns: list[sqlite3.Connection], niceness: int = 0
    ) -> queue.SimpleQueue[Job | None]:
        jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        for i, conn in enumerate(conns):
            worker = Worker(name if len(conns) == 1 else f"{name}-{i}", conn, jobs, niceness)
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
                    outcome = ("err", as_store_error(exc))
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

    async def write(self, fn: Callable[[SqliteTx], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction; publish its events after COMMIT."""

        def job(conn: sqlite3.Connection) -> tuple[T, list[EventRecord]]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = self._tx(conn)
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

    def _external_events(self, tx: SqliteTx) -> list[EventRecord]:
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
            events = self._external_events(self._tx(conn))
            if events:
                self._seen_seq = events[-1].seq
            return events

        def deliver(fut: asyncio.Future[Any], outcome: tuple[str, Any]) -> None:
            if outcome[0] == "ok" and outcome[1]:
                self.on_commit(outcome[1])
            self._resolve(fut, ("ok", None) if outcome[0] == "ok" else outcome)

        await self._submit(self._writer, job, deliver)

    def _read_job(self, fn: Callable[[SqliteTx], T]) -> Callable[[sqlite3.Connection], T]:
        def job(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(self._tx(conn))
            finally:
                conn.execute("COMMIT")

        return job

    async def read(self, fn: Callable[[SqliteTx], T]) -> T:
        """A short point read (a token, an account, the trading state, a command's status) in
        one read transaction (a consistent view), on the point-read lane. Long reads must use
        `scan`: anything slow here would delay every token check."""
        fut = self._submit(self._reader, self._read_job(fn), self._resolve, skip_if_abandoned=True)
        result: T = await fut
        return result

    async def scan(self, fn: Callable[[SqliteTx], T], *, owner: str | None = None) -> T:
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
            slot = self._owners[owner] = Owner(self.scans_per_owner)
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

    def _leave(self, owner: str, slot: Owner, *, holding: bool) -> None:
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
