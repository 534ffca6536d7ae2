"""The risk guard in the daemon: a fake agent on /ws/agent drives each breach.

Every status here is sent at the same (manual) time, inside the status throttle's window: only
the first would be applied if the guard did not see the rest, so each trip below also proves
that the guard judges statuses the throttle drops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signalosd import keys
from signalosd.app import create_app
from signalosd.clock import ManualClock, iso
from signalosd.config import Settings
from signalosd.live import risk_timer
from tests.conftest import Harness, make_settings
from tests.fake_agent import WireAgent, connect_agent, position, until
from tests.webhook_receiver import Receiver

SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The guard's own timer is run by the tests (risk_timer.check), on the manual clock.
    return make_settings(tmp_path, risk_check_interval_s=60, webhook_retry_first_s=0.01)


def status(equity: float, balance: float = 10_000.0) -> dict[str, Any]:
    return {
        "balance": balance,
        "equity": equity,
        "margin": 0.0,
        "margin_free": equity,
        "profit": round(equity - balance, 2),
    }


async def set_limits(daemon: Harness, **limits: Any) -> dict[str, Any]:
    code, body = await daemon.request("PUT", "/api/risk/limits", daemon.admin, json=limits)
    assert code == 200, body
    return dict(body)


async def risk(daemon: Harness) -> dict[str, Any]:
    code, body = await daemon.request("GET", "/api/risk", daemon.admin)
    assert code == 200, body
    return dict(body)


async def started(daemon: Harness, equity: float = 10_000.0, **kw: Any) -> WireAgent:
    """An agent connected, one open position, and the day's anchor taken from its status."""
    agent = await connect_agent(daemon, await daemon.token("agent"), snapshot=[position(1)])
    await agent.send("mt5_status_update", status(equity, **kw))

    async def anchored() -> bool:
        return (await risk(daemon))["day"]["anchor"] is not None

    await until(anchored)
    return agent


async def events(daemon: Harness, type_: str) -> list[dict[str, Any]]:
    return await daemon.events(type=type_)


async def check(daemon: Harness) -> int:
    app = daemon.app
    return await risk_timer.check(daemon.db, app[keys.RISK], app[keys.POLICY], daemon.settings)


def at(daemon: Harness, when: datetime) -> None:
    daemon.clock.advance((when - daemon.clock.now()).total_seconds())


async def tripped_by(agent: WireAgent) -> dict[str, Any]:
    command = await agent.command()
    assert command["type"] == "emergency_stop", command
    return command


@pytest.mark.parametrize(
    ("limits", "statuses", "limit", "threshold", "anchor"),
    [
        (
            {"daily_loss_money": 300},
            [(9_750, None), (9_690, None)],
            "daily_loss_money",
            300,
            10_000,
        ),
        ({"daily_loss_pct": 5}, [(9_600, None), (9_490, None)], "daily_loss_pct", 5, 10_000),
        (  # of initial capital, FTMO's way: 5 % of 20,000 from an anchor of 10,000
            {"daily_loss_pct": 5, "daily_loss_of": "initial", "initial_balance": 20_000},
            [(9_100, None), (8_990, None)],
            "daily_loss_pct",
            5,
            10_000,
        ),
        (  # the anchor is the higher of balance and equity at the reset (10,000 / 10,400)
            {"daily_loss_money": 500, "daily_anchor": "max_balance_equity"},
            [(9_950, None), (9_890, None)],
            "daily_loss_money",
            500,
            10_400,
        ),
        (  # the peak of 10,600 came in a status the throttle dropped
            {"max_drawdown_pct": 10},
            [(10_600, None), (10_000, None), (9_530, None)],
            "max_drawdown_pct",
            10,
            10_600,
        ),
        (
            {"max_drawdown_money": 700},
            [(10_300, None), (9_590, None)],
            "max_drawdown_money",
            700,
            10_400,
        ),
        ({"equity_floor": 9_000}, [(9_500, None), (8_999.5, None)], "equity_floor", 9_000, 10_000),
    ],
)
async def test_each_loss_limit_trips_halts_cancels_entries_and_flattens(
    daemon: Harness, limits, statuses, limit, threshold, anchor
):
    await set_limits(daemon, **limits)
    first = 10_400.0 if "daily_anchor" in limits or "max_drawdown_money" in limits else 10_000.0
    agent = await started(daemon, equity=first)
    code, taken = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 202, taken
    entry = await agent.command()
    assert entry["type"] == "open_trade"  # sent, unfinished: the stop must cancel it
    for equity, _ in statuses:
        await agent.send("mt5_status_update", status(equity))
    stop = await tripped_by(agent)
    assert stop["params"]["close_all"] is True
    assert stop["params"]["reason"] == f"risk limit {limit} breached"

    [breach] = await events(daemon, "risk_limit_breached")
    assert breach["data"]["limit"] == limit
    assert breach["data"]["threshold"] == threshold
    assert breach["data"]["anchor"] == anchor
    assert breach["data"]["value"] == pytest.approx(
        statuses[-1][0] if limit == "equity_floor" else anchor - statuses[-1][0]
    )
    assert breach["actor"] == {"kind": "system", "id": None, "label": "risk-guard"}
    [halt] = await events(daemon, "emergency_stop")
    assert halt["seq"] > breach["seq"]  # one transaction: the breach, then its stop
    assert halt["actor"]["label"] == "risk-guard"
    assert entry["id"] in halt["data"]["cancelled_commands"]

    code, skipped = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 200 and skipped["signal"]["status"] == "skipped", skipped
    assert "halted" in skipped["signal"]["reason"]
    state = await risk(daemon)
    assert state["state"] == "tripped" and state["latch"]["limit"] == limit
    code, refused = await daemon.request(
        "POST", "/api/trading/resume", daemon.admin, json={"confirm_halt": True}
    )
    assert code == 409 and refused["error"]["code"] == "risk_latched", refused
    assert limit in refused["error"]["message"]


async def test_a_warning_comes_once_before_the_trip(daemon: Harness):
    await set_limits(daemon, daily_loss_money=500, warn_at_pct=80, flatten_on_breach=False)
    agent = await started(daemon)
    for equity in (9_700, 9_590, 9_580, 9_560, 9_499):  # 82 %, 84 %, 88 %, then over
        await agent.send("mt5_status_update", status(equity))
    stop = await tripped_by(agent)
    assert stop["params"]["close_all"] is False  # flatten_on_breach off: halt only
    kinds = [e["type"] for e in await events(daemon, "risk_*")]
    assert kinds == ["risk_limits_changed", "risk_warning", "risk_limit_breached"]
    [warning] = await events(daemon, "risk_warning")
    assert warning["data"]["limit"] == "daily_loss_money"
    assert warning["data"]["used_pct"] == 82.0


async def test_the_eod_balance_peak_is_the_best_closing_balance(daemon: Harness):
    await set_limits(daemon, max_drawdown_money=500, drawdown_mode="eod_balance")
    agent = await started(daemon)
    # During the day equity runs to 11,000, the balance closes at 10,200: the peak is 10,200.
    await agent.send("mt5_status_update", status(11_000, balance=10_200))

    async def applied() -> bool:  # a new balance is applied at once, throttle or not
        return (await risk(daemon))["equity_peak"] == 11_000

    await until(applied)
    daemon.clock.advance(86_400)  # the next day (Prague midnight passed)
    await agent.send("mt5_status_update", status(10_100, balance=10_100))

    async def next_day() -> bool:
        return (await risk(daemon))["eod_balance_peak"] == 10_200

    await until(next_day)
    await agent.send("mt5_status_update", status(9_750, balance=10_100))  # 450 down: no trip
    await agent.send("mt5_status_update", status(9_690, balance=10_100))  # 510 down
    await tripped_by(agent)
    [breach] = await events(daemon, "risk_limit_breached")
    assert breach["data"]["anchor"] == 10_200
    assert breach["data"]["trip_below"] == 9_700


async def test_entry_limits_skip_the_signal_with_the_reason(daemon: Harness):
    await set_limits(daemon, max_open_trades=2, max_volume_per_trade=0.5, max_trades_per_day=3)
    agent = await started(daemon)  # one position open already
    code, big = await daemon.request(
        "POST", "/api/signals", daemon.admin, json=SIGNAL | {"volume": 1}
    )
    assert code == 200 and big["signal"]["status"] == "skipped"
    assert "max_volume_per_trade" in big["signal"]["reason"]
    code, ok = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 202, ok
    code, full = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 200 and "max_open_trades: 2 trades" in full["signal"]["reason"], full
    assert (await risk(daemon))["entries"]["trades_today"] == 1
    await agent.close()


async def test_the_entry_count_starts_again_at_the_reset(daemon: Harness):
    await set_limits(daemon, max_trades_per_day=2, reset_time="17:00", reset_tz="America/New_York")
    at(daemon, datetime(2026, 1, 5, 21, 30, tzinfo=UTC))  # 16:30 in New York
    for _ in range(2):
        code, body = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
        assert code == 202, body
    code, third = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert "max_trades_per_day: 2 entries" in third["signal"]["reason"], third
    daemon.clock.advance(31 * 60)  # 17:01 in New York: a new trading day
    code, body = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 202, body


@pytest.mark.parametrize(
    ("reset_time", "tripped_at", "reset_at"),
    [
        # Midnight in Prague in winter is 23:00 UTC the day before.
        ("00:00", datetime(2026, 1, 5, 21, 0, tzinfo=UTC), datetime(2026, 1, 5, 23, 0, tzinfo=UTC)),
        # Prague skips 02:00-03:00 on 2026-03-29: a 02:30 reset happens at the jump, 01:00 UTC.
        (
            "02:30",
            datetime(2026, 3, 28, 20, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        ),
        # Midnight in summer time (CEST) is 22:00 UTC.
        ("00:00", datetime(2026, 7, 1, 20, 0, tzinfo=UTC), datetime(2026, 7, 1, 22, 0, tzinfo=UTC)),
    ],
)
async def test_a_daily_trip_clears_at_the_reset_in_prague(
    daemon: Harness, reset_time: str, tripped_at: datetime, reset_at: datetime
):
    at(daemon, tripped_at)
    await set_limits(daemon, daily_loss_money=100, reset_time=reset_time)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(9_850))
    await tripped_by(agent)
    at(daemon, reset_at - timedelta(seconds=1))
    await check(daemon)
    assert (await risk(daemon))["latch"] is not None  # not yet
    at(daemon, reset_at)
    await check(daemon)
    state = await risk(daemon)
    assert state["latch"] is None
    assert state["day"]["start"] == iso(reset_at)
    [cleared] = await events(daemon, "risk_reset")
    assert cleared["data"] == cleared["data"] | {"cleared": "daily_loss_money", "by": "reset_time"}
    # Still halted: leaving the halt is someone's act.
    assert (await daemon.request("GET", "/api/trading/state", daemon.admin))[1]["mode"] == "halted"
    code, body = await daemon.request(
        "POST", "/api/trading/resume", daemon.admin, json={"confirm_halt": True}
    )
    assert code == 202, body


async def test_a_restart_mid_day_keeps_anchor_peak_count_and_latch(aiohttp_client, tmp_path):
    clock = ManualClock()
    settings = make_settings(tmp_path, risk_check_interval_s=60)
    app = create_app(settings, clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    await set_limits(daemon, equity_floor=9_000, max_drawdown_pct=20)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(10_800))  # the peak, in a status throttled
    code, _ = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert code == 202
    assert (await agent.command())["type"] == "open_trade"
    await agent.send("mt5_status_update", status(8_900))
    await tripped_by(agent)
    before = await risk(daemon)
    await daemon.client.close()

    clock.advance(3_600)  # an hour later, the same trading day
    app = create_app(settings, clock)
    again = Harness(await aiohttp_client(app), app, clock)
    after = await risk(again)
    assert after["day"] == before["day"] and after["day"]["anchor"] == 10_000
    assert after["equity_peak"] == before["equity_peak"] == 10_800
    assert after["entries"]["trades_today"] == 1
    assert after["latch"] == before["latch"] and after["latch"]["limit"] == "equity_floor"
    code, refused = await again.request(
        "POST", "/api/trading/resume", again.admin, json={"confirm_halt": True}
    )
    assert code == 409 and refused["error"]["code"] == "risk_latched"


async def test_stale_data_with_trades_open_is_raised_and_can_halt(daemon: Harness):
    await set_limits(daemon, halt_on_stale=True)
    agent = await started(daemon)
    daemon.clock.advance(29)
    assert await check(daemon) == 0  # fresh enough
    daemon.clock.advance(2)
    await check(daemon)
    [stale] = await events(daemon, "risk_data_stale")
    assert stale["data"]["open_trades"] == 1 and stale["data"]["halt"] is True
    stop = await tripped_by(agent)
    assert stop["params"]["close_all"] is False  # halt only: no flattening on blind data
    _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert health["risk"] == {"guarded": True, "stale": True, "latched": None}
    await check(daemon)  # said once
    await agent.send("mt5_status_update", status(10_000))

    async def fresh() -> bool:
        return bool(await events(daemon, "risk_data_fresh"))

    await until(fresh)
    assert len(await events(daemon, "risk_data_stale")) == 1
    assert (await risk(daemon))["stale"] is False


async def test_stale_data_without_positions_is_no_hazard(daemon: Harness):
    await set_limits(daemon, halt_on_stale=True)
    daemon.clock.advance(3_600)
    await check(daemon)  # the day's start
    assert await check(daemon) == 0  # stale, but no trade is at risk: no write at all
    assert await events(daemon, "risk_data_stale") == []


async def test_new_limits_are_judged_against_the_latest_equity_by_the_timer(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"), snapshot=[position(1)])
    await agent.send("mt5_status_update", status(9_400))  # no limits yet: nothing guarded

    async def seen() -> bool:
        _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
        return (health["mt5"] or {}).get("equity") == 9_400

    await until(seen)
    await set_limits(daemon, equity_floor=9_500)
    await check(daemon)
    await tripped_by(agent)
    [breach] = await events(daemon, "risk_limit_breached")
    assert breach["data"]["limit"] == "equity_floor" and breach["data"]["value"] == 9_400


async def test_a_confirmed_reset_clears_a_drawdown_trip_and_is_audited(daemon: Harness):
    await set_limits(daemon, max_drawdown_money=500)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(9_450))
    await tripped_by(agent)
    code, body = await daemon.request("POST", "/api/risk/reset", daemon.admin, json={})
    assert code == 422 and body["error"]["details"] == {"field": "confirm"}
    operator = await daemon.token("operator")
    code, body = await daemon.request("POST", "/api/risk/reset", operator, json={"confirm": True})
    assert code == 200 and body["changed"] is True, body
    assert body["latch"] is None and body["equity_peak"] == 9_450  # measured again from now
    [reset] = await events(daemon, "risk_reset")
    assert reset["data"]["by"] == "operator" and reset["actor"]["role"] == "operator"
    code, again = await daemon.request("POST", "/api/risk/reset", operator, json={"confirm": True})
    assert code == 200 and again["changed"] is False
    code, body = await daemon.request(
        "POST", "/api/trading/resume", operator, json={"confirm_halt": True}
    )
    assert code == 202, body


async def test_a_reset_is_refused_while_the_floor_is_still_crossed(daemon: Harness):
    await set_limits(daemon, equity_floor=9_000)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(8_800))
    await tripped_by(agent)
    code, body = await daemon.request(
        "POST", "/api/risk/reset", daemon.admin, json={"confirm": True}
    )
    assert code == 409 and body["error"]["code"] == "risk_latched", body
    assert "8800.00 is still below the equity_floor level 9000.00" in body["error"]["message"]
    assert (await risk(daemon))["latch"]["limit"] == "equity_floor"  # nothing changed
    assert await events(daemon, "risk_reset") == []


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"daily_loss_pct": 150}, "daily_loss_pct"),
        ({"daily_loss_pct": "5%"}, "daily_loss_pct"),
        ({"reset_tz": "Mars/Olympus"}, "reset_tz"),
        ({"reset_time": "24:00"}, "reset_time"),
        ({"equity_floor": -1}, "equity_floor"),
        ({"max_open_trades": 0}, "max_open_trades"),
        ({"daily_loss": 5}, "daily_loss"),
    ],
)
async def test_bad_limits_are_refused_by_name_and_change_nothing(daemon: Harness, limits, field):
    await set_limits(daemon, equity_floor=5_000)
    code, body = await daemon.request("PUT", "/api/risk/limits", daemon.admin, json=limits)
    assert code == 422, body
    assert [f["field"] for f in body["error"]["details"]["fields"]] == [field]
    assert (await risk(daemon))["limits"]["equity_floor"] == 5_000
    assert len(await events(daemon, "risk_limits_changed")) == 1


async def test_a_viewer_sees_the_guard_but_cannot_change_it(daemon: Harness):
    viewer = await daemon.token("viewer")
    code, body = await daemon.request("PUT", "/api/risk/limits", viewer, json={})
    assert code == 403, body
    code, body = await daemon.request("GET", "/api/risk", viewer)
    assert code == 200 and body["guarded"] is False


async def test_a_trip_reaches_a_webhook_with_the_default_events(daemon: Harness):
    """The alert a trader's phone gets: the breach, then the stop it caused, in seq order."""
    receiver = await Receiver(fail_first=1).start()  # the first attempt fails: retried
    try:
        code, made = await daemon.request(
            "POST", "/api/webhooks", daemon.admin, json={"url": receiver.url(), "format": "json"}
        )
        assert code == 201, made
        await set_limits(daemon, equity_floor=9_000)
        agent = await started(daemon)
        await agent.send("mt5_status_update", status(8_950))
        await tripped_by(agent)
        await receiver.until(lambda: len(receiver.accepted) >= 3)
        got = [(hit.doc["type"], hit.seq) for hit in receiver.accepted]
        kinds = ["risk_limits_changed", "risk_limit_breached", "emergency_stop"]
        assert [t for t, _ in got[:3]] == kinds, got
        assert [seq for _, seq in got] == sorted(seq for _, seq in got)
        assert "equity_floor" in receiver.accepted[1].doc["text"]
    finally:
        await receiver.close()


async def test_a_reset_is_judged_on_the_latest_status_the_throttle_kept_out(daemon: Harness):
    """GET /api/risk shows the latest status; the reset must judge the same one."""
    await set_limits(daemon, equity_floor=9_000)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(8_800))
    await tripped_by(agent)
    await agent.send("mt5_status_update", status(9_100))  # back above: nothing for the guard
    await agent.sync()  # received (and thrown away by the throttle: no event, not stored)
    assert (await risk(daemon))["equity"] == 9_100
    code, body = await daemon.request(
        "POST", "/api/risk/reset", daemon.admin, json={"confirm": True}
    )
    assert code == 200 and body["changed"] is True, body


async def test_metrics_show_a_latched_trip_and_stale_data(daemon: Harness):
    async def metrics() -> str:
        code, text = await daemon.request("GET", "/metrics", daemon.admin)
        assert code == 200
        return str(text)

    assert "signalos_risk_tripped{" not in await metrics()  # no limits: no series
    await set_limits(daemon, equity_floor=9_000)
    agent = await started(daemon)
    text = await metrics()
    assert 'signalos_risk_tripped{account="default"} 0.0' in text
    assert 'signalos_risk_data_stale{account="default"} 0.0' in text
    await agent.send("mt5_status_update", status(8_900))
    await tripped_by(agent)
    daemon.clock.advance(31)
    await check(daemon)
    text = await metrics()
    assert 'signalos_risk_tripped{account="default"} 1.0' in text
    assert 'signalos_risk_data_stale{account="default"} 1.0' in text


async def test_a_floor_crossed_under_a_daily_latch_trips_again_and_takes_the_latch(daemon: Harness):
    """The trader hears of the floor now, and its latch (a confirmed reset) replaces the daily
    one (which the next reset would have cleared)."""
    await set_limits(daemon, daily_loss_money=100, equity_floor=9_000)
    agent = await started(daemon)
    await agent.send("mt5_status_update", status(9_850))
    await tripped_by(agent)
    await agent.send("mt5_status_update", status(9_800))  # worse, still only the daily limit
    await agent.send("mt5_status_update", status(8_950))
    second = await tripped_by(agent)
    assert second["params"]["reason"] == "risk limit equity_floor breached"
    breaches = [e["data"]["limit"] for e in await events(daemon, "risk_limit_breached")]
    assert breaches == ["daily_loss_money", "equity_floor"]
    latch = (await risk(daemon))["latch"]
    assert latch["limit"] == "equity_floor" and latch["clears"] == "by a confirmed reset"
