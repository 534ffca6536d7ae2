"""Typed application and request keys: the daemon's only shared state hangs off the app.

The types are imported for the type checker only: this module is imported by nearly every other
one, so importing their modules at run time would tie them all into import cycles.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from signalosd.alerts.registry import Webhooks
    from signalosd.auth.tokens import Principal, TokenAuth
    from signalosd.clock import Clock
    from signalosd.config import Settings
    from signalosd.http.pacing import Pacer
    from signalosd.http.route import RouteTable
    from signalosd.live.agent_hub import AgentHub
    from signalosd.live.bus import EventBus
    from signalosd.live.risk_watch import RiskWatch
    from signalosd.ops.guard import ConnectionGuard
    from signalosd.ops.metrics import Metrics
    from signalosd.outbox.deadlines import CommandPolicy
    from signalosd.outbox.waiters import CommandWaiters
    from signalosd.store import Database
    from signalosd.web.files import StaticFiles
    from signalosd.ws.agent_session import DeliveryFactory

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
DB: web.AppKey[Database] = web.AppKey("db")
BUS: web.AppKey[EventBus] = web.AppKey("bus")
AUTH: web.AppKey[TokenAuth] = web.AppKey("auth")
WAITERS: web.AppKey[CommandWaiters] = web.AppKey("waiters")
AGENTS: web.AppKey[AgentHub] = web.AppKey("agents")
RISK: web.AppKey[RiskWatch] = web.AppKey("risk")
POLICY: web.AppKey[CommandPolicy] = web.AppKey("policy")
# Makes each agent session's outbox delivery (app.py binds what it needs).
DELIVERIES: web.AppKey[DeliveryFactory] = web.AppKey("deliveries")
WEBSOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("websockets")
STARTED_AT: web.AppKey[float] = web.AppKey("started_at")
# The pace of each token's long REST reads (pacing.py).
PACER: web.AppKey[Pacer] = web.AppKey("pacer")
# The connections that have not shown a valid token yet (listeners.py feeds it).
GUARD: web.AppKey[ConnectionGuard] = web.AppKey("guard")
# Prometheus series, on a registry of this app's own (see metrics.py).
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

# The dashboard's files (web/serve.py); tests put a StaticFiles of their own here.
STATIC: web.AppKey[StaticFiles] = web.AppKey("static")

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
ACCOUNT_ID: web.RequestKey[int] = web.RequestKey("account_id")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
# A listed browser origin other than the daemon's own (web/cors.py): its replies carry CORS.
CORS_ORIGIN: web.RequestKey[str] = web.RequestKey("cors_origin")

# The routes the app serves (http/routes.py): the auth middleware and /openapi.json read it.
ROUTES: web.AppKey[RouteTable] = web.AppKey("routes")

# Open /ws sessions by token id (to close them when their token is revoked).
STREAMS: web.AppKey[dict[str, set[Any]]] = web.AppKey("streams")

# Fire-and-forget tasks (closing slow clients…), kept referenced and awaited at shutdown.
BACKGROUND: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("background")

# The outgoing webhooks' delivery workers (alerts/registry.py).
WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks")
