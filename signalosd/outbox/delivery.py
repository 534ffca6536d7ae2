"""Outbox delivery to one agent session (invariants 2, 3 and 10).

The database is the source of truth: each round reads the account's unfinished commands in
delivery order (emergency stop first, then commit order) and sends what is due:
- on a new session, every unfinished command (the agent re-acks what it already executed);
- then each newly queued command, at once (a `command_queued` event wakes the loop);
- a command not acked within the ack timeout again, with doubling backoff.
Nothing past its deadline is sent (`deadlines.expiry_reason` and `past_deadline` decide), nor
anything older than the agent's record of executed commands. A command is marked `sent` after
it was handed to the connection; a crash in between only means it is sent again. Each round
also checks that the session's token is still valid: a revoked agent is sent nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from signalosd.clock import Clock, iso
from signalosd.config import Settings
from signalosd.models import CommandStatus, EventType, system_actor
from signalosd.outbox import deadlines
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.store import Database, Tx

log = logging.getLogger("signalosd.outbox.delivery")
DELIVERY_ACTOR = system_actor("delivery")


def _due_again(command: dict[str, Any], now: datetime, settings: Settings) -> bool:
    if command["status"] != CommandStatus.SENT.value or command["sent_at"] is None:
        return False
    wait = min(
        settings.ack_timeout_s * 2 ** max(command["attempts"] - 1, 0), settings.ack_backoff_max_s
    )
    return datetime.fromisoformat(command["sent_at"]) + timedelta(seconds=wait) <= now


class Delivery:
    """The sending half of an agent session."""

    def __init__(
        self,
        account_id: int,
        db: Database,
        clock: Clock,
        settings: Settings,
        policy: CommandPolicy,
        send: Callable[[dict[str, Any]], None],
        actor: dict[str, Any],
        token_id: str,
        journal_keep_s: float,
        on_revoked: Callable[[], None],
    ) -> None:
        self.account_id = account_id
        self._db = db
        self._clock = clock
        self._settings = settings
        self._policy = policy
        self._send = send
        self._actor = actor
        self._token_id = token_id
        self._journal_keep = timedelta(seconds=journal_keep_s)
        self._on_revoked = on_revoked
        self._wake = asyncio.Event()
        self._sent_early: set[str] = set()

    def wake(self) -> None:
        self._wake.set()

    def send_now(self, command: dict[str, Any]) -> None:
        """Send a queued command at once (emergency stop); the next round records it as sent
        instead of sending it again."""
        self._send(command)
        self._sent_early.add(command["id"])

    async def run(self) -> None:
        everything = True  # a new session gets every unfinished command
        tick = min(self._settings.ack_timeout_s / 2, 1.0)
        while True:
            await self.round(everything)
            everything = False
            # asyncio.timeout, not wait_for: wait_for wraps the wait in a task of its own, so a
            # wake-up took three turns of the loop (and the request that queued the command
            # went first); this way the round starts on the next turn.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    await self._wake.wait()
            self._wake.clear()

    async def round(self, everything: bool = False) -> None:
        """One pass over the outbox: send what is due, record it, expire what is past."""
        account_id, token_id = self.account_id, self._token_id
        early = set(self._sent_early)  # sent after their commit, so this read sees them
        self._sent_early -= early

        def read(tx: Tx) -> list[dict[str, Any]] | None:
            if not tx.token_active(token_id):
                return None
            return tx.unfinished_commands(account_id)

        pending = await self._db.read(read)
        if pending is None:
            self._on_revoked()
            return
        now = self._clock.now()
        now_iso = iso(now)
        floor = iso(now - self._journal_keep)
        due, sent = [], []
        expired: list[tuple[dict[str, Any], str]] = []
        for command in pending:
            if command["id"] in early:
                sent.append(command)  # already on its way: only record it
                continue
            reason = deadlines.expiry_reason(command, now, self._policy, floor)
            if reason is not None:
                expired.append((command, reason))
            elif deadlines.past_deadline(command, now_iso):
                continue  # in its grace: the agent may still report it, it is never resent
            elif (
                everything
                or command["status"] == CommandStatus.QUEUED.value
                or _due_again(command, now, self._settings)
            ):
                due.append(command)
        for command in due:
            self._send(command)
        sent += due
        if sent or expired:
            await self._db.write(lambda tx: self._record(tx, sent, expired))

    def _record(
        self, tx: Tx, sent: list[dict[str, Any]], expired: list[tuple[dict[str, Any], str]]
    ) -> None:
        for command in sent:
            if tx.mark_sent(command["id"]):
                tx.append_event(
                    self.account_id,
                    EventType.COMMAND_SENT,
                    {
                        "command_id": command["id"],
                        "type": command["type"],
                        "attempt": command["attempts"] + 1,
                    },
                    self._actor,
                )
                log.info(
                    "event=command_sent command_id=%s type=%s attempt=%d account_id=%d",
                    command["id"],
                    command["type"],
                    command["attempts"] + 1,
                    self.account_id,
                )
        for command, reason in expired:
            deadlines.expire(tx, command, reason, self._actor)
