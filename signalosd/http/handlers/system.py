"""Health, liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from signalosd import __version__, keys
from signalosd.domain import risk_guard
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.openapi import build_spec
from signalosd.http.responses import json_response
from signalosd.models import Role
from signalosd.ops.metrics import read_scrape
from signalosd.store import Tx


async def health(request: web.Request) -> web.Response:
    """The account's health. The process-wide figures (open WebSockets of every account, the
    head of the whole event log) only for an admin: for anyone else they would describe the
    other accounts' activity."""
    app = request.app
    account_id = request[keys.ACCOUNT_ID]
    admin = request[keys.PRINCIPAL].role is Role.ADMIN

    def read(tx: Tx) -> dict[str, Any]:
        return {
            "state": tx.get_state(account_id),
            "queues": tx.queue_depths(account_id),
            "head": tx.head_seq(),
            "agent": tx.agent_status(account_id),
            "risk": risk_guard.health(tx, account_id),
        }

    seen = await app[keys.DB].read(read)
    state, hub = seen["state"], app[keys.AGENTS]
    body = {
        "status": "ok",
        "version": __version__,
        "account": state["account"],
        "mode": state["mode"],
        "stealth": state["stealth"],
        "agent": hub.health(account_id, seen["agent"]),
        "mt5": hub.mt5(account_id, seen["agent"]),
        "queues": seen["queues"],
        "db": {"ok": True, "last_seq": seen["head"]} if admin else {"ok": True},
        "risk": seen["risk"],
    }
    if admin:
        body["websocket_clients"] = len(app[keys.WEBSOCKETS])
    body["uptime_s"] = round(time.monotonic() - app[keys.STARTED_AT], 3)
    body["dev_mode"] = app[keys.SETTINGS].dev_mode
    return json_response(body)


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    if not db.is_open:
        raise ApiError(ErrorCode.NOT_READY, "the database is not open yet (starting or stopping)")
    try:
        await db.read(lambda tx: tx.head_seq())
    except Exception as exc:
        raise ApiError(ErrorCode.NOT_READY, f"the database does not answer: {exc}") from None
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (series: docs/api.md) of every account: the route lets only
    metrics and admin tokens in, because the process-wide series (WebSocket clients, event and
    command counters, latencies) describe every account whatever the per-account ones show."""
    app = request.app
    # Counts over every command: a long read, so on the scan lane, not the token checks'.
    scrape = await app[keys.DB].scan(read_scrape, owner=request[keys.PRINCIPAL].token_id)
    return web.Response(
        body=app[keys.METRICS].render(scrape), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi(request: web.Request) -> web.Response:
    """The document of the routes this app serves (built on the first request, then kept)."""
    return json_response(request.app[keys.ROUTES].spec(build_spec))
