"""Order checks both brokers make before touching an account, with MT5's return codes.

The paper broker must refuse what MT5 refuses, and the MT5 adapter checks the same things
before sending so the operator reads "sl 1.08450 must be below 1.08440 ..." instead of the
server's bare "Invalid stops". One implementation keeps the two in agreement.
"""

from __future__ import annotations

import math

from signalos_cli.agent.broker import (
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    BrokerError,
    SymbolSpec,
)
from signalosd.models import Side


def fmt_price(spec: SymbolSpec, price: float) -> str:
    """A price with the symbol's digits, as the terminal shows it."""
    return f"{price:.{spec.digits}f}"


def fmt_lots(volume: float) -> str:
    return f"{volume:.8f}".rstrip("0").rstrip(".")


def step_count(volume: float, step: float) -> int | None:
    """How many volume steps `volume` is, or None when it is not a whole number of them.

    Float lots such as 0.07 are not exact multiples of 0.01 in binary, so the comparison
    allows a millionth of a step.
    """
    n = round(volume / step)
    return n if abs(n * step - volume) <= step * 1e-6 else None


def _on_step(spec: SymbolSpec, volume: float, what: str) -> float:
    """`volume` (an order's, or a close's: `what`) normalised to the symbol's volume step, so
    0.30000000000000004 is sent as 0.3; refused (like MT5) if not finite, not positive or off
    the step."""
    name, step = spec.name, spec.volume_step
    if not math.isfinite(volume) or volume <= 0:
        raise BrokerError(f"invalid {what} {volume} for {name}", RETCODE_INVALID_VOLUME)
    n = step_count(volume, step)
    if n is None:
        raise BrokerError(
            f"{what} {fmt_lots(volume)} is not a multiple of the volume step "
            f"{fmt_lots(step)} for {name}",
            RETCODE_INVALID_VOLUME,
        )
    return round(n * step, 8)


def check_volume(spec: SymbolSpec, volume: float) -> float:
    """Validate an order volume like MT5 (TRADE_RETCODE_INVALID_VOLUME) and return it
    normalised to the step, so 0.30000000000000004 is sent as 0.3."""
    name, step = spec.name, spec.volume_step
    lots = _on_step(spec, volume, "volume")
    if lots < spec.volume_min - step * 1e-6:
        raise BrokerError(
            f"volume {fmt_lots(lots)} is below the minimum {fmt_lots(spec.volume_min)} for {name}",
            RETCODE_INVALID_VOLUME,
        )
    if lots > spec.volume_max + step * 1e-6:
        raise BrokerError(
            f"volume {fmt_lots(lots)} is above the maximum {fmt_lots(spec.volume_max)} for {name}",
            RETCODE_INVALID_VOLUME,
        )
    return lots


def check_close_volume(spec: SymbolSpec, open_volume: float, volume: float | None) -> float:
    """The volume to close: all of it (None), or a partial close that leaves a tradable rest.

    MT5 refuses a partial close whose remainder is below the symbol's minimum volume; saying
    so up front tells the operator to close the whole position instead.
    """
    if volume is None:
        return open_volume
    name, step = spec.name, spec.volume_step
    lots = _on_step(spec, volume, "close volume")
    if lots > open_volume + step * 1e-6:
        raise BrokerError(
            f"close volume {fmt_lots(lots)} is more than the position's "
            f"{fmt_lots(open_volume)} lots",
            RETCODE_INVALID_VOLUME,
        )
    remaining = round(open_volume - lots, 8)
    if remaining <= step * 1e-6:
        return open_volume
    if remaining < spec.volume_min - step * 1e-6:
        raise BrokerError(
            f"closing {fmt_lots(lots)} of {fmt_lots(open_volume)} lots would leave "
            f"{fmt_lots(remaining)}, below the minimum {fmt_lots(spec.volume_min)} for {name}: "
            "close the whole position instead",
            RETCODE_INVALID_VOLUME,
        )
    return lots


def check_stops(
    spec: SymbolSpec, side: Side, bid: float, ask: float, sl: float | None, tp: float | None
) -> None:
    """Validate SL/TP like MT5: levels are measured from the price the position would close
    at (bid for a buy, ask for a sell) and must be at least `stops_level` points away, on
    the losing side for SL and the winning side for TP (TRADE_RETCODE_INVALID_STOPS)."""
    buy = side is Side.BUY
    ref, ref_name = (bid, "bid") if buy else (ask, "ask")
    distance = spec.stops_level * spec.point
    eps = spec.point / 2
    for name, level in (("sl", sl), ("tp", tp)):
        if level is None:
            continue
        if not math.isfinite(level) or level <= 0:
            raise BrokerError(f"invalid {name} {level}", RETCODE_INVALID_STOPS)
        below = (name == "sl") == buy  # buy: sl below, tp above; sell: the reverse
        if below:
            limit = ref - distance
            ok = level < ref - eps and level <= limit + eps
        else:
            limit = ref + distance
            ok = level > ref + eps and level >= limit - eps
        if not ok:
            raise BrokerError(
                f"invalid stops: {name} {fmt_price(spec, level)} for a {side.value} "
                f"{spec.name} must be {'below' if below else 'above'} "
                f"{fmt_price(spec, limit)} ({ref_name} {fmt_price(spec, ref)}, stops level "
                f"{spec.stops_level} points)",
                RETCODE_INVALID_STOPS,
            )
