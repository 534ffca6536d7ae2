"""The wait before an alert's next attempt: exponential from `first` up to `cap`, half of it
random (half jitter), so that many webhooks failing together do not retry in lockstep, and a
receiver that comes back is not hit by every retry at once, yet no wait is shorter than half
the schedule's."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.cap_s = max(cap_s, first_s)
        self._rng = rng or random.Random()

    def ceiling(self, failures: int) -> float:
        """The schedule's wait after `failures` failed attempts (1, 2, …), before jitter."""
        exponent = min(max(failures - 1, 0), 60)  # 2**60 is past any cap
        return float(min(self.cap_s, self.first_s * 2.0**exponent))

    def delay(self, failures: int) -> float:
        """The wait after `failures` failed attempts: in [ceiling / 2, ceiling]."""
        ceiling = self.ceiling(failures)
        return ceiling / 2 + self._rng.random() * ceiling / 2
