"""Who acts on which account, for one request: what every domain function of a request needs.

Built at the edge (http/ for REST, from the caller's token and source header) and handed to the
domain, which records `actor` on every event and command it writes, so the audit log names the
caller. No aiohttp here: the same context can come from any transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signalosd.models import Actor
from signalosd.outbox.deadlines import CommandPolicy


@dataclass(frozen=True, slots=True)
class Context:
    account_id: int
    actor: Actor
    policy: CommandPolicy
    # The actor as events and commands record it (`Actor.recorded`): made once per request,
    # one dict for all its writes, so the store encodes it once per transaction.
    recorded_actor: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recorded_actor", self.actor.recorded())
