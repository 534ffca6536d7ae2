"""The reconnect delay of the CLI's long-running WebSocket clients (`signalos tail` and the
desktop agent): exponential from `initial` up to `maximum`, half of it jitter, so that many
clients cut off together do not all come back at the same instant."""

from __future__ import annotations

from collections.abc import Callable


def reconnect_delay(
    attempt: int, initial: float, maximum: float, random: Callable[[], float]
) -> float:
    """Delay before reconnect number `attempt` (1, 2, …)."""
    ceiling = min(maximum, initial * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + random() * ceiling / 2
