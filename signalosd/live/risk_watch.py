"""The risk guard's eyes on the receive path: which account statuses it must see at once.

The agent session drops most statuses (one event per `status_event_interval_s`, for
subscribers' sake). The guard must not miss one: every status is judged here, in memory, by the
same pure rules, against what the guard last committed; a status that would change anything
(a limit warning or tripping, a new day's anchor, a new balance for the end-of-day peak, data
coming back after being stale) goes to the database at once, past the throttle, where the
guard decides for real in the status's transaction (domain/risk_guard.py). The highest equity
between applied statuses reaches the guard too (the agent inbox's equity range), so the peak
misses nothing.

Only the event loop touches this; it learns what was committed after each commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from signalosd.domain.risk_day import day_start
from signalosd.domain.risk_guard import GuardView
from signalosd.domain.risk_rules import RiskMemory, advance, evaluate, memory_from_dict
from signalosd.models.risk import LimitState, RiskLimits


class Due(Enum):
    """Why the guard's timer must write for an account."""

    DAY = "a reset time passed"
    STALE = "no account status for too long"
    LIMITS = "the latest equity stands worse than judged"


_RANK = {LimitState.OK: 0, LimitState.WARNING: 1, LimitState.TRIPPED: 2}


@dataclass(slots=True)
class _Watched:
    limits: RiskLimits
    # As committed, plus the peak and balance of statuses seen since (its day is the
    # committed one: only a commit moves it).
    memory: RiskMemory
    states: dict[str, LimitState]


class RiskWatch:
    def __init__(self, started_at: datetime) -> None:
        self._accounts: dict[int, _Watched] = {}
        # Every account's latest status (time, equity), guarded or not: limits set later are
        # judged against it at once.
        self._last: dict[int, tuple[datetime, float]] = {}
        self._started_at = started_at  # staleness counts from here at the earliest

    def load(
        self,
        guarded: list[tuple[int, dict[str, Any], dict[str, Any] | None]],
        last_status: dict[int, tuple[datetime | None, float | None]],
    ) -> None:
        """At the daemon's start: every guarded account as stored."""
        for account_id, limits, memory in guarded:
            mem = memory_from_dict(memory)
            self._accounts[account_id] = _Watched(RiskLimits.from_stored(limits), mem, {})
            at, equity = last_status.get(account_id, (None, None))
            if at is not None and equity is not None:
                self._last[account_id] = (at, equity)

    def accounts(self) -> list[int]:
        return list(self._accounts)

    def committed(self, view: GuardView | None) -> None:
        """What a transaction of the guard committed (its limits, memory and states)."""
        if view is None:
            return
        if view.limits is None:
            self._accounts.pop(view.account_id, None)
            return
        self._accounts[view.account_id] = _Watched(view.limits, view.memory, dict(view.states))

    def must_apply(self, account_id: int, balance: float, equity: float, now: datetime) -> bool:
        """Judge a status the throttle would drop: True when the guard must see it now."""
        self._last[account_id] = (now, equity)
        w = self._accounts.get(account_id)
        if w is None:
            return False
        memory = advance(w.memory, w.limits, balance, equity, now)
        if memory.day_start != w.memory.day_start or w.memory.stale:
            return True
        if balance != w.memory.last_balance:
            # A trade closed: the day's closing balance (the EOD peak) must not lag.
            w.memory = replace(w.memory, last_balance=balance)
            return True
        w.memory = replace(w.memory, equity_peak=memory.equity_peak)
        return self._worse(w, memory, equity)

    def last_status(self, account_id: int) -> tuple[datetime | None, float | None]:
        """When the account's latest status came (from the daemon's start at the earliest),
        and its equity: what the guard's timer judges."""
        last = self._last.get(account_id)
        if last is None:
            return self._started_at, None
        at, equity = last
        return max(at, self._started_at), equity

    def due(self, account_id: int, now: datetime, stale_after_s: float) -> Due | None:
        """What the guard's timer has to do for the account, if anything: a reset passed,
        data going stale, or the latest equity judged worse than committed (new limits)."""
        w = self._accounts.get(account_id)
        if w is None:
            return None
        at, equity = self.last_status(account_id)
        hour, minute = w.limits.reset_hour_minute
        committed_day = w.memory.day_start
        if committed_day is None or day_start(now, hour, minute, w.limits.zone) > committed_day:
            return Due.DAY
        if at is not None and (now - at).total_seconds() > stale_after_s:
            return None if w.memory.stale else Due.STALE
        if equity is not None and self._worse(w, w.memory, equity):
            return Due.LIMITS
        return None

    @staticmethod
    def _worse(w: _Watched, memory: RiskMemory, equity: float) -> bool:
        """Whether some limit stands worse at `equity` than the guard last committed."""
        for status in evaluate(memory, w.limits, equity):
            if _RANK[status.state] > _RANK[w.states.get(status.limit.value, LimitState.OK)]:
                return True
        return False
