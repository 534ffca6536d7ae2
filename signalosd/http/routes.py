"""The route table: one list that wires the app, drives authorisation and generates OpenAPI.

Tests walk this table (auth matrix, error shapes, OpenAPI coverage), so a new route cannot skip
authorisation or documentation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from signalosd import models as m
from signalosd.http.handlers import account, commands, events, signals, system, trades, trading
from signalosd.models import Role
from signalosd.web import serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: Role | None  # None: no token (public, or authenticated in-band like /ws)
    summary: str
    body: type[BaseModel] | None = None
    reply: type[BaseModel] | None = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    websocket: bool = False
    agent_ok: bool = False  # an agent token may call it too (signal sources on the desk)
    # aiohttp's pattern when `path` (the canonical one, as documented) is not enough to match:
    # `{path:.+}` spans several segments.
    pattern: str | None = None

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


_ACCOUNT_Q = {"account": "admin only: act on this account instead of the token's own"}


def build_routes(ws_handler: Handler, agent_ws_handler: Handler) -> list[Route]:
    op, viewer = Role.OPERATOR, Role.VIEWER
    return [
        Route(
            "POST",
            "/api/trading/emergency-stop",
            trading.emergency_stop,
            op,
            "Halt trading now; optionally flatten every position. Never rate-limited.",
            m.EmergencyStopRequest,
            m.ControlReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trading/pause",
            trading.pause,
            op,
            "Stop new entries; open trades keep being managed.",
            m.PauseRequest,
            m.ControlReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trading/resume",
            trading.resume,
            op,
            "Resume trading; leaving a halt needs confirm_halt.",
            m.ResumeRequest,
            m.ControlReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trading/stealth-toggle",
            trading.stealth_toggle,
            op,
            "Set or toggle stealth mode (SL/TP kept virtual by the agent).",
            m.StealthRequest,
            m.ControlReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "GET",
            "/api/trading/state",
            trading.state,
            viewer,
            "Trading mode and stealth of the account.",
            None,
            m.TradingState,
            200,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/firebridge/force-sync",
            trading.force_sync,
            op,
            "Ask the agent for a full snapshot to reconcile the trade mirror.",
            m.EmptyRequest,
            m.CommandReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "GET",
            "/api/trades",
            trades.list_trades,
            viewer,
            "Trades of the account (default: pending, open and closing).",
            None,
            m.TradeList,
            200,
            _ACCOUNT_Q
            | {
                "status": "comma-separated statuses, or all",
                "symbol": "only this symbol",
                "limit": "at most this many (1-10000, default 500)",
            },
        ),
        Route(
            "GET",
            "/api/trades/{id}",
            trades.get_trade,
            viewer,
            "One trade.",
            None,
            m.Trade,
            200,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trades/{id}/close",
            trades.close,
            op,
            "Close a trade.",
            m.EmptyRequest,
            m.CommandReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trades/{id}/partial-close",
            trades.partial_close,
            op,
            "Close part of a trade (default half), rounded down to the volume step.",
            m.PartialCloseRequest,
            m.CommandReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "PUT",
            "/api/trades/{id}/modify",
            trades.modify,
            op,
            "Change SL and/or TP (null removes a level).",
            m.ModifyRequest,
            m.CommandReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "POST",
            "/api/trades/{id}/trailing-stop",
            trades.trailing_stop,
            op,
            "Start a trailing stop at a distance (and step) in price units.",
            m.TrailingStopRequest,
            m.CommandReply,
            202,
            _ACCOUNT_Q,
        ),
        Route(
            "GET",
            "/api/commands/{id}",
            commands.get_command,
            viewer,
            "A command's status; ?wait=S long-polls until it finishes.",
            None,
            m.CommandReply,
            200,
            _ACCOUNT_Q | {"wait": "seconds to wait for the outcome"},
        ),
        Route(
            "GET",
            "/api/events",
            events.list_events,
            viewer,
            "The event log after a seq (gapless; 409 events_reset when it cannot resume).",
            None,
            m.EventList,
            200,
            _ACCOUNT_Q
            | {
                "since": "return events after this seq (default 0)",
                "limit": "at most this many (1-1000, default 100)",
                "type": "only these types; repeatable or comma-separated; * wildcard",
            },
        ),
        Route(
            "GET",
            "/api/system/health",
            system.health,
            viewer,
            "Mode, agent and MT5 status, queue depths, database.",
            None,
            m.Health,
            200,
            _ACCOUNT_Q,
        ),
        Route(
            "GET",
            "/api/account/history",
            account.history,
            viewer,
            "Balance and equity over time, downsampled (the dashboard's equity chart).",
            None,
            m.AccountHistory,
            200,
            _ACCOUNT_Q
            | {
                "from": "ISO 8601 start (default: to minus 24 h)",
                "to": "ISO 8601 end (default: now)",
                "points": "at most this many buckets (1-2000, default 500)",
            },
        ),
        Route(
            "GET",
            "/metrics",
            system.metrics,
            Role.METRICS,
            "Prometheus metrics of every account (text format): a metrics or admin token.",
        ),
        Route("GET", "/livez", system.livez, None, "The process is alive."),
        Route("GET", "/readyz", system.readyz, None, "The database is open and answering."),
        Route("GET", "/openapi.json", system.openapi, None, "This document."),
        Route(
            "POST",
            "/api/signals",
            signals.create,
            op,
            "Ingest a trading signal: an entry for the agent while running, else skipped.",
            m.SignalRequest,
            m.SignalReply,
            202,
            _ACCOUNT_Q,
            agent_ok=True,
        ),
        Route(
            "GET",
            "/api/signals",
            signals.list_signals,
            viewer,
            "Signals of the account, newest first.",
            None,
            m.SignalList,
            200,
            _ACCOUNT_Q | {"status": "accepted or skipped", "limit": "1-1000, default 100"},
        ),
        Route(
            "GET",
            "/ws/agent",
            agent_ws_handler,
            None,
            "The desktop agent's WebSocket (agent token in-band); see docs/agent.md.",
            websocket=True,
        ),
        Route(
            "GET",
            "/ws",
            ws_handler,
            None,
            "WebSocket event stream: authenticate {token} first, then subscribe {since, types}.",
            websocket=True,
        ),
        *_static_routes(),
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
        Route(method, path, handler, None, summary, pattern=pattern)
        for path, handler, pattern, summary in pages
        for method in ("GET", "HEAD")
    ]


def add_routes(app: web.Application, routes: list[Route]) -> dict[tuple[str, str], Route]:
    """Register the routes; return the lookup the auth middleware uses."""
    table: dict[tuple[str, str], Route] = {}
    for route in routes:
        app.router.add_route(route.method, route.pattern or route.path, route.handler)
        table[(route.method, route.path)] = route
    return table
