"""Every route's reply model is the wire: each 2xx JSON body validates against the model the
route table declares (so OpenAPI, generated from those models, describes what is sent).

The check is strict: types are not coerced, and a key the model does not declare is drift as
much as a missing one. The calls below run one desk's day in order (an agent connected, signals,
trade management, an emergency stop) so that each route answers with its real shapes, the
"no change" and "duplicate" ones included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from signalosd import keys
from signalosd.config import Settings
from signalosd.http.routes import build_routes
from signalosd.models import Role
from tests.conftest import Harness, make_settings
from tests.fake_agent import WireAgent, connect_agent, position, until


async def _placeholder(request):  # type: ignore[no-untyped-def]
    raise AssertionError


# JSON replies that no model describes, and why.
UNMODELLED = {("GET", "/openapi.json"): "the OpenAPI document itself"}

# Every kind of limit, none of them crossed by the fake agent's account.
RISK_LIMITS = {
    "daily_loss_pct": 5,
    "daily_loss_money": 400.5,
    "max_drawdown_pct": 10,
    "equity_floor": 1000,
    "max_open_trades": 50,
    "max_volume_per_trade": 10,
    "max_trades_per_day": 100,
}
SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "sl": 1.09, "tp": [1.11, 1.12]}

# (method, route path, concrete path, body, expected status), in the order they run. `{trade}`
# , `{command}` and `{webhook}` are replaced by real ids.
CALLS: list[tuple[str, str, str, Any, int]] = [
    ("GET", "/api/trading/state", "/api/trading/state", None, 200),
    ("POST", "/api/trading/pause", "/api/trading/pause", {"reason": "lunch"}, 202),
    ("POST", "/api/trading/pause", "/api/trading/pause", {}, 200),
    ("POST", "/api/signals", "/api/signals", SIGNAL | {"external_id": "skip-1"}, 200),
    ("POST", "/api/trading/resume", "/api/trading/resume", {}, 202),
    ("POST", "/api/trading/resume", "/api/trading/resume", {}, 200),
    ("POST", "/api/trading/stealth-toggle", "/api/trading/stealth-toggle", {}, 202),
    ("POST", "/api/trading/stealth-toggle", "/api/trading/stealth-toggle", {"enabled": True}, 200),
    ("POST", "/api/signals", "/api/signals", SIGNAL | {"external_id": "sig-1"}, 202),
    ("POST", "/api/signals", "/api/signals", SIGNAL | {"external_id": "sig-1"}, 200),
    ("POST", "/api/firebridge/force-sync", "/api/firebridge/force-sync", {}, 202),
    ("GET", "/api/trades", "/api/trades", None, 200),
    ("GET", "/api/trades", "/api/trades?status=all", None, 200),
    ("GET", "/api/trades/{id}", "/api/trades/{trade}", None, 200),
    ("POST", "/api/trades/{id}/partial-close", "/api/trades/{trade}/partial-close", {}, 202),
    ("PUT", "/api/trades/{id}/modify", "/api/trades/{trade}/modify", {"sl": 1.05}, 202),
    (
        "POST",
        "/api/trades/{id}/trailing-stop",
        "/api/trades/{trade}/trailing-stop",
        {"distance": 0.002, "step": 0.001},
        202,
    ),
    ("POST", "/api/trades/{id}/close", "/api/trades/{trade}/close", {}, 202),
    ("GET", "/api/commands/{id}", "/api/commands/{command}", None, 200),
    ("GET", "/api/commands/{id}", "/api/commands/{command}?wait=0.01", None, 200),
    ("GET", "/api/signals", "/api/signals", None, 200),
    ("GET", "/api/signals", "/api/signals?status=skipped", None, 200),
    ("GET", "/api/account/history", "/api/account/history", None, 200),
    ("GET", "/api/risk", "/api/risk", None, 200),
    ("PUT", "/api/risk/limits", "/api/risk/limits", RISK_LIMITS, 200),
    ("PUT", "/api/risk/limits", "/api/risk/limits", RISK_LIMITS, 200),
    ("GET", "/api/risk", "/api/risk", None, 200),
    ("POST", "/api/risk/reset", "/api/risk/reset", {"confirm": True}, 200),
    ("GET", "/api/system/health", "/api/system/health", None, 200),
    ("POST", "/api/trading/emergency-stop", "/api/trading/emergency-stop", {}, 202),
    (
        "POST",
        "/api/trading/emergency-stop",
        "/api/trading/emergency-stop",
        {"reason": "again", "close_all": True},
        202,
    ),
    ("POST", "/api/signals", "/api/signals", SIGNAL, 200),
    ("POST", "/api/trading/resume", "/api/trading/resume", {"confirm_halt": True}, 202),
    ("GET", "/api/events", "/api/events?since=0&limit=1000", None, 200),
    ("GET", "/api/events", "/api/events?since=0&limit=1000&type=command_*", None, 200),
    ("POST", "/api/webhooks", "/api/webhooks", {"url": "http://127.0.0.1:9/hook"}, 201),
    ("GET", "/api/webhooks", "/api/webhooks", None, 200),
    ("DELETE", "/api/webhooks/{id}", "/api/webhooks/{webhook}", None, 200),
    ("GET", "/livez", "/livez", None, 200),
    ("GET", "/readyz", "/readyz", None, 200),
    ("GET", "/openapi.json", "/openapi.json", None, 200),
    ("GET", "/metrics", "/metrics", None, 200),
    ("GET", "/", "/", None, 200),
    ("HEAD", "/", "/", None, 200),
    ("GET", "/static/{path}", "/static/js/api.js", None, 200),
    ("HEAD", "/static/{path}", "/static/js/api.js", None, 200),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Every account status the agent sends is applied, so the history and health have one.
    return make_settings(tmp_path, status_event_interval_s=0)


def drift(model: type[BaseModel], raw: bytes) -> str | None:
    """How `raw` disagrees with `model` (strictly: no coercion, no undeclared key), or None."""
    try:
        model.model_validate_json(raw, strict=True, extra="forbid")
    except ValidationError as exc:
        return str(exc)
    return None


def test_drift_is_caught_both_ways() -> None:
    """The check itself: an undeclared key and a coerced type are drift."""

    class Point(BaseModel):
        x: int

    assert drift(Point, b'{"x": 1}') is None
    assert drift(Point, b'{"x": 1, "y": 2}') is not None
    assert drift(Point, b'{"x": "1"}') is not None


TABLE = {(r.method, r.path): r for r in build_routes(_placeholder, _placeholder)}


def test_every_route_of_the_table_is_called() -> None:
    called = {(method, route) for method, route, *_ in CALLS}
    served = {key for key, route in TABLE.items() if not route.websocket}
    assert served - called == set(), "add a call for each new route"
    assert called - served == set()


def test_each_call_expects_a_status_its_route_documents() -> None:
    """OpenAPI documents a route's `status`, and 200 for "no change" (see openapi.py)."""
    for method, route, path, _, expected in CALLS:
        assert expected in (TABLE[(method, route)].status, 200), path


async def _desk(daemon: Harness) -> WireAgent:
    """An agent that reports a position and its account."""
    agent = await connect_agent(daemon, await daemon.token(Role.AGENT), snapshot=[position(9001)])
    await agent.send(
        "mt5_status_update",
        {"balance": 10000.0, "equity": 10012.5, "connected": True, "trade_allowed": True},
    )
    await agent.sync()

    async def mirrored() -> bool:
        _, body = await daemon.request("GET", "/api/trades", daemon.admin)
        return bool(body["trades"])

    await until(mirrored)
    return agent


async def _answer_force_sync(daemon: Harness, agent: WireAgent) -> str:
    """The agent executes the force-sync just queued (after the commands before it); its id."""
    while (command := await agent.command())["type"] != "force_sync":
        pass
    await agent.result(command["id"], ok=True, data={"positions": 1})
    await until(lambda: _finished(daemon, command["id"]))
    return str(command["id"])


async def _finished(daemon: Harness, command_id: str) -> bool:
    _, body = await daemon.request("GET", f"/api/commands/{command_id}", daemon.admin)
    return bool(body["command"]["status"] == "succeeded")


async def test_every_2xx_body_matches_its_routes_reply_model(daemon: Harness) -> None:
    table = daemon.app[keys.ROUTES]
    agent = await _desk(daemon)
    _, trades = await daemon.request("GET", "/api/trades", daemon.admin)
    ids = {"trade": str(trades["trades"][0]["id"]), "command": "", "webhook": ""}
    tokens = {"admin": daemon.admin, "viewer": await daemon.token(Role.VIEWER)}
    problems: list[str] = []
    for method, route_path, path, body, expected in CALLS:
        route = table[(method, route_path)]
        url = path.format(**ids)
        # Reads as an admin and as a viewer: an admin's health has more in it.
        for who in ("admin", "viewer") if route.role is Role.VIEWER else ("admin",):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            resp = await daemon.client.request(method, url, headers=headers, json=body)
            raw = await resp.read()
            where = f"{method} {url} as {who}"
            if resp.status != expected:
                problems.append(f"{where}: status {resp.status}, expected {expected}: {raw!r}")
            elif resp.content_type != "application/json":
                if route.reply is not None and method != "HEAD":
                    problems.append(f"{where}: {resp.content_type}, not its {route.reply.__name__}")
            elif route.reply is None:
                if (method, route_path) not in UNMODELLED:
                    problems.append(f"{where}: a JSON reply, but the route declares no model")
            elif (wrong := drift(route.reply, raw)) is not None:
                problems.append(f"{where}: the body is not a {route.reply.__name__}: {wrong}")
        if route_path == "/api/firebridge/force-sync":
            ids["command"] = await _answer_force_sync(daemon, agent)
        if (method, route_path) == ("POST", "/api/webhooks"):
            ids["webhook"] = str(json.loads(raw)["webhook"]["id"])
    problems += await _health_once_the_agent_has_gone(daemon, agent, table)
    assert problems == [], "\n".join(problems)


async def _health_once_the_agent_has_gone(
    daemon: Harness, agent: WireAgent, table: Any
) -> list[str]:
    """The health's agent part is what was stored of the last session then."""
    await agent.close()

    async def gone() -> bool:
        _, body = await daemon.request("GET", "/api/system/health", daemon.admin)
        return not body["agent"]["connected"]

    await until(gone)
    resp = await daemon.client.get(
        "/api/system/health", headers={"Authorization": f"Bearer {daemon.admin}"}
    )
    reply = table[("GET", "/api/system/health")].reply
    wrong = drift(reply, await resp.read())
    return [] if wrong is None else [f"health without an agent is not a {reply.__name__}: {wrong}"]
