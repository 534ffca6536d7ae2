"""Trade mirror reads and trade management requests."""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.domain import trades
from signalosd.domain.event_log import LIVE_STATUSES
from signalosd.errors import ApiError, ErrorCode, not_found
from signalosd.http.body import parse_body
from signalosd.http.mutate import mutate
from signalosd.http.params import int_param, list_param, path_id
from signalosd.http.reads import long_read
from signalosd.http.responses import json_response
from signalosd.models import (
    EmptyRequest,
    ModifyRequest,
    PartialCloseRequest,
    TradeStatus,
    TrailingStopRequest,
)


def _statuses(request: web.Request) -> list[str] | None:
    wanted = list_param(request, "status")
    if not wanted:
        return list(LIVE_STATUSES)
    if wanted == ["all"]:
        return None
    known = {s.value for s in TradeStatus}
    bad = [s for s in wanted if s not in known]
    if bad:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"unknown trade status {', '.join(bad)}; use {', '.join(sorted(known))} or all",
            {"fields": [{"field": "status", "message": "unknown status", "type": "enum"}]},
        )
    return wanted


async def list_trades(request: web.Request) -> web.Response:
    account_id = request[keys.ACCOUNT_ID]
    statuses = _statuses(request)
    symbol = request.query.get("symbol") or None
    limit = int_param(request, "limit", 500, 1, 10_000)
    rows = await long_read(
        request,
        lambda tx: tx.list_trades(account_id, statuses, symbol, limit),
    )
    return json_response({"trades": rows})


async def get_trade(request: web.Request) -> web.Response:
    account_id, trade_id = request[keys.ACCOUNT_ID], path_id(request, "trade")
    row = await request.app[keys.DB].read(lambda tx: tx.get_trade(account_id, trade_id))
    if row is None:
        raise not_found("trade", trade_id)
    return json_response(row)


async def close(request: web.Request) -> web.Response:
    trade_id = path_id(request, "trade")
    await parse_body(request, EmptyRequest)
    return await mutate(request, lambda tx, c: trades.close(tx, c, trade_id))


async def partial_close(request: web.Request) -> web.Response:
    trade_id = path_id(request, "trade")
    req = await parse_body(request, PartialCloseRequest)
    return await mutate(request, lambda tx, c: trades.partial_close(tx, c, trade_id, req))


async def modify(request: web.Request) -> web.Response:
    trade_id = path_id(request, "trade")
    req = await parse_body(request, ModifyRequest)
    return await mutate(request, lambda tx, c: trades.modify(tx, c, trade_id, req))


async def trailing_stop(request: web.Request) -> web.Response:
    trade_id = path_id(request, "trade")
    req = await parse_body(request, TrailingStopRequest)
    return await mutate(request, lambda tx, c: trades.trailing_stop(tx, c, trade_id, req))
