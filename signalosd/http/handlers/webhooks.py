"""Outgoing webhooks (admin): create, list, delete. Thin: parse, one transaction, then start or
stop the webhook's worker (alerts/registry.py); the rules are in alerts/manage.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from signalosd import keys
from signalosd.alerts import manage, signing, urls, views
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.body import parse_body
from signalosd.http.mutate import context
from signalosd.http.params import path_id
from signalosd.http.reads import long_read
from signalosd.http.responses import json_response
from signalosd.models.webhooks import WebhookRequest
from signalosd.store import Tx

log = logging.getLogger("signalosd.http")


def _checked_url(url: str) -> None:
    problem = urls.problem(url)
    if problem is not None:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid request body: url: {problem}",
            {"fields": [{"field": "url", "message": problem, "type": "url"}]},
        )


async def create(request: web.Request) -> web.Response:
    req = await parse_body(request, WebhookRequest)
    _checked_url(req.url)
    secret = req.secret or signing.new_secret()
    actor = context(request).recorded_actor
    cap = request.app[keys.SETTINGS].webhook_max
    app = request.app

    async def create_and_start() -> dict[str, Any]:
        row = await app[keys.DB].write(lambda tx: manage.create(tx, req, secret, actor, cap))
        app[keys.WEBHOOKS].add(row)
        return row

    # Shielded: a client gone mid-request must not leave a stored webhook without a worker.
    row = await asyncio.shield(create_and_start())
    log.info(
        "event=webhook_created webhook_id=%d url=%s format=%s",
        row["id"],
        urls.redact(row["url"]),
        row["format"],
    )
    # The only reply that shows the full URL and the secret: they are not shown again.
    reply = {"webhook": views.view(row, 0), "url": row["url"], "secret": secret}
    return json_response(reply, status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    window = request.app[keys.SETTINGS].scan_max_rows

    def read(tx: Tx) -> list[dict[str, object]]:
        return [views.view(row, views.pending(tx, row, window)) for row in tx.webhooks()]

    return json_response({"webhooks": await long_read(request, read)})


async def delete(request: web.Request) -> web.Response:
    webhook_id = path_id(request, "webhook")
    actor = context(request).recorded_actor
    app = request.app

    async def delete_and_stop() -> dict[str, Any]:
        row = await app[keys.DB].write(lambda tx: manage.delete(tx, webhook_id, actor))
        await app[keys.WEBHOOKS].remove(webhook_id)
        return row

    row = await asyncio.shield(delete_and_stop())  # nor a deleted one with a worker
    log.info("event=webhook_deleted webhook_id=%d url=%s", webhook_id, urls.redact(row["url"]))
    return json_response({"webhook": views.view(row, 0), "deleted": True})
