"""What an agent sent, applied in order, many messages per durable commit (group commit).

Each valid message waits in the session's ordered inbox; one applier task applies everything
waiting in one transaction, each message under its own savepoint, in the order the agent sent
them. The receive loop stops reading while the inbox is full, so an agent that sends faster
than we commit waits in TCP instead of in our memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from signalosd.domain import account_history, agent_reports, risk_guard
from signalosd.domain.risk_guard import GuardView
from signalosd.models import EventType
from signalosd.outbox import results
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.store import Database, Tx

# The session's logger: these lines are the agent session's (`event=agent_batch_failed`, ...).
log = logging.getLogger("signalosd.agent")


class AgentInbox:
    """One agent session's received messages, and their applier."""

    def __init__(
        self,
        db: Database,
        *,
        account_id: int,
        session_id: str,
        token_id: str,
        actor: dict[str, Any],
        batch_max: int,
        history_interval_s: float,
        on_revoked: Callable[[], None],
        on_failed: Callable[[], None],
        policy: CommandPolicy,
        on_guarded: Callable[[GuardView], None],
    ) -> None:
        self._db = db
        self._account_id = account_id
        self._session_id = session_id
        self._token_id = token_id
        self._actor = actor
        self._batch_max = batch_max
        self._history_interval_s = history_interval_s
        self._on_revoked = on_revoked
        self._on_failed = on_failed
        self._policy = policy
        # What the risk guard committed with a batch (filled on the writer thread, told to the
        # watch on the loop once the batch committed).
        self._on_guarded = on_guarded
        self._guarded: list[GuardView] = []
        self._items: deque[tuple[str, Any]] = deque()
        self._ready = asyncio.Event()
        # Backpressure: past this many waiting messages the receive loop stops reading.
        self._max = 2 * batch_max
        self._room = asyncio.Event()
        self._room.set()
        self._revoked_in_tx = False  # set on the writer thread by a batch that found it so
        self._stopping = False

    def __len__(self) -> int:
        return len(self._items)

    def append(self, kind: str, item: Any) -> None:
        self._items.append((kind, item))
        self._ready.set()
        if len(self._items) >= self._max:
            self._room.clear()

    def clear(self) -> int:
        """Drop everything waiting (the token was revoked); return how many were dropped."""
        dropped = len(self._items)
        self._items.clear()
        self._room.set()
        return dropped

    async def room(self) -> None:
        """Wait while the inbox is full (the applier makes room, or ends)."""
        await self._room.wait()

    async def applier(self) -> None:
        """Apply what the agent sent, in order, many messages per durable commit.

        A batch that cannot be committed (the database locked past the busy timeout, the disk
        full…) ends the session with 1011: applying later messages would skip it. The agent
        reconnects, sends a snapshot and gets every unfinished command again (re-sending the
        results it stored), so nothing is lost for good."""
        items, limit = self._items, self._batch_max
        try:
            while True:
                if not items:
                    if self._stopping:
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                batch = [items.popleft() for _ in range(min(limit, len(items)))]
                if len(items) < self._max:
                    self._room.set()
                try:
                    await self._db.write(self._batch(batch))
                    for view in self._guarded:
                        self._on_guarded(view)
                    self._guarded.clear()
                    if self._revoked_in_tx:
                        self._on_revoked()
                        return
                except Exception:
                    log.exception(
                        "event=agent_batch_failed account_id=%d session=%s messages=%d",
                        self._account_id,
                        self._session_id,
                        len(batch),
                    )
                    self._on_failed()
                    return
        finally:
            self._room.set()  # never leave the receive loop waiting on a stopped applier

    async def drain(self, applier: asyncio.Task[None], deadline: float) -> None:
        """Before the session ends: everything already received is applied (nothing the
        agent sent is lost because the connection dropped right after)."""
        self._stopping = True
        self._ready.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(deadline):
                await asyncio.shield(applier)

    def _batch(self, items: list[tuple[str, Any]]) -> Callable[[Tx], None]:
        return lambda tx: self._apply(tx, items)

    def _apply(self, tx: Tx, items: list[tuple[str, Any]]) -> None:
        # Checked in the batch's own transaction: nothing the agent sends after its token's
        # revocation committed (here or by `signalosd token revoke`) is applied.
        self._guarded.clear()
        if not tx.token_active(self._token_id):
            self._revoked_in_tx = True
            return
        try:
            with tx.savepoint():  # the common case: the whole batch applies cleanly
                for kind, item in items:
                    self._apply_one(tx, kind, item)
            return
        except Exception:
            # One message is bad: redo them one by one, so that only it is skipped.
            self._guarded.clear()
        for kind, item in items:
            kept = len(self._guarded)
            try:
                with tx.savepoint():
                    self._apply_one(tx, kind, item)
            except Exception:
                del self._guarded[kept:]
                log.exception(
                    "event=agent_message_failed kind=%s account_id=%d session=%s",
                    kind,
                    self._account_id,
                    self._session_id,
                )

    def _apply_one(self, tx: Tx, kind: str, item: Any) -> None:
        account_id, actor = self._account_id, self._actor
        if kind == "ack":
            results.apply_ack(tx, account_id, item.messageId, actor)
        elif kind == "command_result":
            agent_reports.apply_result(tx, account_id, item, actor)
        elif kind == "trade_update":
            agent_reports.apply_position(tx, account_id, item, actor, adopted_by="trade_update")
        elif kind == "sync_snapshot":
            agent_reports.apply_snapshot(tx, account_id, item, actor)
            if item.account is not None:
                self._status(tx, item.account.model_dump())
        elif kind == "mt5_status_update":
            status, seen = item
            self._status(tx, status.model_dump(), seen)
        elif kind == "agent_state":
            agent_reports.apply_agent_state(tx, account_id, item, actor)

    def _status(
        self, tx: Tx, status: dict[str, Any], seen: tuple[float, float] | None = None
    ) -> None:
        tx.save_agent_status(
            self._account_id, {"mt5": status, "mt5_at": tx.now, "last_seen": tx.now}
        )
        tx.append_event(self._account_id, EventType.MT5_STATUS_UPDATE, status, self._actor)
        account_history.record(tx, self._account_id, status, self._history_interval_s, seen)
        # The guard judges every status applied, in its transaction (a trip commits with it).
        view = risk_guard.on_status(
            tx,
            self._account_id,
            self._policy,
            status["balance"],
            status["equity"],
            None if seen is None else seen[1],
        )
        if view is not None:
            self._guarded.append(view)
