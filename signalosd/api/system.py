"""Health, liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__, keys
from ..errors import ApiError, ErrorCode
from ..metrics import read_scrape
from ..models import Role
from ..store import Tx
from .common import json_response


async def health(request: web.Request) -> web.Response:
    app = request.app
    account_id = request[keys.ACCOUNT_ID]

    def read(tx: Tx) -> dict[str, Any]:
        return {
            "state": tx.get_state(account_id),
            "queues": tx.queue_depths(account_id),
            "head": tx.head_seq(),
            "agent": tx.agent_status(account_id),
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
        "db": {"ok": True, "last_seq": seen["head"]},
        "websocket_clients": len(app[keys.WEBSOCKETS]),
        "uptime_s": round(time.monotonic() - app[keys.STARTED_AT], 3),
    }
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
    """Prometheus text exposition (series: docs/api.md)."""
    app = request.app
    admin = request[keys.PRINCIPAL].role is Role.ADMIN
    only = None if admin else request[keys.ACCOUNT_ID]
    scrape = await app[keys.DB].read(lambda tx: read_scrape(tx, only))
    return web.Response(
        body=app[keys.METRICS].render(scrape), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi(request: web.Request) -> web.Response:
    from .openapi import build_spec

    return json_response(build_spec())
