"""Commands leave the outbox unexecuted: cancelled by an emergency stop (the fence, invariant
9) or by a restore, in the caller's transaction.

An emergency stop cancels, whatever state they are in short of done, the entries and the
resumes (which would lift the halt). Both also carry the halt generation they were issued in,
so an agent that already holds one refuses it (docs/agent.md, "The fence").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from signalosd.models import CommandStatus, CommandType
from signalosd.outbox.settle import settle_unexecuted
from signalosd.store import Tx

FENCED = (CommandType.OPEN_TRADE, CommandType.RESUME)


def cancel_unfinished(
    tx: Tx, account_id: int, types: Iterable[CommandType], reason: str, actor: dict[str, Any]
) -> list[str]:
    """Cancel every unfinished (queued, sent or acked) command of these types; their ids."""
    cancelled = []
    for command in tx.unfinished_of_types(account_id, (t.value for t in types)):
        if settle_unexecuted(tx, command, CommandStatus.CANCELLED, reason, actor):
            cancelled.append(command["id"])
    return cancelled


def cancel_fenced(tx: Tx, account_id: int, halt_gen: int, actor: dict[str, Any]) -> list[str]:
    """An emergency stop commits: cancel every unfinished entry and resume of the account,
    queued, sent or acked alike (an agent that already holds one refuses it by its older halt
    generation)."""
    reason = f"cancelled by emergency stop (halt generation {halt_gen})"
    return cancel_unfinished(tx, account_id, FENCED, reason, actor)
