"""The account history behind the dashboard's equity chart: sampling and its time rules.

Every applied account status (an `mt5_status_update` that passed the status throttle, and a
sync snapshot's account) is folded, in the same transaction, into the account's row of the
current sampling interval (`account_history_interval_s`, aligned to the clock: 09:00:00,
09:01:00, … for 60 s), so the table grows by at most one row per interval per account
whatever the agent sends. The row keeps the interval's last balance and equity and its lowest
and highest equity; statuses the throttle kept out of the database still widen that range
(EquityRange, per agent session), so a dip between two stored statuses is not lost.
Maintenance prunes rows older than `account_history_retention_days`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from signalosd.clock import iso
from signalosd.store import Tx


def interval_start(now: datetime, interval_s: float) -> str:
    """The start of the sampling interval `now` falls in (intervals aligned to the epoch)."""
    start = math.floor(now.timestamp() / interval_s) * interval_s
    return iso(datetime.fromtimestamp(start, UTC))


class EquityRange:
    """The lowest and highest equity an agent reported since its last applied status.

    Lives on the event loop (the session's receive path): `take` is called there, when a
    status is queued to be applied, and its result travels with the status to the writer."""

    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def see(self, equity: float) -> None:
        self.low = min(self.low, equity)
        self.high = max(self.high, equity)

    def take(self, equity: float) -> tuple[float, float]:
        """The range including `equity` (the status being applied), and start again."""
        self.see(equity)
        low, high = self.low, self.high
        self.low, self.high = math.inf, -math.inf
        return low, high


def record(
    tx: Tx,
    account_id: int,
    status: dict[str, Any],
    interval_s: float,
    seen: tuple[float, float] | None = None,
) -> None:
    """Fold one applied status into the account's history (same transaction as the status)."""
    equity = float(status["equity"])
    low, high = seen if seen is not None else (equity, equity)
    tx.sample_account(
        account_id,
        interval_start(tx.now_dt, interval_s),
        float(status["balance"]),
        equity,
        min(low, equity),
        max(high, equity),
    )
