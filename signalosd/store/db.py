"""The SQLite database: one writer thread, one reader thread, whole-transaction functions.

Why not a connection shared by coroutines: statements of concurrent coroutines would interleave
into one transaction. Here a write is a plain function run start to finish inside
`BEGIN IMMEDIATE … COMMIT` on the single writer thread (the writer thread is the lock), and the
events it appended are published from the event loop strictly in commit order, only after COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..clock import Clock, iso
from .migrations import apply_migrations
from .records import EventRecord
from .tx import Tx

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


class _Worker(threading.Thread):
    """A thread that owns one connection and runs jobs on it one at a time."""

    def __init__(self, name: str, conn: sqlite3.Connection) -> None:
        super().__init__(name=name, daemon=True)
        self.conn = conn
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                break
            job()
        self.conn.close()


class Database:
    """Async face of the store. `on_commit` receives each committed batch of events, in order."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self.on_commit: Callable[[list[EventRecord]], None] = lambda events: None
        self._writer: _Worker | None = None
        self._reader: _Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen_seq = 0  # highest event seq published (or known) by this process

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        create_private(self.path)
        writer_conn = connect_sync(self.path, writer=True)
        applied = apply_migrations(writer_conn, iso(self.clock.now()))
        for name in applied:
            log.info("event=migration_applied name=%s db=%s", name, self.path)
        self._seen_seq = Tx(writer_conn, self.clock.now()).head_seq()
        self._writer = _Worker("sqlite-writer", writer_conn)
        self._reader = _Worker("sqlite-reader", connect_sync(self.path, writer=False))
        self._writer.start()
        self._reader.start()

    async def close(self) -> None:
        for worker in (self._writer, self._reader):
            if worker is not None:
                worker.jobs.put(None)
        for worker in (self._writer, self._reader):
            if worker is not None:
                await asyncio.to_thread(worker.join)
        self._writer = self._reader = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def _submit(
        self,
        worker: _Worker | None,
        job: Callable[[sqlite3.Connection], Any],
        deliver: Callable[[asyncio.Future[Any], Any], None],
    ) -> asyncio.Future[Any]:
        if worker is None or self._loop is None:
            raise RuntimeError("database is not open")
        loop = self._loop
        fut: asyncio.Future[Any] = loop.create_future()

        def run() -> None:
            try:
                outcome: Any = ("ok", job(worker.conn))
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = ("err", exc)
            loop.call_soon_threadsafe(deliver, fut, outcome)

        worker.jobs.put(run)
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

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` on the reader connection inside one read transaction (a consistent view)."""

        def job(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(Tx(conn, self.clock.now()))
            finally:
                conn.execute("COMMIT")

        result: T = await self._submit(self._reader, job, self._resolve)
        return result


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
