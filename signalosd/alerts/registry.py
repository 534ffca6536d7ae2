"""The running webhooks: one delivery worker (sender.py) per webhook, started with the app
and on creation, stopped on deletion and at shutdown, woken by the bus.

All workers share one aiohttp ClientSession (one connection pool); each runs as a task of its
own, so a receiver that never answers stalls only its own worker. Shutdown cancels them under
a deadline: an attempt in flight is abandoned (it is sent again after the restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from signalosd import __version__
from signalosd.alerts.backoff import Backoff
from signalosd.alerts.sender import Hook, Worker
from signalosd.clock import Clock
from signalosd.config import Settings
from signalosd.store import Database, EventRecord

log = logging.getLogger("signalosd.alerts")


class Webhooks:
    def __init__(
        self, db: Database, clock: Clock, settings: Settings, head: Callable[[], int]
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._head = head
        self._workers: dict[int, tuple[Worker, asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None

    def __len__(self) -> int:
        return len(self._workers)

    async def start(self) -> None:
        """Open the shared session and start a worker for every stored webhook."""
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": f"signalosd/{__version__}"}, trust_env=False
        )
        for row in await self._db.read(lambda tx: tx.webhooks()):
            self.add(row)
        log.info("event=webhooks_started count=%d", len(self._workers))

    def add(self, row: dict[str, Any]) -> None:
        """Start delivering a webhook (a row of the store, as created)."""
        if self._session is None:
            raise RuntimeError("webhooks are not started: the app's cleanup context starts them")
        s = self._settings
        hook = Hook.of(row)
        worker = Worker(
            hook,
            self._db,
            self._session,
            self._clock,
            s,
            self._head,
            Backoff(s.webhook_retry_first_s, s.webhook_retry_max_s),
        )
        task = asyncio.get_running_loop().create_task(worker.run(), name=f"webhook-{hook.id}")
        self._workers[hook.id] = (worker, task)

    async def remove(self, webhook_id: int) -> None:
        """Stop a deleted webhook's worker (an attempt in flight is abandoned)."""
        entry = self._workers.pop(webhook_id, None)
        if entry is not None:
            await self._cancel([entry[1]])

    def on_event(self, event: EventRecord) -> None:
        """The bus listener: never blocks, never awaits."""
        for worker, _ in self._workers.values():
            worker.notice(event)

    async def stop(self) -> None:
        """Cancel every worker (under a deadline), then close the session."""
        tasks = [task for _, task in self._workers.values()]
        self._workers.clear()
        await self._cancel(tasks)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        deadline = self._settings.ws_close_timeout_s
        _, stuck = await asyncio.wait(tasks, timeout=deadline)
        if stuck:
            log.warning("event=webhook_workers_stuck count=%d deadline_s=%g", len(stuck), deadline)
