"""The agent's timings and time sources (`Options`), and the reconnect backoff they shape.

Production uses the defaults; tests inject small values and fakes (clock, sleep, random).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from signalos_cli.reconnect import reconnect_delay

__all__ = ["Options", "backoff"]


def _stderr(line: str) -> None:
    print(f"agent: {line}", file=sys.stderr, flush=True)


@dataclass
class Options:
    """Timings and time sources; tests inject small values and fakes."""

    poll_interval: float | None = None  # None: 0.5 s for paper, 1 s for MT5
    status_interval: float = 5.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 30.0  # a connection this long resets the backoff
    handshake_timeout: float = 10.0
    heartbeat: float = 30.0
    report_queue_limit: int = 1000
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_state: Callable[[str], None] = _stderr


def backoff(attempt: int, options: Options) -> float:
    """Delay before reconnect number `attempt` (1, 2, …), with the agent's timings."""
    return reconnect_delay(attempt, options.backoff_initial, options.backoff_max, options.random)
