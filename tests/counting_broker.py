"""A paper broker that counts its trading calls, and commands as the daemon sends them, for the
agent's tests (this module holds no tests).

`CountingBroker` is a real PaperBroker whose prices move only when a test says so, counting the
trading calls, so a test can show that a command was not executed twice. `command()` builds a
command as the daemon sends it; `make_executor` puts the broker behind the real executor.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from signalos_cli.agent.broker import Deal
from signalos_cli.agent.executor import Executor
from signalos_cli.agent.journal import Journal
from signalos_cli.agent.paper import PaperBroker
from signalos_cli.agent.paper_market import DEFAULT_SYMBOLS

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALM = {name: replace(s, volatility=0.0) for name, s in DEFAULT_SYMBOLS.items()}
_ids = itertools.count(1)


class CountingBroker(PaperBroker):
    """A paper broker whose prices stand still unless set, counting trading calls."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("symbols", CALM)
        kwargs.setdefault("clock", lambda: NOW)
        super().__init__(**kwargs)
        self.calls: list[str] = []

    def open_position(self, *args: Any, **kwargs: Any) -> Deal:
        self.calls.append("open")
        return super().open_position(*args, **kwargs)

    def close_position(self, ticket: int, volume: float | None = None) -> Deal:
        self.calls.append("close")
        return super().close_position(ticket, volume)

    def modify_position(self, ticket: int, sl: float | None, tp: float | None) -> None:
        self.calls.append("modify")
        super().modify_position(ticket, sl, tp)


def command(
    type_: str,
    params: dict[str, Any] | None = None,
    *,
    trade_id: int | None = None,
    expires_at: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id or f"cmd-{next(_ids)}",
        "type": type_,
        "trade_id": trade_id,
        "params": params or {},
        "expires_at": expires_at,
        "attempt": 1,
    }


def in_future(seconds: float = 60) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def open_params(side: str = "buy", volume: float = 0.1, **kw: Any) -> dict[str, Any]:
    return {"symbol": "EURUSD", "side": side, "volume": volume, "sl": None, "tp": [],
            "signal_id": 1} | kw  # fmt: skip


def make_executor(tmp_path: Path, broker: PaperBroker | None = None) -> Executor:
    return Executor(broker or CountingBroker(), Journal.open(tmp_path), now=lambda: NOW)


def open_trade(ex: Executor, **kw: Any) -> int:
    """Open a position through the executor; its ticket."""
    result = ex.execute(command("open_trade", open_params(**kw), trade_id=7)).result
    assert result["ok"], result
    return int(result["data"]["ticket"])
