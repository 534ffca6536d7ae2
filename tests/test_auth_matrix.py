"""Authorisation over every route of the route table, so a new route cannot skip it."""

from __future__ import annotations

import pytest

from signalosd.auth import accounts
from signalosd.http.routes import Route, build_routes
from signalosd.models import Role


async def _placeholder(request):  # only the table's metadata is used here
    raise AssertionError


ROUTES = build_routes(_placeholder, _placeholder)
PUBLIC = {
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/ws"),
    ("GET", "/ws/agent"),
    ("GET", "/"),
    ("HEAD", "/"),
    ("GET", "/static/{path}"),
    ("HEAD", "/static/{path}"),
}  # the WebSockets authenticate in-band (see test_ws_* and test_agent_ws*); the dashboard's
# files hold no data (test_web_static.py)
PROTECTED = [r for r in ROUTES if r.role is not None]
IDS = [f"{r.method} {r.path}" for r in PROTECTED]
# A body each mutating route accepts, so that only authorisation can refuse the request.
BODIES = {
    "/api/trades/{id}/partial-close": {"fraction": 0.5},
    "/api/trades/{id}/modify": {"sl": 1.05},
    "/api/trades/{id}/trailing-stop": {"distance": 0.002},
    "/api/signals": {"symbol": "EURUSD", "side": "buy", "volume": 0.1},
    "/api/risk/reset": {"confirm": True},
    "/api/webhooks": {"url": "http://127.0.0.1:9/hook"},  # nothing listens: it is never sent
}
# Webhooks are the admin's, across accounts: no other role passes their role check, so the
# account rules below (another account's ids, naming an account) do not apply to them.
ACCOUNT_ROUTES = [r for r in PROTECTED if r.role is not Role.ADMIN]


def test_every_route_is_either_public_by_name_or_protected():
    public = {(r.method, r.path) for r in ROUTES if r.role is None}
    assert public == PUBLIC


async def _objects(daemon) -> dict[str, str]:
    """Real ids of the default account's objects, to put into the paths."""
    trade_id = await daemon.add_trade(volume=1.0)
    _, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    _, hook = await daemon.request(
        "POST", "/api/webhooks", daemon.admin, json=BODIES["/api/webhooks"]
    )
    return {
        "trade": str(trade_id),
        "command": reply["command"]["id"],
        "webhook": str(hook["webhook"]["id"]),
    }


def _path(route: Route, ids: dict[str, str]) -> str:
    kind = "command" if route.path.startswith("/api/commands") else "trade"
    if route.path.startswith("/api/webhooks"):
        kind = "webhook"
    return route.path.replace("{id}", ids[kind])


async def _call(daemon, route: Route, path: str, token: str | None, query: str = ""):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    resp = await daemon.client.request(
        route.method,
        path + query,
        headers=headers,
        json=BODIES.get(route.path, {}) if route.mutating else None,
    )
    body = await resp.json() if resp.content_type == "application/json" else None
    return resp.status, body


@pytest.mark.parametrize("route", PROTECTED, ids=IDS)
async def test_no_token_bad_token_and_revoked_token_get_401(daemon, route):
    path = _path(route, await _objects(daemon))
    revoked = await daemon.token(Role.ADMIN, label="soon revoked")
    rows = await daemon.db.read(lambda tx: tx.list_tokens())
    token_id = next(r["id"] for r in rows if r["label"] == "soon revoked")
    await daemon.db.write(lambda tx: accounts.revoke_token(tx, token_id, accounts.local_actor()))

    for token in (None, "sos_not-a-real-token", revoked):
        status, body = await _call(daemon, route, path, token)
        assert status == 401, (token, body)
        assert body["error"]["code"] == "unauthorized"
        assert body["error"]["message"]


async def test_a_malformed_authorization_header_gets_401(daemon):
    resp = await daemon.client.get("/api/trading/state", headers={"Authorization": "Token abc"})
    assert resp.status == 401
    assert "Bearer" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("route", PROTECTED, ids=IDS)
async def test_roles_below_the_route_are_refused_with_403(daemon, route):
    path = _path(route, await _objects(daemon))
    weaker = {
        Role.VIEWER: [Role.AGENT, Role.METRICS],
        Role.OPERATOR: [Role.VIEWER, Role.AGENT, Role.METRICS],
        Role.ADMIN: [Role.VIEWER, Role.OPERATOR, Role.AGENT, Role.METRICS],
        Role.METRICS: [Role.VIEWER, Role.OPERATOR, Role.AGENT],
    }[route.role]
    if route.agent_ok:
        weaker.remove(Role.AGENT)
    for role in weaker:
        status, body = await _call(daemon, route, path, await daemon.token(role))
        assert status == 403, (role, body)
        assert body["error"]["code"] == "forbidden"
        assert route.role.value in body["error"]["message"]


@pytest.mark.parametrize("route", PROTECTED, ids=IDS)
async def test_the_route_role_and_above_are_allowed(daemon, route):
    path = _path(route, await _objects(daemon))
    ranks = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
    if route.role is Role.METRICS:  # outside the ranking: its own role, or admin
        allowed = [Role.METRICS, Role.ADMIN]
    else:
        allowed = ranks[ranks.index(route.role) :] + ([Role.AGENT] if route.agent_ok else [])
    for role in allowed:
        # A fresh trade each time: a close leaves the previous one closing (409 by design).
        path = _path(route, await _objects(daemon))
        status, body = await _call(daemon, route, path, await daemon.token(role))
        assert status in (200, 201, 202), (role, body)


@pytest.mark.parametrize(
    "route",
    [r for r in ACCOUNT_ROUTES if "{id}" in r.path],
    ids=[f"{r.method} {r.path}" for r in ACCOUNT_ROUTES if "{id}" in r.path],
)
async def test_another_accounts_ids_are_404_not_403(daemon, route):
    path = _path(route, await _objects(daemon))
    other = await daemon.token(Role.OPERATOR, account="other-desk")
    status, body = await _call(daemon, route, path, other)
    assert status == 404, body
    assert body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "route", ACCOUNT_ROUTES, ids=[f"{r.method} {r.path}" for r in ACCOUNT_ROUTES]
)
async def test_naming_another_account_is_404_for_a_non_admin(daemon, route):
    path = _path(route, await _objects(daemon))
    role = Role.METRICS if route.role is Role.METRICS else Role.OPERATOR  # past the role check
    other = await daemon.token(role, account="other-desk")
    status, body = await _call(daemon, route, path, other, "?account=default")
    assert status == 404, body


async def test_an_admin_may_act_on_another_account_by_name(daemon):
    await daemon.token(Role.VIEWER, account="prop-2")
    status, body = await daemon.request("POST", "/api/trading/pause?account=prop-2", daemon.admin)
    assert status == 202 and body["account"] == "prop-2"
    _, mine = await daemon.request("GET", "/api/trading/state", daemon.admin)
    assert mine["mode"] == "running"  # the admin's own account is untouched
    status, body = await daemon.request("GET", "/api/trading/state?account=nope", daemon.admin)
    assert status == 404


async def test_a_token_never_sees_another_accounts_events(daemon):
    other = await daemon.token(Role.VIEWER, account="other-desk")
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    events = await daemon.events(other)
    assert events and {e["account"] for e in events} <= {"other-desk", None}
    admin_view = {e["account"] for e in await daemon.events()}
    assert {"default", "other-desk"} <= admin_view


def test_the_roles_apart_open_only_their_own_door():
    from signalosd.auth.tokens import Principal

    def who(role: Role) -> Principal:
        return Principal("tok_x", 1, "default", role, "")

    for needed in Role:
        assert who(Role.ADMIN).allows(needed)
        assert who(Role.METRICS).allows(needed) is (needed is Role.METRICS)
        assert who(Role.AGENT).allows(needed) is (needed is Role.AGENT)
        for ranked in (Role.VIEWER, Role.OPERATOR):
            assert not who(ranked).allows(Role.METRICS)


async def test_public_routes_need_no_token(daemon):
    for path in ("/livez", "/readyz", "/openapi.json", "/", "/static/vendor/manifest.json"):
        resp = await daemon.client.get(path)
        assert resp.status == 200, path
    for path in ("/", "/static/vendor/manifest.json"):  # the dashboard's files, HEAD too
        assert (await daemon.client.head(path)).status == 200, path
