"""The risk guard's limits and memory are kept in the store with the account: a restart in the
middle of a trading day keeps the anchor, the peaks, today's count of entries and a latched
trip (real SQLite file, reopened as a restarted daemon would)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from signalosd.clock import ManualClock
from signalosd.domain.risk_rules import Latch, RiskMemory, advance, memory_from_dict, memory_to_dict
from signalosd.models.risk import RiskLimit, RiskLimits
from signalosd.store.open import open_store, sync_transaction
from tests.conftest import make_settings

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
LIMITS = RiskLimits(daily_loss_pct=5.0, max_drawdown_money=800.0, max_trades_per_day=4)


def test_limits_are_kept_whole_across_a_restart(tmp_path: Path) -> None:
    settings, clock = make_settings(tmp_path), ManualClock(NOW)
    with sync_transaction(settings, clock) as tx:
        account = tx.create_account("desk", {"kind": "system"})
        assert tx.risk_limits(account) is None  # never set: every limit off
        tx.set_risk_limits(account, LIMITS.model_dump(mode="json"))
    with sync_transaction(settings, clock) as tx:
        assert RiskLimits.from_stored(tx.risk_limits(account)) == LIMITS
        tx.set_risk_limits(account, RiskLimits(equity_floor=9_000.0).model_dump(mode="json"))
    with sync_transaction(settings, clock) as tx:
        assert RiskLimits.from_stored(tx.risk_limits(account)) == RiskLimits(
            equity_floor=9_000.0
        )  # replaced, not merged


async def test_a_restart_mid_day_keeps_anchor_peaks_count_and_latch(tmp_path: Path) -> None:
    settings, clock = make_settings(tmp_path), ManualClock(NOW)
    memory = advance(RiskMemory(), LIMITS, 10_000.0, 10_000.0, NOW)
    memory = advance(memory, LIMITS, 10_000.0, 10_600.0, NOW + timedelta(hours=1))
    latch = Latch(RiskLimit.MAX_DRAWDOWN_MONEY, NOW + timedelta(hours=2), 850.0, 800.0)
    memory = replace(memory, trades_today=3, latch=latch)

    db = open_store(settings, clock)
    await db.open()
    account = await db.write(lambda tx: tx.create_account("desk", {"kind": "system"}))
    await db.write(lambda tx: tx.save_risk_memory(account, memory_to_dict(memory)))
    await db.close()

    restarted = open_store(settings, clock)  # the daemon, back before the day's reset
    await restarted.open()
    stored = await restarted.read(lambda tx: tx.risk_memory(account))
    await restarted.close()
    kept = memory_from_dict(stored)
    assert kept == memory
    after = advance(kept, LIMITS, 9_900.0, 9_850.0, NOW + timedelta(hours=3))
    assert (after.day_anchor, after.equity_peak, after.trades_today, after.latch) == (
        10_000.0,
        10_600.0,
        3,
        latch,
    )


def test_an_account_with_nothing_stored_starts_fresh_with_every_limit_off() -> None:
    assert memory_from_dict(None) == RiskMemory()
    assert RiskLimits.from_stored(None) == RiskLimits()
