"""Virtual SL/TP and trailing stops, the same for every broker.

`plan` is pure: given the open positions, the current quotes and the agent's levels it says what
to do; `apply` does it on a broker and records it in the journal. The runner calls both on every
price poll.

- Virtual levels (stealth mode: the broker never sees them) are checked against the price the
  position would close at: a buy closes at the bid (bid <= sl or bid >= tp), a sell at the ask
  (ask >= sl or ask <= tp). The agent then closes the position itself.
- Trailing: for a buy, when `bid - distance` is above the current SL by at least `step` (no
  step: by any improvement), the SL moves to `bid - distance`; a sell mirrors this with
  `ask + distance`. A position without an SL gets one at once. The SL moves at the broker
  (`modify_position`, keeping the TP) or, for a position with virtual levels or in stealth mode,
  virtually.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from signalos_cli.agent.broker import Broker, BrokerError, BrokerPosition, Deal, Quote
from signalos_cli.agent.journal import Journal, Levels, Trailing
from signalosd.models import Side

log = logging.getLogger("signalos.agent.stops")

REASON_SL = "virtual_sl"
REASON_TP = "virtual_tp"


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """A virtual level was crossed: close the whole position."""

    ticket: int
    symbol: str
    reason: str  # REASON_SL or REASON_TP
    price: float  # the bid (buy) or ask (sell) that crossed the level


@dataclass(frozen=True, slots=True)
class MoveStop:
    """Trailing: move the SL (keeping the TP)."""

    ticket: int
    symbol: str
    sl: float
    tp: float | None
    virtual: bool
    best: float  # the price the new SL trails


Action = ClosePosition | MoveStop


@dataclass(frozen=True, slots=True)
class Applied:
    action: Action
    deal: Deal | None = None  # for a close
    error: BrokerError | None = None


def _crossed(side: Side, price: float, levels: Levels) -> str | None:
    if side is Side.BUY:
        if levels.sl is not None and price <= levels.sl:
            return REASON_SL
        if levels.tp is not None and price >= levels.tp:
            return REASON_TP
    else:
        if levels.sl is not None and price >= levels.sl:
            return REASON_SL
        if levels.tp is not None and price <= levels.tp:
            return REASON_TP
    return None


def _trail(
    pos: BrokerPosition, price: float, current: float | None, trailing: Trailing, digits: int | None
) -> float | None:
    """The new SL, or None when it should stay where it is."""
    buy = pos.type is Side.BUY
    candidate = price - trailing.distance if buy else price + trailing.distance
    if digits is not None:
        candidate = round(candidate, digits)
    if candidate <= 0:
        return None
    if current is None:
        return candidate
    gain = candidate - current if buy else current - candidate
    # No step: any improvement, at least half a point so a rounding wobble is not a move.
    tick = 0.5 * 10.0**-digits if digits is not None else 1e-9
    least = trailing.step or tick
    return candidate if gain >= least - 1e-12 else None


def plan(
    positions: Iterable[BrokerPosition],
    quotes: Mapping[str, Quote],
    virtual: Mapping[int, Levels],
    trailing: Mapping[int, Trailing],
    stealth: bool,
    digits: Mapping[str, int] | None = None,
) -> list[Action]:
    """What to do at these prices. At most one action per position; a close wins."""
    actions: list[Action] = []
    for pos in positions:
        quote = quotes.get(pos.symbol)
        if quote is None:
            continue
        price = quote.bid if pos.type is Side.BUY else quote.ask
        levels = virtual.get(pos.ticket)
        is_virtual = levels is not None or stealth
        if levels is not None:
            reason = _crossed(pos.type, price, levels)
            if reason is not None:
                actions.append(ClosePosition(pos.ticket, pos.symbol, reason, price))
                continue
        settings = trailing.get(pos.ticket)
        if settings is None:
            continue
        levels = levels or Levels(None, None)
        current = levels.sl if is_virtual else pos.sl
        new_sl = _trail(pos, price, current, settings, (digits or {}).get(pos.symbol))
        if new_sl is not None:
            tp = levels.tp if is_virtual else pos.tp
            actions.append(MoveStop(pos.ticket, pos.symbol, new_sl, tp, is_virtual, price))
    return actions


def apply(actions: Iterable[Action], broker: Broker, journal: Journal) -> list[Applied]:
    """Carry the actions out; a failure of one does not stop the others."""
    done: list[Applied] = []
    for action in actions:
        try:
            if isinstance(action, ClosePosition):
                deal = broker.close_position(action.ticket)
                log.info(
                    "event=virtual_stop_hit ticket=%s reason=%s price=%s",
                    action.ticket,
                    action.reason,
                    deal.price,
                )
                done.append(Applied(action, deal=deal))
                continue
            if action.virtual:
                journal.set_virtual(action.ticket, action.sl, action.tp)
            else:
                broker.modify_position(action.ticket, action.sl, action.tp)
            settings = journal.trailing(action.ticket)
            if settings is not None:
                journal.set_trailing(action.ticket, replace(settings, best=action.best))
            log.info(
                "event=trailing_moved ticket=%s sl=%s virtual=%s",
                action.ticket,
                action.sl,
                action.virtual,
            )
            done.append(Applied(action))
        except BrokerError as exc:
            log.warning(
                "event=stop_action_failed ticket=%s action=%s error=%r retcode=%s",
                action.ticket,
                type(action).__name__,
                exc.message,
                exc.retcode,
            )
            done.append(Applied(action, error=exc))
    return done
