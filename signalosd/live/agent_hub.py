"""Which desktop agent is connected for which account, and what it last said.

One live agent session per account: a newer one replaces the older (closed with 4409). The
hub tells a session when a command is queued for its account, and keeps the latest MT5 status
(for health) with the throttle that stops a chatty agent flooding subscribers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from signalosd.clock import Clock, iso
from signalosd.models import EventType
from signalosd.store import EventRecord

if TYPE_CHECKING:
    from signalosd.ws.agent_session import AgentSession


class AgentHub:
    def __init__(self, clock: Clock, status_event_interval_s: float) -> None:
        self._clock = clock
        self._sessions: dict[int, AgentSession] = {}
        self._status: dict[int, dict[str, Any]] = {}
        # The time itself: formatted only when asked (`seen` runs for every agent message).
        self._last_seen: dict[int, datetime] = {}
        self._status_event: dict[int, tuple[float, tuple[Any, ...]]] = {}
        self._interval = status_event_interval_s

    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, account_id: int) -> AgentSession | None:
        return self._sessions.get(account_id)

    def attach(self, session: AgentSession) -> AgentSession | None:
        """Make `session` the account's agent; return the one it replaces, if any."""
        old = self._sessions.get(session.account_id)
        self._sessions[session.account_id] = session
        self.seen(session.account_id)
        return old

    def detach(self, session: AgentSession) -> bool:
        """Forget `session`; False when a newer session had already replaced it."""
        if self._sessions.get(session.account_id) is not session:
            return False
        del self._sessions[session.account_id]
        return True

    def sessions(self) -> list[AgentSession]:
        return list(self._sessions.values())

    def seen(self, account_id: int) -> None:
        self._last_seen[account_id] = self._clock.now()

    def last_seen(self, account_id: int) -> datetime | None:
        """When the account's agent last sent anything, since this process started."""
        return self._last_seen.get(account_id)

    def on_event(self, event: EventRecord) -> None:
        """Bus listener: a queued command reaches its account's session at its commit (which
        wakes its delivery, and sends an emergency stop straight from the event)."""
        if event.type != EventType.COMMAND_QUEUED or event.account_id is None:
            return
        session = self._sessions.get(event.account_id)
        if session is not None:
            session.command_queued(event)

    def status_event_due(self, account_id: int, status: dict[str, Any]) -> bool:
        """Store the latest status; True when it is worth an event (the throttle)."""
        self._status[account_id] = status
        now = self._clock.now().timestamp()
        key = (status.get("connected"), status.get("trade_allowed"))
        last = self._status_event.get(account_id)
        if last is not None and last[1] == key and now - last[0] < self._interval:
            return False
        self._status_event[account_id] = (now, key)
        return True

    def health(self, account_id: int, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The agent part of /api/system/health (live session first, then what was stored)."""
        session = self._sessions.get(account_id)
        seen = self._last_seen.get(account_id)
        info: dict[str, Any] = {
            "connected": session is not None,
            "last_seen": iso(seen) if seen is not None else (stored or {}).get("last_seen"),
        }
        if session is not None:
            info |= session.describe()
        elif stored:
            info |= {k: stored.get(k) for k in ("agent_version", "broker", "login", "server")}
        # What the agent last said of itself (agent_state): its mode should be the daemon's.
        stored = stored or {}
        info |= {
            "mode": stored.get("agent_mode"),
            "halt_gen": stored.get("agent_halt_gen"),
            "mode_mismatch": bool(stored.get("mode_mismatch")),
            "clock_offset_s": stored.get("clock_offset_s"),
        }
        return info

    def mt5(self, account_id: int, stored: dict[str, Any] | None) -> dict[str, Any] | None:
        status = self._status.get(account_id)
        if status is None and stored is not None:
            status = stored.get("mt5")
        return status
