"""The risk guard's endpoints: its state, its limits, the reset of a latched trip."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from signalosd import keys
from signalosd.domain import risk_controls, risk_guard
from signalosd.domain.context import Context
from signalosd.domain.outcomes import StateChange
from signalosd.domain.risk_guard import GuardView
from signalosd.domain.risk_rules import RiskMemory
from signalosd.http.body import parse_body
from signalosd.http.mutate import mutate
from signalosd.http.responses import json_response
from signalosd.models.risk import RiskLimits, RiskResetRequest
from signalosd.store import Tx

Change = Callable[[Tx, Context], tuple[StateChange, GuardView]]


async def state(request: web.Request) -> web.Response:
    account_id, app = request[keys.ACCOUNT_ID], request.app

    def read(tx: Tx) -> tuple[RiskLimits | None, RiskMemory, int, dict[str, Any] | None]:
        limits, memory = risk_guard.load(tx, account_id)
        return limits, memory, tx.count_live_trades(account_id), tx.agent_status(account_id)

    limits, memory, live, stored = await app[keys.DB].read(read)
    latest = app[keys.AGENTS].mt5(account_id, stored)  # the latest status, throttled or not
    now = app[keys.CLOCK].now()
    return json_response(risk_controls.describe(now, limits, memory, latest, live))


async def set_limits(request: web.Request) -> web.Response:
    limits = await parse_body(request, RiskLimits)
    seen = _seen(request)
    return await _guard_change(request, lambda tx, c: risk_controls.set_limits(tx, c, limits, seen))


async def reset(request: web.Request) -> web.Response:
    req = await parse_body(request, RiskResetRequest)
    seen = _seen(request)
    return await _guard_change(request, lambda tx, c: risk_controls.reset(tx, c, req, seen))


def _seen(request: web.Request) -> dict[str, Any] | None:
    """The latest status the account's agent sent since this process started (fresher than
    the stored one, which the throttle updates at most every status_event_interval_s)."""
    return request.app[keys.AGENTS].mt5(request[keys.ACCOUNT_ID], None)


async def _guard_change(request: web.Request, fn: Change) -> web.Response:
    """A change of the guard, and, once committed, the watch told what the guard now holds."""
    views: list[GuardView] = []

    def run(tx: Tx, ctx: Context) -> StateChange:
        change, view = fn(tx, ctx)
        views.append(view)
        return change

    response = await mutate(request, run)
    for view in views:
        request.app[keys.RISK].committed(view)
    return response
