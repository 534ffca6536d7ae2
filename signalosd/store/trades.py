"""Trade mirror and signal queries of the store interface (Tx).

The keys of a `fields` dict are columns of the trades or signals table: a key that is not one
is refused (ValueError) and never reaches SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class TradeQueries(Protocol):
    """The trade mirror and the signals."""

    # ---- trades ---------------------------------------------------------------------------

    def get_trade(self, account_id: int, trade_id: int) -> dict[str, Any] | None: ...

    def list_trades(
        self, account_id: int, statuses: Iterable[str] | None, symbol: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first, at most `limit`."""
        ...

    def insert_trade(self, account_id: int, fields: dict[str, Any]) -> int:
        """A new trade row; its id."""
        ...

    def update_trade(self, trade_id: int, fields: dict[str, Any]) -> None: ...

    def trade_by_ticket(self, account_id: int, ticket: int) -> dict[str, Any] | None:
        """A broker position's trade (fast when asked again in the same transaction)."""
        ...

    def trades_at_broker(self, account_id: int) -> list[dict[str, Any]]:
        """Trades the mirror believes are positions at the broker (for reconciliation)."""
        ...

    # ---- signals --------------------------------------------------------------------------

    def insert_signal(self, account_id: int, fields: dict[str, Any]) -> int:
        """A new signal row (`tp` a list); its id."""
        ...

    def update_signal(self, signal_id: int, fields: dict[str, Any]) -> None: ...

    def get_signal(
        self, account_id: int, signal_id: int | None = None, external_id: str | None = None
    ) -> dict[str, Any] | None:
        """By id, or else by the source's external id."""
        ...

    def list_signals(self, account_id: int, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first, at most `limit`."""
        ...
