"""Trading controls: emergency stop, pause, resume, stealth, force-sync.

Each function runs inside one write transaction: it reads the account's state, applies the pure
rule from `domain/rules.py`, writes the change, appends its events and queues the agent's command.
A repeated transition is not an error: the outcome says `changed: false` and queues nothing
(except emergency stop, which always reaches the agent: a repeat may carry close_all).
"""

from __future__ import annotations

from typing import Any

from signalosd.domain.context import Context
from signalosd.domain.outcomes import CommandQueued, StateChange
from signalosd.domain.risk_rules import memory_from_dict
from signalosd.domain.rules import ModeAction, latched_refusal, transition
from signalosd.models import (
    CommandType,
    EmergencyStopRequest,
    EventType,
    Mode,
    PauseRequest,
    ResumeRequest,
    StealthRequest,
)
from signalosd.outbox.cancel import cancel_fenced
from signalosd.outbox.enqueue import enqueue
from signalosd.store import Tx


def _outcome(
    tx: Tx,
    ctx: Context,
    changed: bool,
    command: dict[str, Any] | None,
    message: str,
    cancelled: list[str] | None = None,
) -> StateChange:
    """The state as committed, with the daemon's own words for what happened."""
    return StateChange(tx.get_state(ctx.account_id), changed, message, command, cancelled)


def emergency_stop(tx: Tx, ctx: Context, req: EmergencyStopRequest) -> StateChange:
    """Halt, and fence off everything issued before: the stop starts a new halt generation,
    every unfinished entry and resume is cancelled in this same transaction, and the stop
    command (carrying the new generation) is sent to the agent ahead of anything else."""
    before = Mode(tx.get_state(ctx.account_id)["mode"])
    move = transition(before, ModeAction.EMERGENCY_STOP)
    reason = req.reason or "emergency stop"
    if move.changed:
        tx.set_mode(ctx.account_id, Mode.HALTED.value, reason)
    halt_gen = tx.next_halt_gen(ctx.account_id)
    cancelled = cancel_fenced(tx, ctx.account_id, halt_gen, ctx.recorded_actor)
    tx.append_event(
        ctx.account_id,
        EventType.EMERGENCY_STOP,
        {
            "message": "Emergency stop activated",
            "reason": reason,
            "close_all": req.close_all,
            "previous_mode": before.value,
            "changed": move.changed,
            "halt_gen": halt_gen,
            "cancelled_commands": cancelled,
        },
        ctx.recorded_actor,
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.EMERGENCY_STOP,
        {"close_all": req.close_all, "reason": reason},
        ctx.recorded_actor,
    )
    n = len(cancelled)
    entries = f"{n} unfinished {'entry or resume' if n == 1 else 'entries or resumes'} cancelled"
    flatten = ", closing every position" if req.close_all else ""
    said = "Trading halted" if move.changed else "Already halted: the stop was sent again"
    return _outcome(tx, ctx, move.changed, command, f"{said}; {entries}{flatten}", cancelled)


def pause(tx: Tx, ctx: Context, req: PauseRequest) -> StateChange:
    before = Mode(tx.get_state(ctx.account_id)["mode"])
    move = transition(before, ModeAction.PAUSE)
    if not move.changed:
        return _outcome(tx, ctx, False, None, "Already paused: nothing changed")
    tx.set_mode(ctx.account_id, Mode.PAUSED.value, req.reason)
    tx.append_event(
        ctx.account_id,
        EventType.TRADING_PAUSED,
        {"message": "Trading paused", "reason": req.reason, "previous_mode": before.value},
        ctx.recorded_actor,
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.PAUSE,
        {"reason": req.reason},
        ctx.recorded_actor,
    )
    return _outcome(tx, ctx, True, command, "Trading paused: no new entries")


def resume(tx: Tx, ctx: Context, req: ResumeRequest) -> StateChange:
    before = Mode(tx.get_state(ctx.account_id)["mode"])
    move = transition(before, ModeAction.RESUME, confirm_halt=req.confirm_halt)
    if before is Mode.HALTED:
        latch = memory_from_dict(tx.risk_memory(ctx.account_id)).latch
        if latch is not None:
            raise latched_refusal(latch.limit.value, latch.limit.is_daily)
    if not move.changed:
        return _outcome(tx, ctx, False, None, "Already running: nothing changed")
    tx.set_mode(ctx.account_id, Mode.RUNNING.value, req.reason)
    tx.append_event(
        ctx.account_id,
        EventType.TRADING_RESUMED,
        {"message": "Trading resumed", "reason": req.reason, "previous_mode": before.value},
        ctx.recorded_actor,
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.RESUME,
        {"from_halt": before is Mode.HALTED},
        ctx.recorded_actor,
    )
    left = "the halt" if before is Mode.HALTED else "the pause"
    return _outcome(tx, ctx, True, command, f"Trading resumed from {left}")


def set_stealth(tx: Tx, ctx: Context, req: StealthRequest) -> StateChange:
    current = bool(tx.get_state(ctx.account_id)["stealth"])
    target = req.target()
    wanted = (not current) if target is None else target
    word = "on" if wanted else "off"
    if wanted == current:
        return _outcome(tx, ctx, False, None, f"Stealth already {word}: nothing changed")
    tx.set_stealth(ctx.account_id, wanted)
    tx.append_event(
        ctx.account_id, EventType.STEALTH_CHANGED, {"enabled": wanted}, ctx.recorded_actor
    )
    command = enqueue(
        tx,
        ctx.policy,
        ctx.account_id,
        CommandType.SET_STEALTH,
        {"enabled": wanted},
        ctx.recorded_actor,
    )
    return _outcome(tx, ctx, True, command, f"Stealth {word}")


def force_sync(tx: Tx, ctx: Context) -> CommandQueued:
    command = enqueue(
        tx, ctx.policy, ctx.account_id, CommandType.FORCE_SYNC, {}, ctx.recorded_actor
    )
    return CommandQueued(
        command, "Sync requested: the agent will send a full snapshot to reconcile the trades"
    )
