"""Signals: POST from a signal source (operator or agent token), GET for people."""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.domain import signals
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.body import parse_body
from signalosd.http.mutate import mutate
from signalosd.http.params import int_param
from signalosd.http.reads import long_read
from signalosd.http.responses import json_response
from signalosd.models import SignalRequest, SignalStatus


async def create(request: web.Request) -> web.Response:
    req = await parse_body(request, SignalRequest)
    return await mutate(request, lambda tx, c: signals.ingest(tx, c, req))


async def list_signals(request: web.Request) -> web.Response:
    account_id = request[keys.ACCOUNT_ID]
    status = request.query.get("status") or None
    known = [s.value for s in SignalStatus]
    if status is not None and status not in known:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"unknown signal status {status!r}; use {' or '.join(known)}",
            {"fields": [{"field": "status", "message": "unknown status", "type": "enum"}]},
        )
    limit = int_param(request, "limit", 100, 1, 1000)
    rows = await long_read(
        request,
        lambda tx: tx.list_signals(account_id, status, limit),
    )
    return json_response({"signals": rows})
