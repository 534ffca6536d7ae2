"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from signalosd.http.routes import build_routes
from signalosd.models import Health


async def _placeholder(request):
    raise AssertionError


async def test_openapi_documents_every_route_of_the_app(daemon):
    status, spec = await daemon.request("GET", "/openapi.json")
    assert status == 200
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = set()
    for resource in daemon.app.router.resources():
        for route in resource:
            served.add((route.method, resource.canonical))
    assert served == documented
    assert {(r.method, r.path) for r in build_routes(_placeholder, _placeholder)} == documented


async def test_openapi_names_bodies_roles_and_error_shape(daemon):
    _, spec = await daemon.request("GET", "/openapi.json")
    estop = spec["paths"]["/api/trading/emergency-stop"]["post"]
    assert estop["x-required-role"] == "operator"
    ref = estop["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"reason", "close_all"}
    assert "ErrorReply" in spec["components"]["schemas"]


async def test_health_reports_mode_queues_and_database(daemon):
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    status, body = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert status == 200
    Health.model_validate(body)
    assert body["mode"] == "paused"
    assert body["queues"]["queued"] == 1
    assert body["agent"] == {
        "connected": False,
        "last_seen": None,
        # what the agent last said of itself (agent_state): nothing yet
        "mode": None,
        "halt_gen": None,
        "mode_mismatch": False,
        "clock_offset_s": None,
    }
    assert body["db"]["ok"] is True
    # an admin sees the process-wide figures
    assert body["db"]["last_seq"] >= 1 and body["websocket_clients"] == 0


async def test_health_shows_process_wide_figures_to_admins_only(daemon):
    """Issue 9 §7: every viewer learnt how many WebSockets every account had open and how far
    the whole event log (every account's activity) had grown."""
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    for role in ("viewer", "operator"):
        token = await daemon.token(role, account="desk2")
        status, body = await daemon.request("GET", "/api/system/health", token)
        assert status == 200, body
        Health.model_validate(body)
        assert body["account"] == "desk2" and body["mode"] == "running"
        assert body["db"] == {"ok": True}
        assert "websocket_clients" not in body
    _, mine = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert {"last_seq", "ok"} <= set(mine["db"]) and "websocket_clients" in mine


async def test_livez_and_readyz(daemon):
    assert (await daemon.client.get("/livez")).status == 200
    resp = await daemon.client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"


async def test_metrics_are_prometheus_text(daemon):
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    resp = await daemon.client.get("/metrics", headers={"Authorization": f"Bearer {daemon.admin}"})
    text = await resp.text()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert 'signalos_commands{status="queued",type="pause"} 1.0' in text
    assert 'signalos_events_total{type="command_queued"} 1.0' in text
    assert "# TYPE signalos_commands_total counter" in text
    assert "# TYPE signalos_http_request_duration_seconds histogram" in text
    assert "# TYPE signalos_agent_connected gauge" in text


async def test_metrics_need_a_token(daemon):
    assert (await daemon.client.get("/metrics")).status == 401


async def test_health_says_whether_the_daemon_runs_in_dev_mode(daemon, aiohttp_client, tmp_path):
    from signalosd.app import create_app
    from tests.conftest import make_settings

    _, body = await daemon.request("GET", "/api/system/health", daemon.admin)
    assert body["dev_mode"] is False
    dev = await aiohttp_client(create_app(make_settings(tmp_path / "dev", dev_mode=True)))
    token = (tmp_path / "dev" / "state" / "admin.token").read_text().strip()
    resp = await dev.get("/api/system/health", headers={"Authorization": f"Bearer {token}"})
    assert (await resp.json())["dev_mode"] is True


def test_the_dev_flag_sets_dev_mode(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    args = [sys.executable, "-m", "signalosd", "--state-dir", str(tmp_path), "--check-config"]
    for extra, expected in (([], False), (["--dev"], True)):
        done = subprocess.run(
            [*args, *extra], capture_output=True, text=True, timeout=20, env=env, check=True
        )
        assert json.loads(done.stdout)["dev_mode"] is expected
    on = subprocess.run(
        args, capture_output=True, text=True, timeout=20, env=env | {"SIGNALOS_DEV_MODE": "true"}
    )
    assert json.loads(on.stdout)["dev_mode"] is True  # without --dev the environment decides
