"""What the agent says about a command, applied to it: its ack, then its result (invariant 2).

Each runs inside the agent session's group-commit transaction, in the order the agent sent
them. A command finishes once: a repeated result (the agent re-sends a stored one on
redelivery) or one for an unknown command changes nothing. What a finished command means for
the trade mirror and the agent's mode is the domain's (`domain/agent_reports.apply_result`).
"""

from __future__ import annotations

from typing import Any

from signalosd.models import CommandResult, CommandStatus, EventType
from signalosd.store import Tx

# The daemon gave up on these; a success reported after is recorded, not applied.
_GAVE_UP = (CommandStatus.CANCELLED.value, CommandStatus.EXPIRED.value)


def apply_ack(tx: Tx, account_id: int, command_id: str, actor: dict[str, Any]) -> None:
    """The agent holds the command: it is not sent again after the ack timeout."""
    if tx.mark_acked(account_id, command_id):
        tx.append_event(account_id, EventType.COMMAND_ACKED, {"command_id": command_id}, actor)


def finish(
    tx: Tx, account_id: int, res: CommandResult, actor: dict[str, Any]
) -> dict[str, Any] | None:
    """Finish the command `res` reports on, succeeded or failed; the command (as it was) when
    this result finished it, so its effects are due, else None."""
    command = tx.get_command(account_id, res.command_id)
    if command is None:
        return None
    status = CommandStatus.SUCCEEDED if res.ok else CommandStatus.FAILED
    result = {"ok": res.ok, "error": res.error, "retcode": res.retcode, "data": res.data}
    if not tx.finish_command(account_id, res.command_id, status.value, result):
        if res.ok and command["status"] in _GAVE_UP:
            # The daemon had cancelled or expired it, yet the agent ran it (it began just
            # before learning so): the audit log says so rather than keep a wrong story.
            tx.append_event(
                account_id,
                EventType.COMMAND_LATE_RESULT,
                {
                    "command_id": res.command_id,
                    "type": command["type"],
                    "trade_id": command["trade_id"],
                    "status": command["status"],
                    "data": res.data,
                },
                actor,
            )
        return None
    data: dict[str, Any] = {
        "command_id": res.command_id,
        "type": command["type"],
        "trade_id": command["trade_id"],
    }
    if res.ok:
        data["data"] = res.data
    else:
        data["reason"] = res.error or f"the broker refused it (retcode {res.retcode})"
        data["retcode"] = res.retcode
    tx.append_event(account_id, EventType.for_command(status), data, actor)
    return command
