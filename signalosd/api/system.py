"""Health, liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import __version__, keys
from ..errors import ApiError, ErrorCode
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


def _metric(
    lines: list[str], name: str, kind: str, help_: str, samples: list[tuple[str, float]]
) -> None:
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    bus = app[keys.BUS]
    counts = await app[keys.DB].read(lambda tx: tx.command_counts())
    lines: list[str] = []
    _metric(
        lines,
        "signalos_commands",
        "gauge",
        "Commands in the outbox by type and status.",
        [(f'{{type="{t}",status="{s}"}}', n) for t, s, n in counts],
    )
    _metric(
        lines,
        "signalos_events_published_total",
        "counter",
        "Events published to subscribers since start.",
        [("", bus.events_published)],
    )
    _metric(
        lines,
        "signalos_event_last_seq",
        "gauge",
        "Seq of the last published event.",
        [("", bus.published_seq)],
    )
    _metric(
        lines,
        "signalos_websocket_clients",
        "gauge",
        "Open WebSocket connections.",
        [("", len(app[keys.WEBSOCKETS]))],
    )
    _metric(
        lines,
        "signalos_slow_consumer_closes_total",
        "counter",
        "WebSocket clients closed with 4008 for falling behind.",
        [("", bus.slow_consumer_closes)],
    )
    _metric(
        lines,
        "signalos_http_requests_total",
        "counter",
        "HTTP requests by status class.",
        [(f'{{code="{k}"}}', v) for k, v in sorted(app[keys.HTTP_STATS].items())],
    )
    return web.Response(
        body=("\n".join(lines) + "\n").encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi(request: web.Request) -> web.Response:
    from .openapi import build_spec

    return json_response(build_spec())
