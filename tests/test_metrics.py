"""/metrics: Prometheus series fed by the bus, the request log and scrape-time reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from signalosd import keys
from signalosd.app import create_app
from signalosd.outbox import deadlines
from tests.conftest import make_settings
from tests.fake_agent import command_status, connect_agent, until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(daemon) -> Samples:
    resp = await daemon.client.get("/metrics", headers={"Authorization": f"Bearer {daemon.admin}"})
    assert resp.status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
async def agent_token(daemon) -> str:
    return await daemon.token("agent", label="desk pc")


async def test_a_command_lifecycle_is_counted_and_its_delivery_timed(daemon, agent_token):
    agent = await connect_agent(daemon, agent_token)
    status, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    assert status == 202
    command_id = reply["command"]["id"]
    command = await agent.command()
    assert command["id"] == command_id

    async def status_is(wanted: str) -> bool:
        return await command_status(daemon, command_id) == wanted

    await until(lambda: status_is("sent"))  # recorded as sent before the clock moves
    daemon.clock.advance(2)
    await agent.send("ack", {"messageId": command_id})
    await agent.sync()
    await until(lambda: status_is("acked"))
    await agent.result(command_id, data={"positions": 0})
    await until(lambda: status_is("succeeded"))

    m = await scrape(daemon)
    done = {"type": "force_sync", "outcome": "succeeded"}
    assert value(m, "signalos_commands_total", **done) == 1
    assert value(m, "signalos_commands", type="force_sync", status="succeeded") == 1
    assert value(m, "signalos_events_total", type="command_queued") == 1
    assert value(m, "signalos_events_total", type="command_succeeded") == 1

    hist = "signalos_command_delivery_seconds"
    sent = {"type": "force_sync", "stage": "sent"}
    acked = {"type": "force_sync", "stage": "acked"}
    assert value(m, f"{hist}_count", **sent) == 1
    assert value(m, f"{hist}_sum", **sent) == 0  # sent at once, by the daemon's clock
    assert value(m, f"{hist}_count", **acked) == 1
    assert value(m, f"{hist}_sum", **acked) == 2.0
    assert value(m, f"{hist}_bucket", le="1.0", **acked) == 0
    assert value(m, f"{hist}_bucket", le="2.5", **acked) == 1


async def test_an_expired_command_is_counted_as_expired(daemon):
    status, reply = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    assert status == 202
    daemon.clock.advance(daemon.settings.command_ttl_s + 1)
    assert await deadlines.expire_commands(daemon.db, daemon.app[keys.POLICY]) == [
        reply["command"]["id"]
    ]
    m = await scrape(daemon)
    assert value(m, "signalos_commands_total", type="force_sync", outcome="expired") == 1
    assert value(m, "signalos_commands_total", type="force_sync", outcome="succeeded") == 0
    # Never sent: no delivery latency.
    hist = "signalos_command_delivery_seconds_count"
    assert value(m, hist, type="force_sync", stage="sent") is None


async def test_http_latency_is_labelled_by_route_template(daemon):
    trade_id = await daemon.add_trade()
    status, _ = await daemon.request("GET", f"/api/trades/{trade_id}", daemon.admin)
    assert status == 200
    status, _ = await daemon.request("GET", "/no/such/path", daemon.admin)
    assert status == 404
    resp = await daemon.client.request("PATCH", "/metrics")
    assert resp.status == 405

    m = await scrape(daemon)
    count = "signalos_http_request_duration_seconds_count"
    route = {"method": "GET", "route": "/api/trades/{id}", "status": "200"}
    assert value(m, count, **route) == 1
    assert value(m, count, method="GET", route="other", status="404") == 1
    assert value(m, count, method="PATCH", route="other", status="405") == 1
    paths = {dict(labels).get("route") for name, labels in m if name == count}
    assert f"/api/trades/{trade_id}" not in paths and "/no/such/path" not in paths


async def test_agent_connected_gauge_and_last_seen(daemon, agent_token):
    m = await scrape(daemon)
    assert value(m, "signalos_agent_connected", account="default") == 0
    assert value(m, "signalos_agent_last_seen_seconds", account="default") is None

    agent = await connect_agent(daemon, agent_token)
    daemon.clock.advance(5)
    m = await scrape(daemon)
    assert value(m, "signalos_agent_connected", account="default") == 1
    assert value(m, "signalos_agent_last_seen_seconds", account="default") == 5
    assert value(m, "signalos_websocket_clients") == 1

    await agent.close()

    async def disconnected() -> bool:
        return value(await scrape(daemon), "signalos_agent_connected", account="default") == 0

    await until(disconnected)
    m = await scrape(daemon)
    assert value(m, "signalos_agent_last_seen_seconds", account="default") == 5


async def test_trading_mode_is_one_series_per_mode(daemon):
    def modes(m: Samples) -> dict[str, float | None]:
        return {
            mode: value(m, "signalos_trading_mode", account="default", mode=mode)
            for mode in ("running", "paused", "halted")
        }

    assert modes(await scrape(daemon)) == {"running": 1, "paused": 0, "halted": 0}
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    assert modes(await scrape(daemon)) == {"running": 0, "paused": 0, "halted": 1}


async def test_each_app_has_its_own_registry(tmp_path: Path, daemon):
    other = create_app(make_settings(tmp_path / "other"))
    assert other[keys.METRICS].registry is not daemon.app[keys.METRICS].registry
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    assert value(await scrape(daemon), "signalos_events_total", type="trading_paused") == 1
    paused = ("signalos_events_total", {"type": "trading_paused"})
    assert other[keys.METRICS].registry.get_sample_value(*paused) is None
    assert REGISTRY.get_sample_value(*paused) is None


PROC_READABLE = Path("/proc/self/stat").exists() and Path("/proc/stat").exists()


async def test_process_and_platform_collectors(daemon):
    m = await scrape(daemon)
    assert any(name == "python_info" for name, _ in m)
    if PROC_READABLE:  # ProcSubset=pid hides /proc/stat: the process series are then absent
        assert value(m, "process_resident_memory_bytes") is not None


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_a_viewer_or_operator_token_may_not_scrape(daemon, role):
    """Issue 9 §7: their scrape was cut to their own account's series, but the process-wide
    ones (WebSocket clients, command and event counters, latencies) still told them about
    every other account."""
    token = await daemon.token(role, account="desk2")
    resp = await daemon.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["details"] == {"needed": "metrics", "role": role}
    assert "metrics role" in error["message"]


async def test_a_metrics_token_scrapes_every_account_and_reads_nothing_else(daemon):
    await daemon.token("viewer", account="desk2")
    scraper = await daemon.token("metrics", account="desk2", label="prometheus")
    headers = {"Authorization": f"Bearer {scraper}"}
    resp = await daemon.client.get("/metrics", headers=headers)
    assert resp.status == 200
    text = await resp.text()
    assert 'signalos_agent_connected{account="desk2"} 0.0' in text
    assert 'signalos_agent_connected{account="default"} 0.0' in text
    for path in ("/api/trading/state", "/api/system/health", "/api/events", "/api/trades"):
        resp = await daemon.client.get(path, headers=headers)
        assert resp.status == 403, path
    resp = await daemon.client.post("/api/trading/pause", headers=headers, json={})
    assert resp.status == 403


async def test_a_metrics_token_may_not_open_the_event_stream(daemon):
    from tests.stream_client import open_stream
    from tests.test_ws_auth import CLOSE_AUTH_FAILED, refusal

    scraper = await daemon.token("metrics", label="prometheus")
    async with open_stream(daemon) as stream:
        await stream.send("authenticate", {"token": scraper})
        error, code = await refusal(stream)
    assert code == CLOSE_AUTH_FAILED
    assert "metrics tokens may only read /metrics" in error["data"]["message"]
