"""Trade management: validated against the mirror, then queued as commands for the agent."""

from __future__ import annotations

import asyncio

import pytest

from signalosd import keys
from signalosd.models import CommandType
from signalosd.outbox.enqueue import enqueue
from tests.fake_agent import until


async def test_trades_lists_live_trades_by_default_and_filters(daemon):
    live = await daemon.add_trade(symbol="XAUUSD")
    await daemon.add_trade(symbol="EURUSD")
    closed = await daemon.add_trade(symbol="XAUUSD", status="closed")
    _, body = await daemon.request("GET", "/api/trades", daemon.admin)
    assert closed not in [t["id"] for t in body["trades"]]
    _, body = await daemon.request("GET", "/api/trades?symbol=XAUUSD&status=all", daemon.admin)
    assert sorted(t["id"] for t in body["trades"]) == sorted([live, closed])
    _, body = await daemon.request("GET", "/api/trades?status=closed", daemon.admin)
    assert [t["id"] for t in body["trades"]] == [closed]


async def test_close_queues_a_command_and_marks_the_trade_closing(daemon):
    trade_id = await daemon.add_trade(ticket=777, volume=0.3)
    status, body = await daemon.request("POST", f"/api/trades/{trade_id}/close", daemon.admin)
    assert status == 202
    command = body["command"]
    assert command["type"] == "close_trade" and command["status"] == "queued"
    assert command["trade_id"] == trade_id
    assert command["params"] == {"ticket": 777, "symbol": "EURUSD", "side": "buy", "volume": 0.3}
    _, trade = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert trade["status"] == "closing"
    types = [e["type"] for e in await daemon.events()]
    assert types[-2:] == ["command_queued", "trade_update"]


@pytest.mark.parametrize(
    ("body", "closed"),
    [
        ({}, 0.5),  # default: half
        ({"fraction": 0.25}, 0.25),
        ({"percentage": 30}, 0.3),  # the seed's body
        ({"volume": 0.337}, 0.33),  # rounded down to the 0.01 step
        ({"fraction": 0.999}, 0.99),
    ],
)
async def test_partial_close_volume_is_rounded_down_to_the_step(daemon, body, closed):
    trade_id = await daemon.add_trade(volume=1.0)
    status, reply = await daemon.request(
        "POST", f"/api/trades/{trade_id}/partial-close", daemon.admin, json=body
    )
    assert status == 202, reply
    assert reply["command"]["params"]["volume"] == pytest.approx(closed)


@pytest.mark.parametrize("body", [{"volume": 0.1}, {"fraction": 0.6}, {"volume": 0.04}])
async def test_partial_close_refuses_a_rest_or_part_below_the_minimum(daemon, body):
    trade_id = await daemon.add_trade(volume=0.1, volume_min=0.05, volume_step=0.01)
    status, reply = await daemon.request(
        "POST", f"/api/trades/{trade_id}/partial-close", daemon.admin, json=body
    )
    assert status == 422
    assert reply["error"]["code"] == "invalid_volume"
    assert "minimum volume" in reply["error"]["message"]


@pytest.mark.parametrize(
    ("side", "body", "ok"),
    [
        ("buy", {"sl": 1.09, "tp": 1.12}, True),
        ("buy", {"sl": 1.102}, False),  # SL above price for a buy
        ("buy", {"tp": 1.100}, False),  # TP below price for a buy
        ("sell", {"sl": 1.12, "tp": 1.05}, True),
        ("sell", {"sl": 1.09}, False),  # SL below price for a sell
        ("sell", {"stopLoss": 1.12, "takeProfit": 1.05}, True),  # the seed's body
        ("buy", {"sl": None}, True),  # null removes the level
    ],
)
async def test_modify_checks_levels_against_the_current_price(daemon, side, body, ok):
    trade_id = await daemon.add_trade(side=side, current_price=1.1010, sl=1.08)
    status, reply = await daemon.request(
        "PUT", f"/api/trades/{trade_id}/modify", daemon.admin, json=body
    )
    assert (status == 202) is ok, reply
    if ok:
        params = reply["command"]["params"]
        expected_sl = body.get("sl", body.get("stopLoss", 1.08))
        assert params["sl"] == expected_sl
    else:
        assert reply["error"]["code"] == "invalid_stops"


async def test_trailing_stop_takes_the_seed_body(daemon):
    trade_id = await daemon.add_trade()
    status, reply = await daemon.request(
        "POST",
        f"/api/trades/{trade_id}/trailing-stop",
        daemon.admin,
        json={"distance": 0.002, "step": 0.0005},
    )
    assert status == 202
    assert reply["command"]["params"]["distance"] == 0.002
    assert reply["command"]["params"]["step"] == 0.0005
    status, reply = await daemon.request(
        "POST",
        f"/api/trades/{trade_id}/trailing-stop",
        daemon.admin,
        json={"distance": 0.001, "step": 0.01},
    )
    assert status == 422


async def test_trade_management_is_allowed_while_halted(daemon):
    trade_id = await daemon.add_trade()
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    status, _ = await daemon.request("POST", f"/api/trades/{trade_id}/close", daemon.admin)
    assert status == 202  # reducing risk is always possible


async def long_polls_on(daemon, command_id: str) -> int:
    """How many `?wait=` requests wait on the command.

    A waiter registers, then queues its first read of the command on the point-read lane, so
    once it is counted that read is ahead of the token check of any request sent afterwards:
    what the request returns then comes from the wake-up, not from a late first read."""
    return daemon.app[keys.WAITERS].waiting(command_id)


async def test_command_wait_returns_as_soon_as_the_command_finishes(daemon):
    account_id = await daemon.account_id()
    policy = daemon.app[keys.POLICY]
    entry = await daemon.db.write(
        lambda tx: enqueue(
            tx, policy, account_id, CommandType.OPEN_TRADE, {"symbol": "EURUSD"}, {"kind": "system"}
        )
    )
    waiting = asyncio.create_task(
        daemon.request("GET", f"/api/commands/{entry['id']}?wait=20", daemon.admin)
    )
    await until(lambda: long_polls_on(daemon, entry["id"]))
    assert not waiting.done()
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    status, body = await asyncio.wait_for(waiting, 5)
    assert status == 200 and body["command"]["status"] == "cancelled"


async def test_command_wait_gives_the_current_status_on_timeout(daemon):
    _, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    status, body = await daemon.request(
        "GET", f"/api/commands/{reply['command']['id']}?wait=0.1", daemon.admin
    )
    assert status == 200 and body["command"]["status"] == "queued"


async def test_open_trade_commands_expire_soon_and_others_later(daemon):
    account_id = await daemon.account_id()
    policy = daemon.app[keys.POLICY]
    entry = await daemon.db.write(
        lambda tx: enqueue(tx, policy, account_id, CommandType.OPEN_TRADE, {}, {"kind": "system"})
    )
    _, sync = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    now = daemon.clock.now()
    from datetime import datetime

    def ttl(c):
        return (datetime.fromisoformat(c["expires_at"]) - now).total_seconds()

    assert ttl(entry) == pytest.approx(daemon.settings.open_trade_ttl_s, abs=0.01)
    assert ttl(sync["command"]) == pytest.approx(daemon.settings.command_ttl_s, abs=0.01)
