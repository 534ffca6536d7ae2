"""Pure domain rules: mode transitions and trade-request validation. No I/O.

These functions are called inside the store's write transaction with the row as it is at that
moment, so a decision and the change it allows are atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from signalosd.errors import ApiError, ErrorCode
from signalosd.models import Mode, Side, TradeStatus


class ModeAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    EMERGENCY_STOP = "emergency_stop"


@dataclass(frozen=True)
class Transition:
    before: Mode
    after: Mode

    @property
    def changed(self) -> bool:
        return self.before != self.after


def transition(current: Mode, action: ModeAction, *, confirm_halt: bool = False) -> Transition:
    """The mode after `action`, or an ApiError when the action is refused.

    Emergency stop wins from anywhere. Leaving `halted` needs an explicit confirmation, and a
    pause never softens a halt (it would let a later plain resume restart trading).
    """
    if action is ModeAction.EMERGENCY_STOP:
        return Transition(current, Mode.HALTED)
    if action is ModeAction.PAUSE:
        if current is Mode.HALTED:
            raise ApiError(
                ErrorCode.MODE_CONFLICT,
                "trading is halted by an emergency stop; pausing would not change that. "
                "To leave the halt, resume with confirm_halt: true "
                "(CLI: signalos resume --from-halt)",
                {"mode": current.value},
            )
        return Transition(current, Mode.PAUSED)
    # resume
    if current is Mode.HALTED and not confirm_halt:
        raise ApiError(
            ErrorCode.HALT_CONFIRMATION_REQUIRED,
            "trading is halted by an emergency stop; resuming needs confirm_halt: true "
            "(CLI: signalos resume --from-halt)",
            {"mode": current.value},
        )
    return Transition(current, Mode.RUNNING)


def require_manageable(trade_id: int, status: TradeStatus) -> None:
    """Refuse management of a trade that is no longer (or not yet) a live position."""
    if status is TradeStatus.CLOSING:
        raise ApiError(
            ErrorCode.TRADE_CLOSING,
            f"trade {trade_id} is already being closed; wait for the close to finish",
            {"trade_id": trade_id, "status": status.value},
        )
    if status is not TradeStatus.OPEN:
        raise ApiError(
            ErrorCode.TRADE_NOT_OPEN,
            f"trade {trade_id} is {status.value}, not open; only open trades can be managed",
            {"trade_id": trade_id, "status": status.value},
        )


def validate_stops(side: Side, price: float | None, sl: float | None, tp: float | None) -> None:
    """SL must be on the losing side of the current price and TP on the winning side."""
    if price is None:
        return  # no quote yet: the broker will validate
    problems: dict[str, str] = {}
    if side is Side.BUY:
        if sl is not None and sl >= price:
            problems["sl"] = f"stop loss {sl} must be below the current price {price} for a buy"
        if tp is not None and tp <= price:
            problems["tp"] = f"take profit {tp} must be above the current price {price} for a buy"
    else:
        if sl is not None and sl <= price:
            problems["sl"] = f"stop loss {sl} must be above the current price {price} for a sell"
        if tp is not None and tp >= price:
            problems["tp"] = f"take profit {tp} must be below the current price {price} for a sell"
    if problems:
        raise ApiError(ErrorCode.INVALID_STOPS, "; ".join(problems.values()), problems)


def partial_close_volume(
    volume: float,
    *,
    fraction: float | None,
    lots: float | None,
    volume_min: float,
    volume_step: float,
) -> float:
    """Lots to close, rounded down to the volume step, leaving at least the minimum open.

    Refuses (rather than silently closing everything or nothing) when either the closed part
    or the remaining part would fall below the broker's minimum volume.
    """
    step = Decimal(str(volume_step))
    total = Decimal(str(volume))
    wanted = Decimal(str(lots)) if lots is not None else total * Decimal(str(fraction or 0.5))
    close = (wanted / step).to_integral_value(rounding=ROUND_DOWN) * step
    rest = total - close
    minimum = Decimal(str(volume_min))
    details = {
        "volume": volume,
        "requested": float(wanted),
        "close_volume": float(close),
        "remaining": float(rest),
        "volume_min": volume_min,
        "volume_step": volume_step,
    }
    if close < minimum:
        raise ApiError(
            ErrorCode.INVALID_VOLUME,
            f"closing {float(close)} lots is below the minimum volume {volume_min}; "
            "close a larger part or the whole trade",
            details,
        )
    if rest < minimum:
        raise ApiError(
            ErrorCode.INVALID_VOLUME,
            f"the remaining {float(rest)} lots would fall below the minimum volume "
            f"{volume_min}; close the whole trade instead",
            details,
        )
    return float(close)


def latched_refusal(latch_limit: str, daily: bool) -> ApiError:
    """Why resuming from the halt is refused while the guard's trip is latched."""
    how = "signalos risk reset --yes, or POST /api/risk/reset"
    if daily:
        said = (
            "is latched until the next reset time; trading can resume after it, or after a "
            f"confirmed reset ({how})"
        )
    else:
        said = f"is latched: trading can resume only after a confirmed reset ({how})"
    return ApiError(
        ErrorCode.RISK_LATCHED,
        f"the risk guard's {latch_limit} trip {said}",
        {"limit": latch_limit},
    )
