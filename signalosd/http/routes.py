"""The route table: one list that wires the app, drives authorisation and generates OpenAPI.

Tests walk this table (auth matrix, error shapes, OpenAPI coverage, reply models), so a new
route cannot skip authorisation or documentation, nor send what its reply model does not say.
"""

from __future__ import annotations

from aiohttp import web

from signalosd import models as m
from signalosd.http.handlers import (
    account,
    commands,
    events,
    risk,
    signals,
    system,
    trades,
    trading,
    webhooks,
)
from signalosd.http.route import Handler, Route, RouteTable
from signalosd.models import Role
from signalosd.models import webhooks as wh
from signalosd.models.risk import RiskChangeReply, RiskLimits, RiskResetRequest, RiskState
from signalosd.web import serve

_ACCOUNT_Q = {"account": "admin only: act on this account instead of the token's own"}


def build_routes(ws_handler: Handler, agent_ws_handler: Handler) -> list[Route]:
    op, viewer = Role.OPERATOR, Role.VIEWER
    return [
        Route(
            method="POST",
            path="/api/trading/emergency-stop",
            handler=trading.emergency_stop,
            role=op,
            summary="Halt trading now; optionally flatten every position. Never rate-limited.",
            body=m.EmergencyStopRequest,
            reply=m.ControlReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trading/pause",
            handler=trading.pause,
            role=op,
            summary="Stop new entries; open trades keep being managed.",
            body=m.PauseRequest,
            reply=m.ControlReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trading/resume",
            handler=trading.resume,
            role=op,
            summary="Resume trading; leaving a halt needs confirm_halt.",
            body=m.ResumeRequest,
            reply=m.ControlReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trading/stealth-toggle",
            handler=trading.stealth_toggle,
            role=op,
            summary="Set or toggle stealth mode (SL/TP kept virtual by the agent).",
            body=m.StealthRequest,
            reply=m.ControlReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="GET",
            path="/api/trading/state",
            handler=trading.state,
            role=viewer,
            summary="Trading mode and stealth of the account.",
            reply=m.TradingState,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/firebridge/force-sync",
            handler=trading.force_sync,
            role=op,
            summary="Ask the agent for a full snapshot to reconcile the trade mirror.",
            body=m.EmptyRequest,
            reply=m.CommandReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="GET",
            path="/api/trades",
            handler=trades.list_trades,
            role=viewer,
            summary="Trades of the account (default: pending, open and closing).",
            reply=m.TradeList,
            query=_ACCOUNT_Q
            | {
                "status": "comma-separated statuses, or all",
                "symbol": "only this symbol",
                "limit": "at most this many (1-10000, default 500)",
            },
        ),
        Route(
            method="GET",
            path="/api/trades/{id}",
            handler=trades.get_trade,
            role=viewer,
            summary="One trade.",
            reply=m.Trade,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trades/{id}/close",
            handler=trades.close,
            role=op,
            summary="Close a trade.",
            body=m.EmptyRequest,
            reply=m.CommandReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trades/{id}/partial-close",
            handler=trades.partial_close,
            role=op,
            summary="Close part of a trade (default half), rounded down to the volume step.",
            body=m.PartialCloseRequest,
            reply=m.CommandReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="PUT",
            path="/api/trades/{id}/modify",
            handler=trades.modify,
            role=op,
            summary="Change SL and/or TP (null removes a level).",
            body=m.ModifyRequest,
            reply=m.CommandReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/trades/{id}/trailing-stop",
            handler=trades.trailing_stop,
            role=op,
            summary="Start a trailing stop at a distance (and step) in price units.",
            body=m.TrailingStopRequest,
            reply=m.CommandReply,
            status=202,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="GET",
            path="/api/commands/{id}",
            handler=commands.get_command,
            role=viewer,
            summary="A command's status; ?wait=S long-polls until it finishes.",
            reply=m.CommandReply,
            query=_ACCOUNT_Q | {"wait": "seconds to wait for the outcome"},
        ),
        Route(
            method="GET",
            path="/api/events",
            handler=events.list_events,
            role=viewer,
            summary="The event log after a seq (gapless; 409 events_reset when it cannot resume).",
            reply=m.EventList,
            query=_ACCOUNT_Q
            | {
                "since": "return events after this seq (default 0)",
                "limit": "at most this many (1-1000, default 100)",
                "type": "only these types; repeatable or comma-separated; * wildcard",
            },
        ),
        Route(
            method="GET",
            path="/api/system/health",
            handler=system.health,
            role=viewer,
            summary="Mode, agent and MT5 status, queue depths, database.",
            reply=m.Health,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="GET",
            path="/api/account/history",
            handler=account.history,
            role=viewer,
            summary="Balance and equity over time, downsampled (the dashboard's equity chart).",
            reply=m.AccountHistory,
            query=_ACCOUNT_Q
            | {
                "from": "ISO 8601 start (default: to minus 24 h)",
                "to": "ISO 8601 end (default: now)",
                "points": "at most this many buckets (1-2000, default 500)",
            },
        ),
        Route(
            method="GET",
            path="/api/risk",
            handler=risk.state,
            role=viewer,
            summary="The risk guard: each limit's threshold, value, use and state; the latch.",
            reply=RiskState,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="PUT",
            path="/api/risk/limits",
            handler=risk.set_limits,
            role=op,
            summary="Replace the account's risk limits, whole (a field left out is off).",
            body=RiskLimits,
            reply=RiskChangeReply,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="POST",
            path="/api/risk/reset",
            handler=risk.reset,
            role=op,
            summary="Clear a latched trip (confirm: true); trading stays halted until resumed.",
            body=RiskResetRequest,
            reply=RiskChangeReply,
            query=_ACCOUNT_Q,
        ),
        Route(
            method="GET",
            path="/metrics",
            handler=system.metrics,
            role=Role.METRICS,
            summary="Prometheus metrics of every account (text format): a metrics or admin token.",
        ),
        Route(
            method="GET",
            path="/livez",
            handler=system.livez,
            role=None,
            summary="The process is alive.",
            reply=m.Probe,
        ),
        Route(
            method="GET",
            path="/readyz",
            handler=system.readyz,
            role=None,
            summary="The database is open and answering.",
            reply=m.Probe,
        ),
        Route(
            method="GET",
            path="/openapi.json",
            handler=system.openapi,
            role=None,
            summary="This document.",
        ),
        Route(
            method="POST",
            path="/api/signals",
            handler=signals.create,
            role=op,
            summary="Ingest a trading signal: an entry for the agent while running, else skipped.",
            body=m.SignalRequest,
            reply=m.SignalReply,
            status=202,
            query=_ACCOUNT_Q,
            agent_ok=True,
        ),
        Route(
            method="GET",
            path="/api/signals",
            handler=signals.list_signals,
            role=viewer,
            summary="Signals of the account, newest first.",
            reply=m.SignalList,
            query=_ACCOUNT_Q | {"status": "accepted or skipped", "limit": "1-1000, default 100"},
        ),
        Route(
            method="GET",
            path="/ws/agent",
            handler=agent_ws_handler,
            role=None,
            summary="The desktop agent's WebSocket (agent token in-band); see docs/agent.md.",
            websocket=True,
        ),
        Route(
            method="GET",
            path="/ws",
            handler=ws_handler,
            role=None,
            summary=(
                "WebSocket event stream: authenticate {token} first, then subscribe {since, types}."
            ),
            websocket=True,
        ),
        *_static_routes(),
        *_webhook_routes(),
    ]


def _webhook_routes() -> list[Route]:
    """Outgoing webhooks (docs/alerts.md): admin only, across accounts."""
    admin = Role.ADMIN
    return [
        Route(
            method="POST",
            path="/api/webhooks",
            handler=webhooks.create,
            role=admin,
            summary="Create an outgoing webhook; the reply is the only one with its secret.",
            body=wh.WebhookRequest,
            reply=wh.WebhookCreated,
            status=201,
        ),
        Route(
            method="GET",
            path="/api/webhooks",
            handler=webhooks.list_webhooks,
            role=admin,
            summary="Every webhook with its delivery state (URLs redacted, secrets never shown).",
            reply=wh.WebhookList,
        ),
        Route(
            method="DELETE",
            path="/api/webhooks/{id}",
            handler=webhooks.delete,
            role=admin,
            summary="Delete a webhook; an attempt in flight is abandoned.",
            reply=wh.WebhookDeleted,
        ),
    ]


def _static_routes() -> list[Route]:
    """The dashboard (web/serve.py): public, HEAD as well as GET (each in the table, so the
    auth middleware and OpenAPI see both)."""
    pages = [
        ("/", serve.index, None, "The dashboard (index.html)."),
        (
            "/static/{path}",
            serve.static_file,
            "/static/{path:.+}",
            "A file of the dashboard (strong ETag; Cache-Control: no-cache).",
        ),
    ]
    return [
        Route(
            method=method,
            path=path,
            handler=handler,
            role=None,
            summary=summary,
            pattern=pattern,
        )
        for path, handler, pattern, summary in pages
        for method in ("GET", "HEAD")
    ]


def add_routes(app: web.Application, routes: list[Route]) -> RouteTable:
    """Register the routes; return the table the auth middleware and /openapi.json read."""
    for route in routes:
        app.router.add_route(route.method, route.pattern or route.path, route.handler)
    return RouteTable(routes)
