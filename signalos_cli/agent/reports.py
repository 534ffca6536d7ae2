"""What the agent tells the daemon about positions and the account: `trade_update`,
`sync_snapshot` and `mt5_status_update` payloads, and the diff that decides when a position is
worth a `trade_update`.

The `Tracker` remembers the last state reported for each ticket. A position is reported when it
appears, when its volume, SL, TP or side changes, or when its price moved by more than the noise
threshold (relative, default 0.01 %), and when it disappears: with the broker's close details
when known (SL/TP hit, closed by a command, virtual stop), else as closed outside SignalOS.
At most one report per position per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from signalos_cli.agent import stops
from signalos_cli.agent.broker import (
    AccountInfo,
    Broker,
    BrokerError,
    BrokerPosition,
    ClosedPosition,
)
from signalos_cli.agent.journal import Journal
from signalosd.models import AccountStatus, Position, SyncSnapshot, TradeUpdate

log = logging.getLogger("signalos.agent.reports")

PRICE_NOISE = 1e-4  # relative price move below which a position is not re-reported
CLOSED_OUTSIDE = "closed outside SignalOS"
_SAME = ("type", "volume", "sl", "tp", "trade_id")


def position(pos: BrokerPosition, trade_id: int | None) -> dict[str, Any]:
    fields = asdict(pos)
    fields["comment"] = (pos.comment or "")[:64] or None
    fields["trade_id"] = trade_id
    return Position.model_validate(fields).model_dump(mode="json")


def account(info: AccountInfo) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(info).items() if k != "extra"}
    return AccountStatus.model_validate(fields).model_dump(mode="json")


def snapshot(
    positions: Iterable[BrokerPosition], trade_ids: Mapping[int, int], info: AccountInfo | None
) -> dict[str, Any]:
    return SyncSnapshot.model_validate(
        {
            "positions": [position(p, trade_ids.get(p.ticket)) for p in positions],
            "account": account(info) if info is not None else None,
        }
    ).model_dump(mode="json")


def closed(report: dict[str, Any], at: str, price: float | None, reason: str) -> dict[str, Any]:
    """A `trade_update` with status closed, from the position's last report."""
    fields = dict(report)
    fields.update(status="closed", closed_at=at, close_price=price, close_reason=reason[:200])
    if price is not None:
        fields["price_current"] = price
    return TradeUpdate.model_validate(fields).model_dump(mode="json")


def _moved(before: float | None, after: float | None, noise: float) -> bool:
    if before is None or after is None:
        return before != after
    return abs(after - before) > noise * max(abs(before), 1e-12)


class Tracker:
    """The last state reported to the daemon, per ticket."""

    def __init__(self, noise: float = PRICE_NOISE) -> None:
        self.noise = noise
        self.known: dict[int, dict[str, Any]] = {}

    def reset(self, positions: Iterable[BrokerPosition], trade_ids: Mapping[int, int]) -> None:
        """A snapshot was sent: the daemon now knows exactly these positions."""
        self.known = {p.ticket: position(p, trade_ids.get(p.ticket)) for p in positions}

    def diff(
        self,
        positions: Iterable[BrokerPosition],
        trade_ids: Mapping[int, int],
        closures: Iterable[ClosedPosition],
        now: str,
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """`trade_update` payloads for what changed, and the tickets that closed."""
        updates: list[dict[str, Any]] = []
        gone: list[int] = []
        current = {p.ticket: p for p in positions}
        explained: dict[int, ClosedPosition] = {}
        for closure in closures:
            if closure.position.ticket not in current:
                explained[closure.position.ticket] = closure
        for ticket in sorted(set(self.known) | set(explained)):
            if ticket in current:
                continue
            why = explained.get(ticket)
            last = self.known.pop(ticket, None)
            if why is not None:
                base = position(why.position, trade_ids.get(ticket))
                if last is not None and base.get("trade_id") is None:
                    base["trade_id"] = last.get("trade_id")
                base["profit"] = why.profit
                updates.append(closed(base, why.time, why.price, why.reason))
            elif last is not None:
                updates.append(closed(last, now, last.get("price_current"), CLOSED_OUTSIDE))
            gone.append(ticket)
        for ticket, pos in sorted(current.items()):
            report = position(pos, trade_ids.get(ticket))
            last = self.known.get(ticket)
            if (
                last is None
                or any(last.get(k) != report.get(k) for k in _SAME)
                or _moved(last.get("price_current"), report.get("price_current"), self.noise)
            ):
                self.known[ticket] = report
                updates.append(TradeUpdate.model_validate(report).model_dump(mode="json"))
        return updates, gone


class Reporter:
    """Reads the broker on the broker thread and says what to report: closures (the broker's,
    the commands', the virtual stops'), trailing moves, changed positions, snapshots."""

    def __init__(self, broker: Broker, journal: Journal, now: Callable[[], str]) -> None:
        self.broker = broker
        self.journal = journal
        self.tracker = Tracker()
        self._now = now
        self._digits: dict[str, int] = {}

    def observe(
        self, poll: bool, closed: list[ClosedPosition] | None = None
    ) -> list[dict[str, Any]]:
        """On the broker thread: closures, virtual stops, trailing → trade_update payloads."""
        closures = list(closed or [])
        if poll:
            closures += self.broker.poll()
        positions = self.broker.positions()
        virtual, trailing = self.journal.all_virtual(), self.journal.all_trailing()
        watched = [p for p in positions if p.ticket in virtual or p.ticket in trailing]
        if watched:
            quotes = {s: self.broker.quote(s) for s in {p.symbol for p in watched}}
            for s in quotes:
                if s not in self._digits:
                    self._digits[s] = self.broker.symbol(s).digits
            actions = stops.plan(
                watched, quotes, virtual, trailing, self.journal.stealth, self._digits
            )
            if actions:
                by_ticket = {p.ticket: p for p in positions}
                for done in stops.apply(actions, self.broker, self.journal):
                    a = done.action
                    if isinstance(a, stops.ClosePosition) and done.deal is not None:
                        closures.append(ClosedPosition(
                            by_ticket[a.ticket], done.deal.price, done.deal.profit,
                            self._now(), a.reason,
                        ))  # fmt: skip
                positions = self.broker.positions()
        trade_ids = self.journal.all_trade_ids()
        updates, gone = self.tracker.diff(positions, trade_ids, closures, self._now())
        for ticket in gone:
            self.journal.forget(ticket)
        return updates

    def snapshot(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """On the broker thread: pending changes first, then the full snapshot."""
        updates = self.observe(poll=False)
        positions = self.broker.positions()
        trade_ids = self.journal.all_trade_ids()
        self.journal.prune({p.ticket for p in positions})
        try:
            info = self.broker.account()
        except BrokerError as exc:
            log.warning("event=account_failed error=%r", exc.message)
            info = None
        self.tracker.reset(positions, trade_ids)
        return updates, snapshot(positions, trade_ids, info)
