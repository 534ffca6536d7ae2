"""A command enters the outbox: committed in the caller's transaction before anyone is told
"accepted" (invariant 1), with its deadline, its place in the queue and its halt generation.

Order (invariant 3): lower priority runs first, so an emergency stop jumps the queue; everything
else keeps its commit order. The halt generation is the fence's stamp (invariant 9): an
emergency stop bumps the account's generation before it is queued, so it carries its own, and
an agent that knows a newer one refuses an entry or resume stamped with an older one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from signalosd.clock import iso
from signalosd.models import CommandType, EventType
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.store import Tx

PRIORITY_EMERGENCY = 0
PRIORITY_NORMAL = 10


def enqueue(
    tx: Tx,
    policy: CommandPolicy,
    account_id: int,
    type_: CommandType,
    params: dict[str, Any],
    actor: dict[str, Any],
    trade_id: int | None = None,
) -> dict[str, Any]:
    """Queue a command in the caller's transaction, stamped with the account's current halt
    generation (an emergency stop bumps it first, so the stop carries its own)."""
    ttl = policy.ttl(type_)
    expires_at = iso(tx.now_dt + timedelta(seconds=ttl)) if ttl is not None else None
    priority = PRIORITY_EMERGENCY if type_ is CommandType.EMERGENCY_STOP else PRIORITY_NORMAL
    halt_gen = int(tx.get_state(account_id)["halt_gen"])
    command = tx.insert_command(
        str(uuid.uuid4()),
        account_id,
        type_.value,
        trade_id,
        params,
        priority,
        expires_at,
        actor,
        halt_gen,
    )
    tx.append_event(
        account_id,
        EventType.COMMAND_QUEUED,
        {
            "command_id": command["id"],
            "type": type_.value,
            "trade_id": trade_id,
            "params": params,
            "halt_gen": halt_gen,
            "expires_at": expires_at,
        },
        actor,
    )
    return command
