"""A domain outcome as a REST reply: 202 when a command was queued for the agent (follow it
with GET /api/commands/{id}), 200 when only the daemon's state changed or nothing did.

The bodies keep the keys and their order as they have always been sent: idempotent replays
return stored bytes, and a client comparing a replay with a fresh reply must see the same.
"""

from __future__ import annotations

from typing import Any

from signalosd.domain.outcomes import CommandQueued, Outcome, SignalTaken, StateChange


def status(outcome: Outcome) -> int:
    return 202 if outcome.queued else 200


def body(outcome: Outcome) -> dict[str, Any]:
    """The JSON body: a ControlReply, CommandReply or SignalReply (models)."""
    if isinstance(outcome, StateChange):
        return _state_change(outcome)
    if isinstance(outcome, CommandQueued):
        reply: dict[str, Any] = {"command": outcome.command}
        if outcome.message is not None:
            reply["message"] = outcome.message
        return reply
    return _signal(outcome)


def _state_change(outcome: StateChange) -> dict[str, Any]:
    """The state as committed, with the daemon's own words for what happened: a dashboard's
    toast or a script's log shows them as they are, not a client's guess from `changed`."""
    reply = outcome.state | {"changed": outcome.changed, "message": outcome.message}
    if outcome.command is not None:
        reply["command"] = outcome.command
    if outcome.cancelled_commands is not None:
        reply["cancelled_commands"] = outcome.cancelled_commands
    return reply


def _signal(outcome: SignalTaken) -> dict[str, Any]:
    if outcome.queued:
        return {"signal": outcome.signal, "command": outcome.command, "duplicate": False}
    reply: dict[str, Any] = {"signal": outcome.signal, "duplicate": outcome.duplicate}
    if outcome.command is not None:  # a duplicate of a signal that became an entry
        reply["command"] = outcome.command
    return reply
