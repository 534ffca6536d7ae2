"""The daemon's own actors: who an event says acted when no client did (delivery, expiry).

Built one way, from the `Actor` model, so every system actor is stored as the same JSON shape
(`{"kind":"system","id":null,"label":...}`, in this key order, as the log has always had it).
Make each once, at import: the store encodes an actor once per transaction, by identity.
"""

from __future__ import annotations

from typing import Any

from signalosd.models import Actor, ActorKind


def system_actor(label: str) -> dict[str, Any]:
    """The daemon itself acting as `label` (`delivery`, `expiry`), as an event's actor."""
    return Actor(kind=ActorKind.SYSTEM, id=None, label=label).model_dump(exclude_unset=True)
