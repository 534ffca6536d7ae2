"""The event log over REST: pages after a seq, for the caller's accounts."""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.domain.event_log import page_json, read_page, reset_error, reset_reason
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.params import int_param, list_param
from signalosd.http.reads import long_read
from signalosd.models import Role, type_filter
from signalosd.models.type_filter import TypeFilter
from signalosd.store import Tx


def visible_accounts(request: web.Request) -> list[int] | None:
    """Accounts whose events this request may read: an admin sees all unless it names one."""
    principal = request[keys.PRINCIPAL]
    if principal.role is Role.ADMIN and "account" not in request.query:
        return None
    return [request[keys.ACCOUNT_ID]]


async def list_events(request: web.Request) -> web.Response:
    since = int_param(request, "since", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 1, 1000)
    types = type_param(request)
    accounts = visible_accounts(request)
    scan_max = request.app[keys.SETTINGS].scan_max_rows

    def read(tx: Tx) -> bytes:
        reason = reset_reason(tx, since)
        if reason is not None:
            raise reset_error(tx, since, reason)
        return page_json(*read_page(tx, accounts, since, limit, types, scan_max))

    body = await long_read(request, read)
    return web.Response(body=body, content_type="application/json")


def type_param(request: web.Request) -> TypeFilter | None:
    """`?type=` as a checked filter; a bad one is a 422 naming it."""
    try:
        return type_filter.parse(list_param(request, "type"))
    except type_filter.FilterError as exc:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"query parameter 'type': {exc}",
            {"fields": [{"field": "type", "message": str(exc), "type": "type_filter"}]},
        ) from None
