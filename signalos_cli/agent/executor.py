"""Execute one daemon command on a broker, at most once.

`Executor.execute(command)` takes the command as the daemon sends it (`{id, type, trade_id,
params, expires_at}`) and returns an `Execution`: the `command_result` payload (`{command_id,
ok, error, retcode, data}`), whether it is a replay of a stored result, the positions the command
closed (for the runner's `trade_update`s) and whether the runner must send a snapshot.

At most once: the journal records the command as executing before the broker is called and
stores the result after; a command already in the journal is never run again, its stored result
is returned (`replay=True`). A refusal is stored too, so a redelivery gets the same answer.

Refused before anything reaches the broker (docs/agent.md, "Deadlines" and "The fence"):
- any command past its `expires_at`, judged on the daemon's clock (`now` applies the offset
  measured at `welcome`); an emergency stop has none;
- an `open_trade` unless the local mode is running, and an `open_trade` or `resume` issued in
  an older halt generation than the newest emergency stop this agent knows. The agent learns
  of a stop as the frame arrives (before executing it), and an entry checks again right before
  the order is sent, so a stop that arrives while the entry's pre-trade checks run still wins.

Notes on the params:
- `open_trade` is a market order; `entry` is informational. Its `tp` may be a list (a signal's
  take-profit ladder): the position gets the FIRST one. In stealth mode the position is opened
  without SL/TP at the broker and the levels are kept virtually (see `stops.py`).
- `close_trade`, `partial_close`, `modify_trade`, `trailing_stop` name the position by `ticket`
  (or, failing that, by the command's `trade_id` if this agent opened it).
- `partial_close` rounds its volume DOWN to the symbol's volume step, and refuses when that is
  below the minimum volume or would leave a rest below it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from signalos_cli.agent.broker import (
    RETCODE_INVALID,
    RETCODE_INVALID_VOLUME,
    RETCODE_POSITION_CLOSED,
    Broker,
    BrokerError,
    BrokerPosition,
    ClosedPosition,
)
from signalos_cli.agent.broker_checks import check_close_volume, check_stops, fmt_lots
from signalos_cli.agent.journal import Journal, Trailing, failed_result
from signalosd.clock import iso
from signalosd.models import CommandType, Mode, Side

log = logging.getLogger("signalos.agent.executor")

ERROR_MAX = 500  # CommandResult.error's limit
REASON_COMMAND = "closed by command"
REASON_ESTOP = "emergency stop"


class Refused(Exception):
    """The agent itself refuses the command (not the broker)."""

    def __init__(self, message: str, retcode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retcode = retcode


@dataclass
class Execution:
    result: dict[str, Any]  # the command_result payload
    replay: bool = False  # a stored result of an earlier execution
    closed: list[ClosedPosition] = field(default_factory=list)
    sync: bool = False  # the runner must send a sync_snapshot (force_sync)

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok"))


def _parse_time(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _level(value: Any) -> float | None:
    """A price level from params: None/0 mean "no level" (MT5's 0.0)."""
    if value is None:
        return None
    level = float(value)
    if not math.isfinite(level) or level < 0:
        raise Refused(f"invalid price level {value!r}", RETCODE_INVALID)
    return level or None


def _first_tp(value: Any) -> float | None:
    if isinstance(value, list | tuple):
        return _level(value[0]) if value else None
    return _level(value)


class Executor:
    def __init__(
        self, broker: Broker, journal: Journal, now: Callable[[], datetime] | None = None
    ) -> None:
        self.broker = broker
        self.journal = journal
        self._now = now or (lambda: datetime.now(UTC))
        self._closed: list[ClosedPosition] = []
        self._sync = False

    def execute(self, command: Mapping[str, Any]) -> Execution:
        command_id = str(command.get("id") or "")
        type_ = str(command.get("type") or "")
        stored = self.journal.executed(command_id)
        if stored is not None:
            log.info("event=command_replayed command_id=%s type=%s", command_id, type_)
            return Execution(
                stored.result or failed_result(command_id, "already executing"), replay=True
            )
        self.journal.begin(command_id, type_)
        self._closed, self._sync = [], False
        result: dict[str, Any] = {"command_id": command_id, "ok": True, "error": None,
                                  "retcode": None, "data": {}}  # fmt: skip
        try:
            result["data"] = self._run(type_, command)
        except (BrokerError, Refused) as exc:
            result.update(ok=False, error=exc.message[:ERROR_MAX], retcode=exc.retcode)
        except KeyError as exc:
            result.update(ok=False, error=f"the command lacks the param {exc}")
        except Exception as exc:
            log.exception("event=command_crashed command_id=%s type=%s", command_id, type_)
            result.update(ok=False, error=f"agent error: {exc!r}"[:ERROR_MAX])
        if isinstance(result["data"], dict) and result["data"].get("failed"):
            result["ok"] = False
            summary = str(result["data"].pop("error", "") or "")[:ERROR_MAX]
            result["error"] = result["error"] or summary or None
        self.journal.finish(command_id, result)
        log.info(
            "event=command_executed command_id=%s type=%s ok=%s retcode=%s error=%r",
            command_id,
            type_,
            result["ok"],
            result["retcode"],
            result["error"],
        )
        return Execution(result, closed=self._closed, sync=self._sync)

    # ---- dispatch -------------------------------------------------------------------------

    def _run(self, type_: str, command: Mapping[str, Any]) -> dict[str, Any]:
        params: Mapping[str, Any] = command.get("params") or {}
        trade_id = command.get("trade_id")
        self._check_deadline(command)
        if type_ == CommandType.OPEN_TRADE:
            return self._open(params, trade_id, command)
        if type_ == CommandType.EMERGENCY_STOP:
            return self._emergency_stop(params, command.get("halt_gen"))
        if type_ == CommandType.PAUSE:
            return self._set_mode(Mode.PAUSED)
        if type_ == CommandType.RESUME:
            self._check_fence(command, "this resume")
            return self._set_mode(Mode.RUNNING, bool(params.get("from_halt")))
        if type_ == CommandType.SET_STEALTH:
            return self._set_stealth(bool(params.get("enabled")))
        if type_ == CommandType.FORCE_SYNC:
            self._sync = True
            return {"positions": len(self.broker.positions())}
        handlers: dict[str, Callable[[BrokerPosition, Mapping[str, Any]], dict[str, Any]]] = {
            CommandType.CLOSE_TRADE: self._close,
            CommandType.PARTIAL_CLOSE: self._partial_close,
            CommandType.MODIFY_TRADE: self._modify,
            CommandType.TRAILING_STOP: self._trailing,
        }
        handler = handlers.get(type_)
        if handler is None:
            raise Refused(f"unknown command type {type_!r}: this agent cannot execute it")
        return handler(self._position(params, trade_id), params)

    def _check_deadline(self, command: Mapping[str, Any]) -> None:
        expires_at = command.get("expires_at")
        if not expires_at:
            return  # an emergency stop: never expires
        try:
            deadline = _parse_time(str(expires_at))
        except ValueError:
            raise Refused(f"invalid expires_at {expires_at!r}", RETCODE_INVALID) from None
        if deadline <= self._now():
            raise Refused(
                f"expired before execution (expires_at {expires_at}, by the daemon's clock)"
            )

    def _check_fence(self, command: Mapping[str, Any], what: str) -> None:
        """Refuse what was issued before the newest emergency stop this agent knows of."""
        issued = command.get("halt_gen")
        known = self.journal.halt_gen
        if isinstance(issued, int) and issued < known:
            raise Refused(
                f"{what} was issued before the emergency stop of halt generation {known} "
                f"(it belongs to generation {issued}): refused"
            )

    def _check_entry(self, command: Mapping[str, Any]) -> None:
        mode = self.journal.mode
        if mode is not Mode.RUNNING:
            raise Refused(f"trading is {mode.value} on the agent")
        self._check_fence(command, "this entry")

    def _position(self, params: Mapping[str, Any], trade_id: Any) -> BrokerPosition:
        ticket = params.get("ticket")
        if ticket is None and trade_id is not None:
            ticket = self.journal.ticket_for_trade(int(trade_id))
        if ticket is None:
            raise Refused(f"trade {trade_id} has no ticket at the broker", RETCODE_INVALID)
        for pos in self.broker.positions():
            if pos.ticket == int(ticket):
                return pos
        raise BrokerError(f"position {ticket} is not open", RETCODE_POSITION_CLOSED)

    def _record_close(self, pos: BrokerPosition, price: float, profit: float, reason: str) -> None:
        self._closed.append(ClosedPosition(pos, price, profit, iso(self._now()), reason))

    # ---- trades ---------------------------------------------------------------------------

    def _open(
        self, params: Mapping[str, Any], trade_id: Any, command: Mapping[str, Any]
    ) -> dict[str, Any]:
        self._check_entry(command)
        symbol, side = str(params["symbol"]), Side(params["side"])
        spec = self.broker.symbol(symbol)
        volume = float(params["volume"])
        sl, tp = _level(params.get("sl")), _first_tp(params.get("tp"))
        stealth = self.journal.stealth
        signal_id = params.get("signal_id")
        comment = f"signalos {signal_id}" if signal_id is not None else "signalos"
        if stealth and (sl is not None or tp is not None):
            quote = self.broker.quote(symbol)
            check_stops(spec, side, quote.bid, quote.ask, sl, tp)  # a virtual level must make sense
        # Again, last thing before the order: an emergency stop may have arrived meanwhile.
        self._check_entry(command)
        self._check_deadline(command)
        deal = self.broker.open_position(
            symbol, side, volume, None if stealth else sl, None if stealth else tp, comment
        )
        if stealth:
            self.journal.set_virtual(deal.ticket, sl, tp)
        if trade_id is not None:
            self.journal.set_trade_id(deal.ticket, int(trade_id))
        return {"ticket": deal.ticket, "price": deal.price, "volume": deal.volume,
                "symbol": symbol, "side": side.value, "sl": sl, "tp": tp,
                "virtual": stealth}  # fmt: skip

    def _close(self, pos: BrokerPosition, params: Mapping[str, Any]) -> dict[str, Any]:
        deal = self.broker.close_position(pos.ticket)
        self._record_close(pos, deal.price, deal.profit, REASON_COMMAND)
        return {"ticket": pos.ticket, "price": deal.price, "volume": deal.volume,
                "profit": deal.profit}  # fmt: skip

    def _partial_close(self, pos: BrokerPosition, params: Mapping[str, Any]) -> dict[str, Any]:
        spec = self.broker.symbol(pos.symbol)
        asked = float(params["volume"])
        step = spec.volume_step
        lots = round(math.floor(asked / step + 1e-6) * step, 8)
        if lots < spec.volume_min - step * 1e-6:
            raise Refused(
                f"partial close of {fmt_lots(asked)} lots rounds down to {fmt_lots(lots)}, below "
                f"the minimum {fmt_lots(spec.volume_min)} for {pos.symbol}",
                RETCODE_INVALID_VOLUME,
            )
        lots = check_close_volume(spec, pos.volume, lots)
        deal = self.broker.close_position(pos.ticket, lots)
        remaining = round(pos.volume - deal.volume, 8)
        if remaining <= step * 1e-6:
            self._record_close(pos, deal.price, deal.profit, REASON_COMMAND)
        return {"ticket": pos.ticket, "price": deal.price, "volume": deal.volume,
                "profit": deal.profit, "remaining": remaining}  # fmt: skip

    def _modify(self, pos: BrokerPosition, params: Mapping[str, Any]) -> dict[str, Any]:
        sl = _level(params["sl"]) if "sl" in params else pos.sl
        tp = _level(params["tp"]) if "tp" in params else pos.tp
        virtual = self.journal.virtual(pos.ticket)
        if virtual is None and not self.journal.stealth:
            self.broker.modify_position(pos.ticket, sl, tp)
            return {"ticket": pos.ticket, "sl": sl, "tp": tp, "virtual": False}
        if "sl" not in params and virtual is not None:
            sl = virtual.sl
        if "tp" not in params and virtual is not None:
            tp = virtual.tp
        quote = self.broker.quote(pos.symbol)
        check_stops(self.broker.symbol(pos.symbol), pos.type, quote.bid, quote.ask, sl, tp)
        self.journal.set_virtual(pos.ticket, sl, tp)
        return {"ticket": pos.ticket, "sl": sl, "tp": tp, "virtual": True}

    def _trailing(self, pos: BrokerPosition, params: Mapping[str, Any]) -> dict[str, Any]:
        distance = float(params["distance"])
        step = float(params["step"]) if params.get("step") is not None else None
        if not (math.isfinite(distance) and distance > 0):
            raise Refused(f"invalid trailing distance {params['distance']!r}", RETCODE_INVALID)
        self.journal.set_trailing(pos.ticket, Trailing(distance, step, None))
        return {"ticket": pos.ticket, "distance": distance, "step": step}

    # ---- controls -------------------------------------------------------------------------

    def _emergency_stop(self, params: Mapping[str, Any], halt_gen: Any) -> dict[str, Any]:
        # First: nothing new opens from here on (the runner already did so on arrival).
        self.journal.fence(halt_gen)
        closed: list[int] = []
        failed: list[dict[str, Any]] = []
        if params.get("close_all"):
            for pos in self.broker.positions():
                try:
                    deal = self.broker.close_position(pos.ticket)
                except BrokerError as exc:
                    failed.append({"ticket": pos.ticket, "error": exc.message,
                                   "retcode": exc.retcode})  # fmt: skip
                    continue
                self._record_close(pos, deal.price, deal.profit, REASON_ESTOP)
                closed.append(pos.ticket)
        data: dict[str, Any] = {"mode": Mode.HALTED.value, "closed": closed, "failed": failed}
        if failed:
            data["error"] = f"could not close {len(failed)} of {len(closed) + len(failed)} " + (
                "positions: " + "; ".join(f"{f['ticket']}: {f['error']}" for f in failed)
            )
        return data

    def _set_mode(self, mode: Mode, from_halt: bool = False) -> dict[str, Any]:
        before = self.journal.mode
        if mode is Mode.PAUSED and before is Mode.HALTED:
            mode = Mode.HALTED  # pausing a halted agent must not loosen it
        if before is Mode.HALTED and mode is Mode.RUNNING and not from_halt:
            # The daemon enforces confirm_halt and is the source of truth for the mode.
            log.warning("event=resume_from_local_halt from_halt=false")
        self.journal.set_mode(mode)
        return {"mode": mode.value, "previous_mode": before.value}

    def _set_stealth(self, enabled: bool) -> dict[str, Any]:
        failed: list[dict[str, Any]] = []
        moved: list[int] = []
        if enabled:
            self.journal.set_stealth(True)
            for pos in self.broker.positions():
                if self.journal.virtual(pos.ticket) is not None:
                    continue
                # Virtual first: a crash in between leaves the position guarded twice, not bare.
                self.journal.set_virtual(pos.ticket, pos.sl, pos.tp)
                if pos.sl is None and pos.tp is None:
                    continue
                try:
                    self.broker.modify_position(pos.ticket, None, None)
                    moved.append(pos.ticket)
                except BrokerError as exc:
                    failed.append({"ticket": pos.ticket, "error": exc.message,
                                   "retcode": exc.retcode})  # fmt: skip
        else:
            self.journal.set_stealth(False)
            open_tickets = {p.ticket for p in self.broker.positions()}
            for ticket, levels in self.journal.all_virtual().items():
                if ticket not in open_tickets:
                    continue
                try:
                    self.broker.modify_position(ticket, levels.sl, levels.tp)
                except BrokerError as exc:
                    # Still guarded virtually: the levels stay with the agent.
                    failed.append({"ticket": ticket, "error": exc.message,
                                   "retcode": exc.retcode})  # fmt: skip
                    continue
                self.journal.clear_virtual(ticket)
                moved.append(ticket)
        data: dict[str, Any] = {"enabled": enabled, "moved": moved, "failed": failed}
        if failed:
            where = "kept virtual" if not enabled else "left at the broker"
            data["error"] = f"levels of {len(failed)} positions {where}: " + "; ".join(
                f"{f['ticket']}: {f['error']}" for f in failed
            )
        return data
