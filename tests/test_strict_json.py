"""Only valid numbers get in; only strict JSON goes out (issue 9 §5, DESIGN §3.12), and no
message can make a parser recurse the daemon into an error (issue 9 §3)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from aiohttp import WSMsgType

from signalosd import strict_json
from signalosd.http.routes import build_routes
from tests.conftest import Harness
from tests.fake_agent import connect_agent, position, until
from tests.stream_client import open_stream


def strict_parse(text: str) -> Any:
    """What a browser's JSON.parse accepts: no NaN, no Infinity."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# ---- the module ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"x": NaN}', "NaN is not a JSON number"),
        ('{"x": Infinity}', "Infinity is not a JSON number"),
        ('{"x": -Infinity}', "-Infinity is not a JSON number"),
        ('{"close_all": false, "close_all": true}', "duplicate key 'close_all'"),
        ("[" * 100_000, "nested too deeply"),
        ('{"x": 1', "Expecting"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_loads_refuses_what_browsers_refuse_with_a_reason(text, why):
    with pytest.raises(strict_json.JsonError, match=re.escape(why)):
        strict_json.loads(text)


def test_dumps_refuses_non_finite_numbers():
    with pytest.raises(ValueError):
        strict_json.dumps({"equity": math.nan})
    assert strict_json.dumps({"a": [1, 2.5], "b": "é"}) == '{"a":[1,2.5],"b":"é"}'


# ---- REST bodies -----------------------------------------------------------------------------


async def test_a_body_with_a_duplicate_key_is_refused_and_changes_nothing(daemon: Harness):
    status, body = await daemon.request(
        "POST",
        "/api/trading/emergency-stop",
        daemon.admin,
        data=b'{"close_all": false, "close_all": true}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert "duplicate key 'close_all'" in body["error"]["message"]
    _, state = await daemon.request("GET", "/api/trading/state", daemon.admin)
    assert state["mode"] == "running"


@pytest.mark.parametrize("bad", ['{"volume": NaN}', '{"volume": Infinity}', "[" * 50_000])
async def test_a_body_with_nan_or_deep_nesting_is_a_clear_400(daemon: Harness, bad: str):
    trade_id = await daemon.add_trade()
    status, body = await daemon.request(
        "POST", f"/api/trades/{trade_id}/partial-close", daemon.admin, data=bad.encode()
    )
    assert status == 400 and body["error"]["code"] == "invalid_json", body


# ---- agent reports ---------------------------------------------------------------------------


def with_raw(fields: dict[str, Any], **raw: str) -> str:
    """`fields` as JSON text, with each of `raw` written as the given JSON token (NaN, 1e999…),
    which json.dumps would not write."""
    text = json.dumps(fields | {k: f"@{k}@" for k in raw})
    for key, token in raw.items():
        text = text.replace(f'"@{key}@"', token)
    return text


ACCOUNT = {"balance": 1000.0, "equity": 990.0}
# (message type, data as JSON text with the hostile value, the field the error must name)
HOSTILE = [
    ("mt5_status_update", with_raw(ACCOUNT, equity="NaN"), "equity"),
    ("mt5_status_update", with_raw(ACCOUNT, balance="Infinity"), "balance"),
    ("mt5_status_update", with_raw(ACCOUNT, equity="-Infinity"), "equity"),
    ("mt5_status_update", with_raw(ACCOUNT, balance="1e999"), "balance"),
    ("mt5_status_update", with_raw(ACCOUNT, margin_level="NaN"), "margin_level"),
    ("mt5_status_update", json.dumps(ACCOUNT | {"ping_ms": -5}), "ping_ms"),
    ("trade_update", json.dumps(position(7001, volume_step=1e300)), "volume_step"),
    ("trade_update", with_raw(position(7002), volume_step="1e999"), "volume_step"),
    ("trade_update", with_raw(position(7003), close_price="NaN"), "close_price"),
    ("trade_update", json.dumps(position(2**64)), "ticket"),
    ("trade_update", json.dumps(position(7005, volume=-1)), "volume"),
    ("trade_update", json.dumps(position(7006, profit=1e300)), "profit"),
    ("trade_update", json.dumps(position(7007, time="yesterday")), "time"),
    (
        "sync_snapshot",
        '{"positions": [' + with_raw(position(7008), price_open="Infinity") + "]}",
        "positions.0.price_open",
    ),
    ("command_result", '{"command_id": "c1", "ok": true, "data": {"price": NaN}}', "data"),
    ("command_result", '{"command_id": "c1", "ok": true, "retcode": 99999999999}', "retcode"),
    ("agent_state", '{"mode": "running", "halt_gen": -1}', "halt_gen"),
]


async def _send_raw(agent: Any, type_: str, data_json: str) -> None:
    await agent.ws.send_str(f'{{"id": "m1", "type": "{type_}", "data": {data_json}}}')


async def _trades_after(daemon: Harness, agent: Any, ticket: int) -> list[dict[str, Any]]:
    """Report position `ticket` and wait until it is in the mirror: reports are applied in the
    order sent, so whatever came before it has been applied (or refused) by then."""
    await agent.send("trade_update", position(ticket))

    async def listed() -> list[dict[str, Any]]:
        _, body = await daemon.request("GET", "/api/trades?status=all", daemon.admin)
        return list(body["trades"])

    async def arrived() -> bool:
        return any(t["ticket"] == ticket for t in await listed())

    await until(arrived)
    return await listed()


@pytest.mark.parametrize(("type_", "data", "field"), HOSTILE)
async def test_an_agent_report_with_a_bad_number_is_refused_naming_the_field(
    daemon: Harness, type_: str, data: str, field: str
):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await _send_raw(agent, type_, data)
    error = await agent.recv()

    assert error["type"] == "error" and error["data"]["code"] == "validation_error", error
    assert f"invalid {type_}: {field}:" in error["data"]["message"]
    # The connection survives, and nothing of the refused report was stored.
    assert [t["ticket"] for t in await _trades_after(daemon, agent, 9999)] == [9999]
    _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert health["mt5"] is None


async def test_every_get_route_is_strict_json_after_hostile_reports(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    for type_, data, _ in HOSTILE:
        await _send_raw(agent, type_, data)
    await agent.send("mt5_status_update", {"balance": 1000.0, "equity": 990.5})
    (trade,) = await _trades_after(daemon, agent, 7100)  # and a good one, so a trade exists
    trade_id = trade["id"]
    _, stop = await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    ids = {"id": str(trade_id)}
    seen = 0
    for route in build_routes(None, None):  # type: ignore[arg-type]
        if route.method != "GET" or route.websocket:
            continue
        path = route.path.replace("{id}", ids["id"])
        if path.startswith("/api/commands/"):
            path = f"/api/commands/{stop['command']['id']}"
        resp = await daemon.client.get(path, headers={"Authorization": f"Bearer {daemon.admin}"})
        text = await resp.text()
        assert resp.status < 500, (path, text)
        if resp.content_type == "application/json":
            strict_parse(text)
            seen += 1
    assert seen >= 10


async def test_a_partial_close_of_a_reported_trade_never_answers_500(daemon: Harness):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await _send_raw(agent, "trade_update", with_raw(position(7200), volume_step="1e999"))
    (trade,) = await _trades_after(daemon, agent, 7201)
    status, body = await daemon.request(
        "POST", f"/api/trades/{trade['id']}/partial-close", daemon.admin, json={"fraction": 0.5}
    )
    assert status == 202, body


# ---- messages no parser may choke on -------------------------------------------------------


async def test_a_deeply_nested_message_on_ws_gets_an_error_and_the_stream_survives(
    daemon: Harness,
):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.ws.send_str("[" * 100_000)
        error = await stream.recv()
        assert error["type"] == "error" and error["data"]["code"] == "invalid_json"
        assert "nested too deeply" in error["data"]["message"]
        await stream.sync()


async def test_a_deeply_nested_message_on_ws_agent_gets_an_error_and_the_session_survives(
    daemon: Harness,
):
    agent = await connect_agent(daemon, await daemon.token("agent"))
    await agent.ws.send_str('{"type": "trade_update", "data": ' + "[" * 100_000)
    error = await agent.recv()
    assert error["type"] == "error" and error["data"]["code"] == "invalid_json", error
    await agent.sync()


@pytest.mark.parametrize("first", ["[" * 100_000, '{"type": "authenticate", "data": NaN}'])
async def test_a_hostile_first_message_is_refused_cleanly(daemon: Harness, first: str):
    for path in ("/ws", "/ws/agent"):
        ws = await daemon.client.ws_connect(path)
        await ws.send_str(first)
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.TEXT and json.loads(msg.data)["type"] == "error"
        closing = await ws.receive(timeout=5)
        assert (closing.type, closing.data) == (WSMsgType.CLOSE, 4401)
