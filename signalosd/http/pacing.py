"""Pacing of one token's long REST reads (event pages, trade and signal lists).

The scan lane caps how many of a token's long reads run at once, but a client that loops on
them as fast as the daemon answers still makes the daemon parse, authorise and answer every
one of its requests: on two cores, twenty such clients of one viewer doubled another account's
emergency-stop latency. So each token also has a rate: a bucket of `burst` reads refilled at
`rate` per second. A read beyond it waits its turn (it is not refused: a client paging through
a log only goes slower), and because the client waits for its answer, it sends less.

Not paced: `/ws` replays (each page goes out before the next is read, so a replay is as fast
as its client reads and no faster, and `signalos tail --since 0` must stay fast), `/metrics`,
and every write, the emergency stop first of all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    """Per-key token buckets (the key: a token id)."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`burst` defaults to one second's worth of reads (at least one)."""
        burst = max(1, round(rate)) if burst is None else burst
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        # key -> (when the bucket was last full-or-counted, reads left then); a key whose
        # bucket is full again is forgotten, so the map holds only the keys reading now.
        self._buckets: dict[str, tuple[float, float]] = {}
        self.waited = 0  # reads that had to wait their turn (observability)

    def delay(self, key: str) -> float:
        """Take one read from `key`'s bucket; how long to wait before doing it."""
        now = self._monotonic()
        stamp, left = self._buckets.get(key, (now, float(self.burst)))
        left = min(float(self.burst), left + (now - stamp) * self.rate) - 1.0
        self._buckets[key] = (now, left)
        if len(self._buckets) > 10_000:  # keep memory bounded: drop the full buckets
            self._forget_full(now)
        return 0.0 if left >= 0 else -left / self.rate

    async def turn(self, key: str) -> None:
        """Wait until `key` may do one more read."""
        wait = self.delay(key)
        if wait > 0:
            self.waited += 1
            await asyncio.sleep(wait)

    def _forget_full(self, now: float) -> None:
        for key, (stamp, left) in list(self._buckets.items()):
            if left + (now - stamp) * self.rate >= self.burst:
                del self._buckets[key]
