"""The daemon's side of /ws/agent: sessions, delivery, results and reports."""

from __future__ import annotations

import pytest

from signalosd import keys
from tests.conftest import make_settings
from tests.fake_agent import command_status, connect_agent, force_sync, position, until

SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "sl": 1.09, "tp": [1.12, 1.13]}


@pytest.fixture
async def agent_token(daemon) -> str:
    return await daemon.token("agent", label="desk pc")


async def types_of(daemon) -> list[str]:
    return [e["type"] for e in await daemon.events()]


async def test_only_agent_tokens_may_connect(daemon):
    ws = await daemon.client.ws_connect("/ws/agent")
    await ws.send_json({"type": "authenticate", "data": {"token": daemon.admin}})
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "error" and "agent token" in msg["data"]["message"]
    await ws.receive(timeout=5)
    assert ws.close_code == 4401


async def test_a_session_without_hello_is_closed(daemon, agent_token):
    ws = await daemon.client.ws_connect("/ws/agent")
    await ws.send_json({"type": "authenticate", "data": {"token": agent_token}})
    await ws.receive_json(timeout=5)
    await ws.send_json({"type": "trade_update", "data": {}})
    msg = await ws.receive_json(timeout=5)
    assert msg["data"]["code"] == "bad_hello"
    await ws.receive(timeout=5)
    assert ws.close_code == 1008


async def test_connect_and_disconnect_are_events_and_health_shows_the_agent(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert health["agent"]["connected"] is True
    assert health["agent"]["broker"] == "paper" and health["agent"]["login"] == 42
    assert health["agent"]["last_seen"]
    await agent.close()

    async def gone():
        _, h = await daemon.request("GET", "/api/system/health", daemon.admin)
        return h["agent"]["connected"] is False and "agent_disconnected" in await types_of(daemon)

    await until(gone)
    types = await types_of(daemon)
    assert types.index("agent_connected") < types.index("agent_disconnected")


async def test_a_newer_session_replaces_the_older_with_4409(daemon, agent_token):
    first = await connect_agent(daemon, agent_token)
    second = await connect_agent(daemon, agent_token)
    msg = await first.ws.receive(timeout=5)
    assert (msg.data, msg.extra) == (4409, "replaced by a newer agent session for this account")
    await second.sync()  # the new one keeps working
    assert len(daemon.app[keys.AGENTS]) == 1


async def test_a_signal_becomes_a_command_the_agent_executes(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    status, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert status == 202
    trade_id = reply["command"]["trade_id"]
    _, trade = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert trade["status"] == "pending" and trade["signal_id"] == reply["signal"]["id"]

    command = await agent.command()
    assert command["type"] == "open_trade" and command["params"]["tp"] == [1.12, 1.13]
    assert command["expires_at"] is not None and command["attempt"] == 1
    await agent.send("ack", {"messageId": command["id"]})
    await agent.result(command["id"], data={"ticket": 5001, "price": 1.1002, "volume": 0.1})
    await agent.send(
        "trade_update", position(5001, price_open=1.1002, sl=1.09, tp=1.12, trade_id=trade_id)
    )
    await agent.sync()

    async def opened():
        return await command_status(daemon, command["id"]) == "succeeded"

    await until(opened)
    _, trade = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert (trade["status"], trade["ticket"], trade["open_price"]) == ("open", 5001, 1.1002)
    assert trade["sl"] == 1.09 and trade["tp"] == 1.12
    types = await types_of(daemon)
    for kind in (
        "signal_created",
        "command_queued",
        "command_sent",
        "command_acked",
        "command_succeeded",
        "trade_opened",
        "trade_update",
    ):
        assert kind in types, kind
    assert types.index("command_sent") < types.index("command_acked")


async def test_a_failed_command_reaches_the_operator_with_the_reason(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    command = await agent.command()
    await agent.result(
        command["id"],
        ok=False,
        retcode=10019,
        error="not enough money: margin 120.50 needed, 80.00 free",
    )
    waited = await daemon.request("GET", f"/api/commands/{command['id']}?wait=5", daemon.admin)
    assert waited[1]["command"]["status"] == "failed"
    assert waited[1]["command"]["result"]["retcode"] == 10019
    failed = [e for e in await daemon.events() if e["type"] == "command_failed"]
    assert failed[0]["data"]["reason"].startswith("not enough money")
    _, trade = await daemon.request(
        "GET", f"/api/trades/{reply['command']['trade_id']}", daemon.admin
    )
    assert trade["status"] == "failed" and "not enough money" in trade["close_reason"]


async def test_a_repeated_result_changes_nothing(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    _, _reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    command = await agent.command()
    await agent.result(command["id"], data={"positions": 0})
    await agent.result(command["id"], ok=False, error="late duplicate")
    await agent.sync()
    await until(lambda: _is(daemon, command["id"], "succeeded"))
    assert [e["type"] for e in await daemon.events()].count("command_succeeded") == 1


async def _is(daemon, command_id, status):
    return await command_status(daemon, command_id) == status


async def test_commands_queued_while_offline_arrive_in_order_with_emergency_stop_first(
    daemon, agent_token
):
    ids = []
    for _ in range(3):
        _, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
        ids.append(reply["command"]["id"])
    _, stop = await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    agent = await connect_agent(daemon, agent_token)
    got = [(await agent.command())["id"] for _ in range(4)]
    assert got == [stop["command"]["id"], *ids]


async def test_emergency_stop_cancels_queued_entries_so_they_never_reach_the_agent(
    daemon, agent_token
):
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    agent = await connect_agent(daemon, agent_token)
    assert (await agent.command())["type"] == "emergency_stop"
    later = await force_sync(daemon)
    await agent.next_command_is(later)  # in order: the entry was not sent before it
    assert await command_status(daemon, reply["command"]["id"]) == "cancelled"


async def test_an_expired_entry_is_never_sent(daemon, agent_token):
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    daemon.clock.advance(daemon.settings.open_trade_ttl_s + 1)
    agent = await connect_agent(daemon, agent_token)
    later = await force_sync(daemon)
    await agent.next_command_is(later)  # in order: the entry was not sent before it
    assert await command_status(daemon, reply["command"]["id"]) == "expired"
    _, trade = await daemon.request(
        "GET", f"/api/trades/{reply['command']['trade_id']}", daemon.admin
    )
    assert trade["status"] == "failed"


async def test_an_unacked_command_is_sent_again_after_the_ack_timeout(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    first = await force_sync(daemon)
    await agent.next_command_is(first)
    # Before the ack timeout it is not sent again: the next command is one queued later (acked
    # at once, so that it is not sent again itself).
    later = await force_sync(daemon)
    await agent.next_command_is(later)
    await agent.send("ack", {"messageId": later})
    await until(lambda: _is(daemon, later, "acked"))
    daemon.clock.advance(daemon.settings.ack_timeout_s + 0.1)
    again = await agent.command(within=3)
    assert again["id"] == first and again["attempt"] == 2
    await agent.send("ack", {"messageId": first})
    await until(lambda: _is(daemon, first, "acked"))
    daemon.clock.advance(daemon.settings.ack_backoff_max_s + 1)
    last = await force_sync(daemon)
    await agent.next_command_is(last)  # acked: not sent again


async def test_everything_unfinished_is_sent_again_to_a_new_session(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    _, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    command = await agent.command()
    await agent.send("ack", {"messageId": command["id"]})
    await agent.sync()
    await agent.close()
    again = await connect_agent(daemon, agent_token)
    assert (await again.command())["id"] == reply["command"]["id"]


async def test_sync_snapshot_closes_missing_trades_and_adopts_unknown_positions(
    daemon, agent_token
):
    gone = await daemon.add_trade(ticket=7001)
    kept = await daemon.add_trade(ticket=7002, sl=None)
    agent = await connect_agent(
        daemon, agent_token, snapshot=[position(7002, sl=1.05), position(7003)]
    )
    await agent.sync()

    async def synced():
        return "sync_completed" in await types_of(daemon)

    await until(synced)
    done = next(e for e in await daemon.events() if e["type"] == "sync_completed")
    assert done["data"] == {"adopted": 1, "closed": 1, "updated": 1, "positions": 2}
    _, trade = await daemon.request("GET", f"/api/trades/{gone}", daemon.admin)
    assert trade["status"] == "closed" and "broker" in trade["close_reason"]
    _, trade = await daemon.request("GET", f"/api/trades/{kept}", daemon.admin)
    assert trade["sl"] == 1.05
    _, listed = await daemon.request("GET", "/api/trades", daemon.admin)
    assert 7003 in [t["ticket"] for t in listed["trades"]]


async def test_a_closed_trade_update_closes_the_mirror(daemon, agent_token):
    trade_id = await daemon.add_trade(ticket=7100)
    agent = await connect_agent(daemon, agent_token)
    await agent.send(
        "trade_update",
        position(
            7100,
            status="closed",
            close_price=1.1030,
            close_reason="tp",
            closed_at="2026-01-05T10:00:00Z",
        ),
    )
    await agent.sync()

    async def closed():
        _, t = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
        return t["status"] == "closed"

    await until(closed)
    _, trade = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert trade["close_reason"] == "tp" and trade["current_price"] == 1.1030
    assert "trade_closed" in await types_of(daemon)


async def test_status_updates_are_throttled_but_changes_get_through(daemon, agent_token):
    trade_id = await daemon.add_trade(ticket=7300)
    agent = await connect_agent(daemon, agent_token)
    status = {"balance": 10000, "equity": 10010, "connected": True, "trade_allowed": True}
    for equity in (10010, 10011, 10012):
        await agent.send("mt5_status_update", status | {"equity": equity})
    await agent.send("mt5_status_update", status | {"trade_allowed": False})
    # The agent's messages are applied in the order it sent them: once this later trade update
    # is in the log, every status update before it was either recorded or dropped.
    await agent.send("trade_update", position(7300, profit=1.0))

    async def later_update_applied():
        return any(
            e["type"] == "trade_update" and e["data"].get("id") == trade_id
            for e in await daemon.events()
        )

    await until(later_update_applied)
    recorded = [e["data"] for e in await daemon.events() if e["type"] == "mt5_status_update"]
    assert [(s["equity"], s["trade_allowed"]) for s in recorded] == [(10010, True), (10010, False)]
    _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert health["mt5"]["trade_allowed"] is False


async def test_a_bad_agent_message_gets_an_error_and_the_session_lives(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    await agent.send("trade_update", {"ticket": "x"})
    msg = await agent.recv()
    assert msg["type"] == "error" and msg["data"]["code"] == "validation_error"
    await agent.send("teleport", {})
    assert (await agent.recv())["data"]["code"] == "unknown_type"
    await agent.sync()


async def test_many_updates_are_group_committed_in_order(daemon, agent_token):
    trade_id = await daemon.add_trade(ticket=7200)
    agent = await connect_agent(daemon, agent_token)
    for i in range(300):
        await agent.send("trade_update", position(7200, profit=float(i)))
    await agent.sync()

    async def last():
        _, t = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
        return t["profit"] == 299.0

    await until(last)
    profits = [e["data"]["profit"] for e in await daemon.events() if e["type"] == "trade_update"]
    assert profits == [float(i) for i in range(300)]


async def test_agent_tokens_may_post_signals(daemon, agent_token):
    status, reply = await daemon.request("POST", "/api/signals", agent_token, json=SIGNAL)
    assert status == 202 and reply["signal"]["status"] == "accepted"


async def test_signals_are_skipped_while_paused_or_halted(daemon):
    await daemon.request("POST", "/api/trading/pause", daemon.admin, json={"reason": "news"})
    status, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert status == 200
    assert reply["signal"]["status"] == "skipped" and "paused: news" in reply["signal"]["reason"]
    assert "command" not in reply
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert reply["signal"]["status"] == "skipped"
    types = await types_of(daemon)
    assert types.count("signal_skipped") == 2
    assert not [
        e
        for e in await daemon.events()
        if e["type"] == "command_queued" and e["data"]["type"] == "open_trade"
    ]


async def test_external_id_makes_signal_intake_idempotent(daemon):
    body = SIGNAL | {"external_id": "tg-channel-123:456"}
    first = await daemon.request("POST", "/api/signals", daemon.admin, json=body)
    again = await daemon.request("POST", "/api/signals", daemon.admin, json=body)
    assert first[0] == 202 and again[0] == 200
    assert again[1]["duplicate"] is True
    assert again[1]["signal"]["id"] == first[1]["signal"]["id"]
    _, listed = await daemon.request("GET", "/api/signals", daemon.admin)
    assert len(listed["signals"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        SIGNAL | {"side": "long"},
        SIGNAL | {"volume": 0},
        SIGNAL | {"entry": 1.1, "sl": 1.2},  # SL above entry for a buy
        SIGNAL | {"entry": 1.1, "tp": [1.0]},  # TP below entry for a buy
        SIGNAL | {"tp": [1.2] * 6},  # at most 5 TPs
        SIGNAL | {"symbol": "EUR USD"},
    ],
)
async def test_bad_signals_are_refused_and_change_nothing(daemon, body):
    status, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=body)
    assert status == 422 and reply["error"]["code"] == "validation_error"
    _, listed = await daemon.request("GET", "/api/signals", daemon.admin)
    assert listed["signals"] == []


async def test_expiry_sweep_expires_entries_without_an_agent(aiohttp_client, tmp_path, clock):
    from signalosd.app import create_app
    from signalosd.outbox import deadlines
    from tests.conftest import Harness

    app = create_app(make_settings(tmp_path), clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    assert await deadlines.expire_commands(daemon.db, app[keys.POLICY]) == []
    clock.advance(daemon.settings.open_trade_ttl_s)
    assert await deadlines.expire_commands(daemon.db, app[keys.POLICY]) == [reply["command"]["id"]]


async def test_an_emergency_stop_is_sent_once_straight_from_its_commit(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    await agent.sync()
    _, stop = await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    command = await agent.command()
    assert command["id"] == stop["command"]["id"] and command["attempt"] == 1
    # The delivery round records it, and does not send it again: the next command is a later one.
    later = await force_sync(daemon)
    await agent.next_command_is(later)

    async def recorded():
        _, body = await daemon.request("GET", f"/api/commands/{command['id']}", daemon.admin)
        return body["command"]["status"] == "sent" and body["command"]["attempts"] == 1

    await until(recorded)
    await until(lambda: _is(daemon, later, "sent"))
    sent = [e for e in await daemon.events() if e["type"] == "command_sent"]
    assert [e["data"]["command_id"] for e in sent] == [command["id"], later]
