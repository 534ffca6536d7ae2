"""Risk-guard queries of the store interface (Tx): each account's limits as the trader last set
them, and what the guard remembers (anchor, peaks, today's entries, a latched trip), so that
a restart in the middle of a trading day changes nothing (docs/risk.md).

Both are stored as strict JSON objects, whole: the domain (domain/risk_rules.py) says what is
in them; the store keeps them with the account.
"""

from __future__ import annotations

from typing import Any, Protocol


class RiskQueries(Protocol):
    def risk_limits(self, account_id: int) -> dict[str, Any] | None:
        """The account's limits as last set (None: never set, every limit off)."""
        ...

    def set_risk_limits(self, account_id: int, limits: dict[str, Any]) -> None:
        """Replace the account's limits, whole."""
        ...

    def risk_memory(self, account_id: int) -> dict[str, Any] | None:
        """What the guard remembers of the account (None: nothing yet)."""
        ...

    def save_risk_memory(self, account_id: int, memory: dict[str, Any]) -> None:
        """Replace what the guard remembers of the account."""
        ...

    def guarded_accounts(self) -> list[tuple[int, dict[str, Any], dict[str, Any] | None]]:
        """Every account with limits set: (account id, limits, memory), for the daemon's
        start (the guard's watch is loaded from these)."""
        ...

    def count_live_trades(self, account_id: int) -> int:
        """Trades pending, open or closing: what `max_open_trades` counts."""
        ...
