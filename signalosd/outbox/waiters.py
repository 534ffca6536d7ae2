"""Long-poll support (`GET /api/commands/{id}?wait=`, a client's `--wait`): a request waits
for the command's outcome without polling the database.

A published command event for the command wakes its waiters, which then re-read the command
from the database (the source of truth); the event itself is never trusted for the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from signalosd.models import COMMAND_EVENTS, TERMINAL_COMMAND_STATUSES
from signalosd.store import Database, EventRecord


class CommandWaiters:
    """Wake requests waiting on a command when a `command_*` event for it is published."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._closing = False

    def on_event(self, event: EventRecord) -> None:
        # `event.type` is the raw text (read back from the store, too): a str compares equal
        # to its EventType member, so the set lookup needs no conversion.
        if event.type not in COMMAND_EVENTS or not self._waiting:
            return
        command_id = json.loads(event.data_json).get("command_id")
        for fut in self._waiting.get(command_id, ()):
            if not fut.done():
                fut.set_result(None)

    def waiting(self, command_id: str) -> int:
        """How many requests long-poll this command now (a client's `--wait` is in flight)."""
        return len(self._waiting.get(command_id, ()))

    def release_all(self) -> None:
        """Shutdown: answer every pending long-poll now, with the command as it stands, instead
        of holding the exit until the server cuts the request off without a reply."""
        self._closing = True
        for futures in self._waiting.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, account_id: int, command_id: str, seconds: float) -> dict[str, Any] | None:
        """The command once finished, or as it stands when `seconds` have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiting.setdefault(command_id, set()).add(fut)
            try:
                command = await self._db.read(lambda tx: tx.get_command(account_id, command_id))
                remaining = deadline - loop.time()
                if (
                    command is None
                    or command["status"] in TERMINAL_COMMAND_STATUSES
                    or remaining <= 0
                    or self._closing
                ):
                    return command
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, remaining)
            finally:
                waiters = self._waiting.get(command_id)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiting[command_id]
