"""Typed application and request keys: the daemon's only shared state hangs off the app."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from aiohttp import web

from signalosd.auth.tokens import Principal, TokenAuth
from signalosd.clock import Clock
from signalosd.config import Settings
from signalosd.http.pacing import Pacer
from signalosd.live.agent_hub import AgentHub
from signalosd.live.bus import EventBus
from signalosd.ops.guard import ConnectionGuard
from signalosd.ops.metrics import Metrics
from signalosd.outbox.commands import CommandPolicy, CommandWaiters
from signalosd.store import Database
from signalosd.web.files import StaticFiles

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
BUS = web.AppKey("bus", EventBus)
AUTH = web.AppKey("auth", TokenAuth)
WAITERS = web.AppKey("waiters", CommandWaiters)
AGENTS = web.AppKey("agents", AgentHub)
POLICY = web.AppKey("policy", CommandPolicy)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])
STARTED_AT = web.AppKey("started_at", float)
# The pace of each token's long REST reads (pacing.py).
PACER = web.AppKey("pacer", Pacer)
# The connections that have not shown a valid token yet (listeners.py feeds it).
GUARD = web.AppKey("guard", ConnectionGuard)
# Prometheus series, on a registry of this app's own (see metrics.py).
METRICS = web.AppKey("metrics", Metrics)

# The dashboard's files (web/serve.py); tests put a StaticFiles of their own here.
STATIC = web.AppKey("static", StaticFiles)

PRINCIPAL = web.RequestKey("principal", Principal)
ACCOUNT_ID = web.RequestKey("account_id", int)
REQUEST_ID = web.RequestKey("request_id", str)
# A listed browser origin other than the daemon's own (web/cors.py): its replies carry CORS.
CORS_ORIGIN = web.RequestKey("cors_origin", str)

# The route lookup built from api/routes.py (typed loosely here to avoid an import cycle).
ROUTES = web.AppKey("routes", dict[tuple[str, str], Any])

# Open /ws sessions by token id (to close them when their token is revoked).
STREAMS = web.AppKey("streams", dict[str, set[Any]])

# Fire-and-forget tasks (closing slow clients…), kept referenced and awaited at shutdown.
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
