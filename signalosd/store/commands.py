"""Outbox (command) and agent-status queries of the store interface (Tx)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class CommandQueries(Protocol):
    """The durable command queue and each account's agent status."""

    # ---- commands -------------------------------------------------------------------------

    def insert_command(
        self,
        command_id: str,
        account_id: int,
        type_: str,
        trade_id: int | None,
        params: dict[str, Any],
        priority: int,
        expires_at: str | None,
        issued_by: dict[str, Any],
        halt_gen: int,
    ) -> dict[str, Any]:
        """Queue a command; the row as stored."""
        ...

    def get_command(self, account_id: int | None, command_id: str) -> dict[str, Any] | None:
        """A command (of this account, unless None)."""
        ...

    def unfinished_of_types(self, account_id: int, types: Iterable[str]) -> list[dict[str, Any]]:
        """Queued, sent or acked commands of these types, in commit order."""
        ...

    def queue_depths(self, account_id: int) -> dict[str, int]:
        """How many commands are queued, sent and acked."""
        ...

    def command_counts(self) -> list[tuple[str, str, int]]:
        """(type, status, count) over all accounts, for /metrics."""
        ...

    # ---- delivery -------------------------------------------------------------------------

    def unfinished_commands(self, account_id: int) -> list[dict[str, Any]]:
        """Queued, sent and acked commands in delivery order: emergency stop first, then by
        commit order."""
        ...

    def mark_sent(self, command_id: str) -> bool:
        """Record a (re)send; only a queued command becomes `sent`. False if it is final."""
        ...

    def mark_acked(self, account_id: int, command_id: str) -> bool:
        """A queued or sent command becomes `acked`; False otherwise."""
        ...

    def finish_command(
        self, account_id: int, command_id: str, status: str, result: dict[str, Any]
    ) -> bool:
        """Move an unfinished command to a final status; False if it was already final."""
        ...

    def unfinished_past_expiry(self, queued_before: str, sent_before: str) -> list[tuple[int, str]]:
        """(account id, command id) of queued commands that expired before `queued_before`
        and sent or acked ones that expired before `sent_before`, in commit order."""
        ...

    # ---- agent status ---------------------------------------------------------------------

    def agent_status(self, account_id: int) -> dict[str, Any] | None: ...

    def save_agent_status(self, account_id: int, fields: dict[str, Any]) -> None:
        """Create or update the account's agent status row with these columns (a key that is
        not a column of agent_status is refused: ValueError)."""
        ...
