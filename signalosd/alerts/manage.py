"""Creating and deleting webhooks: whole-transaction functions over the store interface, each
one audited in the event log (`webhook_created`, `webhook_deleted`) with the redacted URL and
never the secret. Bad input changes nothing: every check runs before the first write."""

from __future__ import annotations

from typing import Any

from signalosd.alerts import urls
from signalosd.errors import ApiError, ErrorCode, not_found
from signalosd.models import EventType
from signalosd.models.webhooks import WebhookRequest
from signalosd.store import Tx


def create(
    tx: Tx, req: WebhookRequest, secret: str, actor: dict[str, Any], cap: int
) -> dict[str, Any]:
    """Store the webhook with its cursor at its own `webhook_created` event, so it is sent only
    what is committed after it; the row as stored."""
    account_id = None
    if req.account is not None:
        row = tx.account_by_name(req.account)
        if row is None:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                f"invalid request body: account: no account named {req.account!r}; "
                "leave it out for every account",
                {"fields": [{"field": "account", "message": "no such account", "type": "account"}]},
            )
        account_id = int(row["id"])
    if tx.count_webhooks() >= cap:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"there are already {cap} webhooks, the most webhook_max allows; delete one "
            "(DELETE /api/webhooks/{id}) or raise webhook_max",
            {"max": cap},
        )
    events = list(req.events)
    webhook_id = tx.insert_webhook(
        req.url, events, req.format.value, account_id, secret, tx.head_seq()
    )
    data = {
        "webhook_id": webhook_id,
        "url": urls.redact(req.url),
        "events": events,
        "format": req.format.value,
        "account": req.account,
    }
    created = tx.append_event(account_id, EventType.WEBHOOK_CREATED, data, actor)
    tx.webhook_advanced(webhook_id, created.seq, False)
    row = tx.webhook(webhook_id)
    assert row is not None
    return row


def delete(tx: Tx, webhook_id: int, actor: dict[str, Any]) -> dict[str, Any]:
    """Remove the webhook; the row as it was (404 when there is none)."""
    row = tx.webhook(webhook_id)
    if row is None:
        raise not_found("webhook", webhook_id)
    tx.delete_webhook(webhook_id)
    data = {"webhook_id": webhook_id, "url": urls.redact(row["url"])}
    tx.append_event(row["account_id"], EventType.WEBHOOK_DELETED, data, actor)
    return row
