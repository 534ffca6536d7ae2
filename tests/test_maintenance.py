"""Maintenance keeps the database bounded without breaking a reference: finished commands go
after `command_retention_days`, closed/failed trades and their signals (and skipped signals)
after `trade_retention_days`; live rows, and rows something still names, stay."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

from signalosd import keys
from signalosd.clock import iso
from signalosd.config import Settings
from signalosd.ops import maintenance
from signalosd.outbox import deadlines
from signalosd.store import Tx
from tests.conftest import make_settings

ACTOR = {"kind": "system", "id": None, "label": "test"}
FINISHED = ["succeeded", "failed", "expired", "cancelled"]
UNFINISHED = ["queued", "sent", "acked"]


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, command_retention_days=30, trade_retention_days=365)


class Rows:
    """Rows of each kind with a given age (days before the daemon's clock)."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon

    def _ago(self, days: float) -> str:
        return iso(self.daemon.clock.now() - timedelta(days=days))

    async def command(self, status: str, age: float, trade_id: int | None = None) -> str:
        account_id = await self.daemon.account_id()
        command_id = str(uuid.uuid4())
        when = self._ago(age)
        done_at = when if status in FINISHED else None

        def write(tx: Tx) -> None:
            tx.insert_command(
                command_id, account_id, "close_trade", trade_id, {}, 10, None, ACTOR, 0
            )
            tx.conn.execute(
                "UPDATE commands SET status = ?, created_at = ?, done_at = ? WHERE id = ?",
                (status, when, done_at, command_id),
            )

        await self.daemon.db.write(write)
        return command_id

    async def trade(self, status: str, age: float, signal_id: int | None = None) -> int:
        closed = status in ("closed", "failed")
        when = self._ago(age)
        trade_id: int = await self.daemon.add_trade(
            status=status, signal_id=signal_id, closed_at=when if closed else None
        )
        await self.daemon.db.write(
            lambda tx: tx.conn.execute(
                "UPDATE trades SET updated_at = ? WHERE id = ?", (when, trade_id)
            )
        )
        return trade_id

    async def signal(self, status: str, age: float, trade_id: int | None = None) -> int:
        account_id = await self.daemon.account_id()
        fields = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "source": "test"}

        def write(tx: Tx) -> int:
            signal_id = tx.insert_signal(account_id, fields | {"status": status})
            tx.conn.execute(
                "UPDATE signals SET created_at = ?, trade_id = ? WHERE id = ?",
                (self._ago(age), trade_id, signal_id),
            )
            return signal_id

        return int(await self.daemon.db.write(write))


async def exists(daemon: Any, table: str, key: str, value: Any) -> bool:
    row = await daemon.db.read(
        lambda tx: tx.conn.execute(f"SELECT 1 FROM {table} WHERE {key} = ?", (value,)).fetchone()
    )
    return row is not None


async def column(daemon: Any, table: str, name: str, row_id: Any) -> Any:
    return await daemon.db.read(
        lambda tx: tx.conn.execute(
            f"SELECT {name} FROM {table} WHERE id = ?", (row_id,)
        ).fetchone()[0]
    )


async def no_foreign_key_violations(daemon: Any) -> None:
    bad = await daemon.db.read(lambda tx: tx.conn.execute("PRAGMA foreign_key_check").fetchall())
    assert bad == []


# ---- commands -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "age", "kept"),
    [(s, 31, False) for s in FINISHED]
    + [(s, 29, True) for s in FINISHED]
    + [(s, 400, True) for s in UNFINISHED],
)
async def test_commands(daemon, status: str, age: float, kept: bool) -> None:
    command_id = await Rows(daemon).command(status, age)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert await exists(daemon, "commands", "id", command_id) is kept
    assert done["commands_pruned"] == (0 if kept else 1)


async def test_a_pruned_command_is_no_longer_named_by_its_signal_or_trade(daemon) -> None:
    rows = Rows(daemon)
    trade_id = await rows.trade("open", 100)
    signal_id = await rows.signal("accepted", 100, trade_id)
    command_id = await rows.command("succeeded", 100, trade_id)
    await daemon.db.write(
        lambda tx: (
            tx.update_trade(trade_id, {"command_id": command_id}),
            tx.update_signal(signal_id, {"command_id": command_id}),
        )
    )
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert done["commands_pruned"] == 1
    assert await column(daemon, "trades", "command_id", trade_id) is None
    assert await column(daemon, "signals", "command_id", signal_id) is None
    assert await exists(daemon, "trades", "id", trade_id)  # the trade is live
    assert await exists(daemon, "signals", "id", signal_id)


# ---- trades ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "age", "kept"),
    [
        ("closed", 366, False),
        ("failed", 366, False),
        ("closed", 364, True),
        ("failed", 364, True),
        ("open", 1000, True),
        ("pending", 1000, True),
        ("closing", 1000, True),
    ],
)
async def test_trades(daemon, status: str, age: float, kept: bool) -> None:
    trade_id = await Rows(daemon).trade(status, age)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert await exists(daemon, "trades", "id", trade_id) is kept
    assert done["trades_pruned"] == (0 if kept else 1)


@pytest.mark.parametrize(
    ("command_status", "command_age"), [("acked", 400), ("succeeded", 10), ("failed", 29)]
)
async def test_an_old_closed_trade_a_command_still_names_is_kept(
    daemon, command_status: str, command_age: float
) -> None:
    rows = Rows(daemon)
    trade_id = await rows.trade("closed", 400)
    command_id = await rows.command(command_status, command_age, trade_id)
    await maintenance.run_once(daemon.db, daemon.settings)
    assert await exists(daemon, "trades", "id", trade_id)
    assert await exists(daemon, "commands", "id", command_id)


async def test_an_old_closed_trade_goes_with_its_old_command(daemon) -> None:
    rows = Rows(daemon)
    trade_id = await rows.trade("closed", 400)
    command_id = await rows.command("succeeded", 400, trade_id)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert not await exists(daemon, "commands", "id", command_id)
    assert not await exists(daemon, "trades", "id", trade_id)
    assert (done["commands_pruned"], done["trades_pruned"]) == (1, 1)


# ---- signals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal_status", "signal_age", "trade_status", "trade_age", "signal_kept", "trade_kept"),
    [
        # no trade: age alone decides
        ("skipped", 366, None, None, False, None),
        ("skipped", 364, None, None, True, None),
        ("accepted", 366, None, None, False, None),
        # the trade is live: both stay, however old
        ("accepted", 1000, "open", 1000, True, True),
        ("accepted", 1000, "pending", 1000, True, True),
        ("accepted", 1000, "closing", 1000, True, True),
        # the trade finished recently: both stay
        ("accepted", 1000, "closed", 100, True, True),
        # both old and finished: both go
        ("accepted", 400, "closed", 400, False, False),
        ("accepted", 400, "failed", 400, False, False),
        # a young signal of an old finished trade: the signal stays
        ("accepted", 10, "closed", 400, True, False),
    ],
)
async def test_signals_and_their_trades(
    daemon,
    signal_status: str,
    signal_age: float,
    trade_status: str | None,
    trade_age: float | None,
    signal_kept: bool,
    trade_kept: bool | None,
) -> None:
    rows = Rows(daemon)
    signal_id = await rows.signal(signal_status, signal_age)
    trade_id = None
    if trade_status is not None:
        assert trade_age is not None
        trade_id = await rows.trade(trade_status, trade_age, signal_id)
        await daemon.db.write(lambda tx: tx.update_signal(signal_id, {"trade_id": trade_id}))
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert await exists(daemon, "signals", "id", signal_id) is signal_kept
    assert done["signals_pruned"] == (0 if signal_kept else 1)
    if trade_id is not None:
        assert await exists(daemon, "trades", "id", trade_id) is trade_kept
        if signal_kept and not trade_kept:
            assert await column(daemon, "signals", "trade_id", signal_id) is None
    await no_foreign_key_violations(daemon)


async def test_a_signal_named_by_an_adopted_live_trade_is_kept(daemon) -> None:
    """The entry's placeholder was retired (failed) because the position was adopted under
    another row, which took over the signal: the signal stays while that trade lives."""
    rows = Rows(daemon)
    signal_id = await rows.signal("accepted", 400)
    placeholder = await rows.trade("failed", 400, signal_id)
    adopted = await rows.trade("open", 400, signal_id)
    await daemon.db.write(lambda tx: tx.update_signal(signal_id, {"trade_id": placeholder}))
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert not await exists(daemon, "trades", "id", placeholder)
    assert await exists(daemon, "trades", "id", adopted)
    assert await exists(daemon, "signals", "id", signal_id)
    assert await column(daemon, "signals", "trade_id", signal_id) is None
    assert (done["trades_pruned"], done["signals_pruned"]) == (1, 0)
    await no_foreign_key_violations(daemon)


# ---- through the API, the schedule's settings, the log ---------------------------------------


async def test_a_real_signal_lifecycle_is_compacted_once_old(daemon) -> None:
    status, body = await daemon.request(
        "POST",
        "/api/signals",
        daemon.admin,
        json={"symbol": "EURUSD", "side": "buy", "volume": 0.1, "source": "test"},
    )
    assert status == 202, body
    command_id, trade_id = body["command"]["id"], body["command"]["trade_id"]
    signal_id = body["signal"]["id"]

    # Not delivered: expires (its trade fails), then ages past every retention.
    daemon.clock.advance(3600)
    assert await deadlines.expire_commands(daemon.db, daemon.app[keys.POLICY]) == [command_id]
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert done["commands_pruned"] == done["trades_pruned"] == done["signals_pruned"] == 0

    daemon.clock.advance(31 * 86400)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert (done["commands_pruned"], done["trades_pruned"], done["signals_pruned"]) == (1, 0, 0)
    status, _ = await daemon.request("GET", f"/api/commands/{command_id}", daemon.admin)
    assert status == 404
    status, body = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert status == 200 and body["status"] == "failed", body
    assert await column(daemon, "trades", "command_id", trade_id) is None
    assert await column(daemon, "signals", "command_id", signal_id) is None

    daemon.clock.advance(335 * 86400)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert (done["commands_pruned"], done["trades_pruned"], done["signals_pruned"]) == (0, 1, 1)
    assert not await exists(daemon, "signals", "id", signal_id)
    status, _ = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert status == 404
    await no_foreign_key_violations(daemon)


async def test_one_log_line_with_every_count(daemon, caplog) -> None:
    rows = Rows(daemon)
    await rows.command("succeeded", 40)
    await rows.trade("closed", 400)
    await rows.signal("skipped", 400)
    with caplog.at_level(logging.INFO, logger="signalosd.ops.maintenance"):
        await maintenance.run_once(daemon.db, daemon.settings)
    lines = [r.getMessage() for r in caplog.records if r.name == "signalosd.ops.maintenance"]
    assert lines == [
        "event=maintenance events_pruned=0 idempotency_pruned=0 commands_pruned=1 "
        "trades_pruned=1 signals_pruned=1 account_history_pruned=0"
    ]


def test_retention_settings_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Settings(command_retention_days=0)
    with pytest.raises(ValueError):
        Settings(trade_retention_days=-1)
    assert Settings().command_retention_days == 30
    assert Settings().trade_retention_days == 365
