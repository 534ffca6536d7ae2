"""A command that will never run, finished: cancelled or expired, and the pending trade an
entry leaves behind failed with the same reason, so nobody waits for a position that will not
come. Cancelling (`cancel`) and expiry (`deadlines`) both end here; each runs in the caller's
transaction.
"""

from __future__ import annotations

from typing import Any

from signalosd.models import CommandStatus, CommandType, EventType, TradeStatus
from signalosd.store import Tx


def settle_unexecuted(
    tx: Tx, command: dict[str, Any], status: CommandStatus, reason: str, actor: dict[str, Any]
) -> bool:
    """Finish a command that never ran with `status` (cancelled or expired); False when it had
    finished already (the store's guard: a finished command never changes again)."""
    account_id = tx.account_id_of(command["account"])
    if not tx.finish_command(account_id, command["id"], status.value, {"reason": reason}):
        return False
    tx.append_event(
        account_id,
        EventType.for_command(status),
        {
            "command_id": command["id"],
            "type": command["type"],
            "trade_id": command["trade_id"],
            "reason": reason,
        },
        actor,
    )
    if command["type"] == CommandType.OPEN_TRADE.value and command["trade_id"] is not None:
        fail_pending_trade(tx, account_id, command["trade_id"], reason, actor)
    return True


def fail_pending_trade(
    tx: Tx, account_id: int, trade_id: int, reason: str, actor: dict[str, Any]
) -> None:
    """The trade an entry was to open becomes `failed` with `reason`, if it is still pending."""
    trade = tx.get_trade(account_id, trade_id)
    if trade is None or trade["status"] != TradeStatus.PENDING.value:
        return
    changes = {"status": TradeStatus.FAILED.value, "close_reason": reason, "closed_at": tx.now}
    tx.update_trade(trade_id, changes)
    tx.append_event(
        account_id, EventType.TRADE_UPDATE, trade | changes | {"updated_at": tx.now}, actor
    )
