"""The agent's two queues: commands waiting for the worker, reports waiting for the daemon.

`CommandQueue` runs commands in arrival order, except that an `emergency_stop` goes ahead of
every command not yet started (behind earlier emergency stops). It also remembers which ids are
queued or running, so a redelivery of one of them is only acked, not queued twice. When the
connection ends, the commands not yet started are dropped (all but emergency stops): the
daemon sends again whatever still stands on the next connection.

`ReportQueue` holds the agent's messages to the daemon (reports, results, acks) in order, across
disconnects. (Not an outbox: that word is the daemon's durable command queue.) It is bounded:
on overflow the oldest droppable message goes (a `trade_update`: the snapshot sent after the
reconnect supersedes it); a `command_result` is never dropped. Messages that only make sense on
the connection they were made for (acks, force_sync snapshots, status updates) are dropped when
that connection ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from signalosd.models import CommandType

log = logging.getLogger("signalos.agent.queues")


class CommandQueue:
    def __init__(self) -> None:
        self._items: deque[Mapping[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._pending: set[str] = set()  # queued or running

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._pending

    def put(self, command: Mapping[str, Any]) -> bool:
        """Queue a command; False (nothing queued) when it is already queued or running."""
        command_id = str(command.get("id"))
        if command_id in self._pending:
            return False
        self._pending.add(command_id)
        if command.get("type") == CommandType.EMERGENCY_STOP:
            at = 0
            while at < len(self._items) and self._items[at].get("type") == command["type"]:
                at += 1
            self._items.insert(at, command)
        else:
            self._items.append(command)
        self._ready.set()
        return True

    async def get(self) -> Mapping[str, Any]:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def done(self, command_id: str) -> None:
        self._pending.discard(command_id)

    def drop_unstarted(self, keep: str) -> int:
        """Forget every command not yet started except those of type `keep`; how many went.
        (The one running, if any, is not in the queue: it finishes.)"""
        kept = deque(c for c in self._items if c.get("type") == keep)
        dropped = [c for c in self._items if c.get("type") != keep]
        self._items = kept
        for command in dropped:
            self._pending.discard(str(command.get("id")))
        return len(dropped)


class Kind(Enum):
    RESULT = "result"  # never dropped
    UPDATE = "update"  # dropped first on overflow
    CONNECTION = "connection"  # dropped when the connection ends


@dataclass(frozen=True, slots=True)
class Outgoing:
    kind: Kind
    type: str
    data: dict[str, Any]


class ReportQueue:
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.dropped = 0
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Outgoing]:
        return list(self._items)

    def put(self, kind: Kind, type_: str, data: dict[str, Any]) -> None:
        if len(self._items) >= self.limit:
            self._drop_oldest()
        self._items.append(Outgoing(kind, type_, data))
        self._ready.set()

    def _drop_oldest(self) -> None:
        for at, item in enumerate(self._items):
            if item.kind is not Kind.RESULT:
                del self._items[at]
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning(  # the key predates the name ReportQueue: kept for log readers
                        "event=outbox_overflow dropped_total=%s type=%s limit=%s",
                        self.dropped,
                        item.type,
                        self.limit,
                    )
                return
        # Only command results: keep them all, the bound gives way.

    def push_front(self, item: Outgoing) -> None:
        """Give back a message whose sending failed: it goes first next time."""
        self._items.appendleft(item)
        self._ready.set()

    async def get(self) -> Outgoing:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def end_connection(self) -> None:
        kept = [i for i in self._items if i.kind is not Kind.CONNECTION]
        self._items = deque(kept)
