"""The threads behind the SQLite store's lanes (db.py): each owns one connection and runs
jobs from a queue on it, one at a time; and the per-owner turns of the long-read lane."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable

Job = Callable[[sqlite3.Connection], None]


class Worker(threading.Thread):
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


class Owner:
    """The long reads of one owner (a token): a semaphore and how many hold or wait for it."""

    __slots__ = ("slots", "users")

    def __init__(self, size: int) -> None:
        self.slots = asyncio.Semaphore(size)
        self.users = 0
