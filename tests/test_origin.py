"""Browser origins: a page from elsewhere can neither open the daemon's WebSockets nor call its
REST API (403 forbidden_origin, nothing changes); a listed origin gets CORS and preflight
answers; requests without an Origin (curl, the CLI, the agent) are not affected."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from signalosd.config import ConfigError, Settings, load_settings
from signalosd.models.origin import own_origin, parse_origin
from tests.conftest import make_settings

LISTED = "https://desk.example.com"
FOREIGN = "https://evil.example.net"
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, allowed_origins=[LISTED])


def own(daemon) -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{daemon.client.port}"


async def mode(daemon) -> str:  # type: ignore[no-untyped-def]
    _, state = await daemon.request("GET", "/api/trading/state", daemon.admin)
    return str(state["mode"])


# ---- WebSockets ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/ws/agent"])
@pytest.mark.parametrize(
    "origin",
    [
        FOREIGN,
        "null",
        "https://127.0.0.1:{port}",  # the daemon's host and port, another scheme
        "http://127.0.0.1:1",  # another port
        "http://localhost:{port}",  # another name for the same host is another origin
        "http://127.0.0.1:{port}/",
        "https://desk.example.com.evil.example.net",
    ],
)
async def test_an_upgrade_from_a_foreign_origin_is_refused_before_the_handshake(
    daemon, path: str, origin: str
) -> None:
    origin = origin.format(port=daemon.client.port)
    resp = await daemon.client.get(path, headers=UPGRADE | {"Origin": origin})
    assert resp.status == 403
    body = await resp.json()
    assert body["error"]["code"] == "forbidden_origin"
    assert origin[:50] in body["error"]["message"]
    assert "allowed_origins" in body["error"]["message"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await daemon.client.ws_connect(path, origin=origin)
    assert refused.value.status == 403


async def test_the_refusal_says_which_origin_and_how_to_allow_it(daemon) -> None:
    resp = await daemon.client.get("/ws", headers=UPGRADE | {"Origin": "HTTPS://Evil.Example.NET"})
    error = (await resp.json())["error"]
    assert error["details"] == {
        "origin": "HTTPS://Evil.Example.NET",
        "own": own(daemon),
        "setting": "allowed_origins",
    }
    assert 'add "https://evil.example.net" to allowed_origins' in error["message"]
    resp = await daemon.client.get("/ws", headers=UPGRADE | {"Origin": "null"})
    assert "cannot be allowed" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("origin", ["own", LISTED, "HTTPS://DESK.example.com:443"])
async def test_the_daemons_own_and_listed_origins_open_the_stream(daemon, origin: str) -> None:
    origin = own(daemon) if origin == "own" else origin
    async with daemon.client.ws_connect("/ws", origin=origin) as ws:
        await ws.send_json({"type": "authenticate", "data": {"token": daemon.admin}})
        reply = await ws.receive_json(timeout=10)
        assert reply["type"] == "authenticated"


async def test_an_agent_from_its_own_origin_or_without_one_connects(daemon) -> None:
    from signalosd.models import Role

    token = await daemon.token(Role.AGENT)
    for headers in ({"Origin": own(daemon)}, {}):
        async with daemon.client.ws_connect("/ws/agent", headers=headers) as ws:
            await ws.send_json({"type": "authenticate", "data": {"token": token}})
            assert (await ws.receive_json(timeout=10))["type"] == "authenticated"


async def test_behind_a_proxy_the_own_origin_is_the_host_header(daemon) -> None:
    """A proxy that keeps the Host header: the page's origin is the public name."""
    proxied = {"Host": "trading.example.org", "Origin": "http://trading.example.org"}
    resp = await daemon.client.get("/ws", headers=UPGRADE | proxied)
    assert resp.status == 101
    resp.close()
    # A proxy ending TLS: the connection is plain http, so the https origin must be listed.
    tls = {"Host": "trading.example.org", "Origin": "https://trading.example.org"}
    resp = await daemon.client.get("/ws", headers=UPGRADE | tls)
    assert resp.status == 403


# ---- REST ------------------------------------------------------------------------------------


async def test_a_foreign_origin_cannot_pause_even_with_a_good_token(daemon) -> None:
    head = (await daemon.events())[-1]["seq"]
    for method, path in [
        ("POST", "/api/trading/pause"),
        ("POST", "/api/trading/emergency-stop"),
        ("GET", "/api/trading/state"),
    ]:
        status, body = await daemon.request(method, path, daemon.admin, headers={"Origin": FOREIGN})
        assert status == 403, body
        assert body["error"]["code"] == "forbidden_origin"
    assert await mode(daemon) == "running"
    assert (await daemon.events())[-1]["seq"] == head  # nothing happened, nothing logged


async def test_a_foreign_origin_learns_nothing_about_a_token(daemon) -> None:
    for token in (daemon.admin, "sos_wrong"):
        status, body = await daemon.request(
            "GET", "/api/trading/state", token, headers={"Origin": FOREIGN}
        )
        assert status == 403 and body["error"]["code"] == "forbidden_origin"


async def test_a_listed_origin_gets_cors_headers_on_replies_and_errors(daemon) -> None:
    resp = await daemon.client.post(
        "/api/trading/pause",
        headers={"Origin": LISTED, "Authorization": f"Bearer {daemon.admin}"},
    )
    assert resp.status == 202
    assert resp.headers["Access-Control-Allow-Origin"] == LISTED
    assert "Origin" in resp.headers["Vary"]
    assert resp.headers["Access-Control-Expose-Headers"] == "Idempotent-Replayed, X-Request-ID"
    assert await mode(daemon) == "paused"
    refused = await daemon.client.get("/api/trading/state", headers={"Origin": LISTED})
    assert refused.status == 401  # the page can read why
    assert refused.headers["Access-Control-Allow-Origin"] == LISTED


async def test_a_listed_origins_preflight_is_answered_without_a_token(daemon) -> None:
    resp = await daemon.client.options(
        "/api/trades/1/modify",
        headers={
            "Origin": LISTED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == LISTED
    allowed = {h.strip() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "X-SignalOS-Source",
        "X-Request-ID",
    }
    assert "PUT" in resp.headers["Access-Control-Allow-Methods"]
    assert "Origin" in resp.headers["Vary"]


async def test_a_foreign_preflight_is_refused(daemon) -> None:
    resp = await daemon.client.options(
        "/api/trading/pause",
        headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"},
    )
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_without_an_origin_nothing_changes(daemon) -> None:
    resp = await daemon.client.post(
        "/api/trading/pause", headers={"Authorization": f"Bearer {daemon.admin}"}
    )
    assert resp.status == 202
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert await mode(daemon) == "paused"
    # OPTIONS without an Origin is no preflight: still the plain 405
    assert (await daemon.client.options("/api/trading/pause")).status == 405


async def test_the_daemons_own_origin_gets_no_cors_headers(daemon) -> None:
    status, _ = await daemon.request(
        "POST", "/api/trading/pause", daemon.admin, headers={"Origin": own(daemon)}
    )
    assert status == 202
    resp = await daemon.client.get("/livez", headers={"Origin": own(daemon)})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


async def test_without_listed_origins_a_foreign_one_is_refused_too(aiohttp_client, tmp_path):
    from signalosd.app import create_app

    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    resp = await client.get("/livez", headers={"Origin": LISTED})
    assert resp.status == 403


# ---- the setting -----------------------------------------------------------------------------

ORIGINS = [
    ("https://desk.example.com", "https://desk.example.com"),
    ("HTTPS://Desk.Example.COM:443", "https://desk.example.com"),
    ("http://desk:80", "http://desk"),
    ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
    ("http://[::1]:8787", "http://[::1]:8787"),
]


@pytest.mark.parametrize(("given", "kept"), ORIGINS)
def test_allowed_origins_are_normalised(given: str, kept: str) -> None:
    assert Settings(allowed_origins=[given]).allowed_origins == (kept,)
    assert parse_origin(given) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "desk.example.com",
        "https://desk.example.com/",
        "https://desk.example.com/dashboard",
        "https://desk.example.com?x=1",
        "https://user@desk.example.com",
        "ftp://desk.example.com",
        "null",
        "*",
        "https://",
        "https://desk.example.com:99999",
        "https://desk_example.com",
    ],
)
def test_a_bad_allowed_origin_is_refused_at_load_naming_it(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "signalosd.toml"
    path.write_text(f"allowed_origins = [{bad!r}]\n".replace("'", '"'))
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "allowed_origins" in str(err.value) and bad in str(err.value)
    assert "scheme://host[:port]" in str(err.value)


def test_allowed_origins_from_the_environment_are_a_comma_list() -> None:
    env = {"SIGNALOS_ALLOWED_ORIGINS": "https://a.example.com, http://b.example.com:8080"}
    settings = load_settings(env=env, config_path=None)
    assert settings.allowed_origins == ("https://a.example.com", "http://b.example.com:8080")
    assert Settings().allowed_origins == ()


def test_the_own_origin_comes_from_scheme_and_host_header() -> None:
    assert own_origin("http", "127.0.0.1:8787") == "http://127.0.0.1:8787"
    assert own_origin("https", "Desk.Example.com:443") == "https://desk.example.com"
    assert own_origin("http", "") is None
    assert own_origin("http", "evil/path") is None
