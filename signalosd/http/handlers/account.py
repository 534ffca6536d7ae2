"""The account history behind the dashboard's equity chart (account_history.py)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from signalosd import keys
from signalosd.clock import iso
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.params import int_param, time_param
from signalosd.http.reads import long_read
from signalosd.http.responses import json_response

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_POINTS, MAX_POINTS = 500, 2000


async def history(request: web.Request) -> web.Response:
    """Balance and equity from `from` to `to` (default: the last 24 h) in at most `points`
    buckets. A long read: paced and on the scan lane like the other lists."""
    account_id = request[keys.ACCOUNT_ID]
    end = time_param(request, "to", request.app[keys.CLOCK].now())
    start = time_param(request, "from", end - DEFAULT_SPAN)
    if start >= end:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"query parameter 'from' ({iso(start)}) must be before 'to' ({iso(end)})",
            {"fields": [{"field": "from", "message": "must be before to", "type": "range"}]},
        )
    points = int_param(request, "points", DEFAULT_POINTS, 1, MAX_POINTS)
    bucket_s = (end - start).total_seconds() / points
    first, last = iso(start), iso(end)
    rows = await long_read(request, lambda tx: tx.account_history(account_id, first, last, points))
    account = request.query.get("account") or request[keys.PRINCIPAL].account
    return json_response(
        {"account": account, "from": first, "to": last, "bucket_s": bucket_s, "points": rows}
    )
