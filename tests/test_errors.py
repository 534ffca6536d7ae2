"""One error shape everywhere, and no input that makes the daemon answer 5xx."""

from __future__ import annotations

import pytest

from signalosd.errors import STATUS, ErrorCode
from signalosd.http.routes import build_routes


async def _placeholder(request):
    raise AssertionError


ROUTES = [r for r in build_routes(_placeholder, _placeholder) if not r.websocket]


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10


async def _trade(daemon, **fields) -> int:
    return await daemon.add_trade(**fields)


# (name, method, path-with-{trade}, body or raw, headers, status, code)
CASES = [
    ("unknown path", "GET", "/api/nothing", None, {}, 404, "not_found"),
    ("wrong method", "GET", "/api/trading/pause", None, {}, 405, "method_not_allowed"),
    ("body is not JSON", "POST", "/api/trading/pause", b"{reason:", {}, 400, "invalid_json"),
    ("body is not an object", "POST", "/api/trading/pause", b"[1,2]", {}, 422, "validation_error"),
    (
        "unknown field",
        "POST",
        "/api/trading/emergency-stop",
        {"close-all": True},
        {},
        422,
        "validation_error",
    ),
    (
        "string for a bool",
        "POST",
        "/api/trading/emergency-stop",
        {"close_all": "yes"},
        {},
        422,
        "validation_error",
    ),
    (
        "reason too long",
        "POST",
        "/api/trading/pause",
        {"reason": "x" * 501},
        {},
        422,
        "validation_error",
    ),
    ("unknown trade", "POST", "/api/trades/999999/close", {}, {}, 404, "not_found"),
    ("non-numeric trade id", "GET", "/api/trades/abc", None, {}, 404, "not_found"),
    ("huge trade id", "GET", "/api/trades/99999999999999999999999", None, {}, 404, "not_found"),
    ("unknown command", "GET", "/api/commands/nope", None, {}, 404, "not_found"),
    (
        "sl above price for a buy",
        "PUT",
        "/api/trades/{trade}/modify",
        {"sl": 1.2},
        {},
        422,
        "invalid_stops",
    ),
    ("negative sl", "PUT", "/api/trades/{trade}/modify", {"sl": -1}, {}, 422, "validation_error"),
    ("empty modify", "PUT", "/api/trades/{trade}/modify", {}, {}, 422, "validation_error"),
    (
        "partial close below minimum",
        "POST",
        "/api/trades/{trade}/partial-close",
        {"volume": 0.001},
        {},
        422,
        "invalid_volume",
    ),
    (
        "two partial-close sizes",
        "POST",
        "/api/trades/{trade}/partial-close",
        {"fraction": 0.5, "percentage": 50},
        {},
        422,
        "validation_error",
    ),
    (
        "trailing without distance",
        "POST",
        "/api/trades/{trade}/trailing-stop",
        {},
        {},
        422,
        "validation_error",
    ),
    ("bad limit", "GET", "/api/events?limit=0", None, {}, 422, "validation_error"),
    ("bad since", "GET", "/api/events?since=abc", None, {}, 422, "validation_error"),
    ("future since", "GET", "/api/events?since=999999", None, {}, 409, "events_reset"),
    ("bad wait", "GET", "/api/commands/x?wait=-1", None, {}, 422, "validation_error"),
    ("bad trade status", "GET", "/api/trades?status=gone", None, {}, 422, "validation_error"),
    (
        "bad idempotency key",
        "POST",
        "/api/trading/pause",
        {},
        {"Idempotency-Key": "a b"},
        400,
        "bad_request",
    ),
    (
        "bad source header",
        "POST",
        "/api/trading/pause",
        {},
        {"X-SignalOS-Source": "telepathy"},
        400,
        "bad_request",
    ),
    ("no token", "GET", "/api/trading/state", None, {"Authorization": ""}, 401, "unauthorized"),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "status", "code"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_error_paths_share_one_shape(daemon, name, method, path, body, headers, status, code):
    trade_id = await _trade(daemon, volume=0.02)
    path = path.replace("{trade}", str(trade_id))
    all_headers = {"Authorization": f"Bearer {daemon.admin}"} | headers
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    before = await daemon.events()
    resp = await daemon.client.request(method, path, headers=all_headers, **kwargs)
    assert resp.status == status, await resp.text()
    assert STATUS[ErrorCode(code)] == status
    assert_error_shape(await resp.json(), code)
    assert await daemon.events() == before  # bad input changes nothing


async def test_validation_errors_name_the_field_path(daemon):
    trade_id = await _trade(daemon)
    status, body = await daemon.request(
        "POST", f"/api/trades/{trade_id}/trailing-stop", daemon.admin, json={"distance": "far"}
    )
    assert status == 422
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["distance"]


async def test_a_body_over_one_mebibyte_gets_413(daemon):
    resp = await daemon.client.post(
        "/api/trading/pause",
        data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"Authorization": f"Bearer {daemon.admin}"},
    )
    assert resp.status == 413
    assert_error_shape(await resp.json(), "payload_too_large")


async def test_a_closing_trade_cannot_be_closed_twice(daemon):
    trade_id = await _trade(daemon)
    status, _ = await daemon.request("POST", f"/api/trades/{trade_id}/close", daemon.admin)
    assert status == 202
    status, body = await daemon.request("POST", f"/api/trades/{trade_id}/close", daemon.admin)
    assert status == 409
    assert_error_shape(body, "trade_closing")


async def test_a_closed_trade_cannot_be_managed(daemon):
    trade_id = await _trade(daemon, status="closed", closed_at="2026-01-05T10:00:00.000Z")
    status, body = await daemon.request(
        "PUT", f"/api/trades/{trade_id}/modify", daemon.admin, json={"tp": 1.2}
    )
    assert status == 409
    assert_error_shape(body, "trade_not_open")


async def test_every_request_gets_a_request_id(daemon):
    resp = await daemon.client.get("/api/nothing", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await daemon.client.get("/livez")
    assert len(resp.headers["X-Request-ID"]) == 32


GARBAGE = [
    b"",
    b"null",
    b"0",
    b'"x"',
    b"[]",
    b"{}",
    b'{"a":',
    b"\xff\xfe\x00",
    b"{" * 5000,
    b'{"reason": null, "close_all": null}',
    b'{"sl": 1e309}',
    b'{"fraction": NaN}',
    b'{"volume": 1e-300}',
    b'{"percentage": 100}',
    b'{"distance": 0}',
]


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
async def test_no_bad_input_yields_a_5xx(daemon, route):
    trade_id = await _trade(daemon, volume=0.05)
    for raw in GARBAGE:
        for ident in (str(trade_id), "0", "-1", "1e3", "%00", "x" * 300):
            path = route.path.replace("{id}", ident)
            resp = await daemon.client.request(
                route.method,
                path + "?since=-5&limit=x&wait=nan&status=&account=",
                data=raw,
                headers={"Authorization": f"Bearer {daemon.admin}"},
            )
            assert resp.status < 500, (path, raw, await resp.text())
