"""An alert as each kind of receiver expects it: the body bytes and the headers.

`json` is ours (every field of the event plus the human line, with `seq` to de-duplicate);
`slack`, `discord` and `telegram` are those services' incoming-message shapes; `ntfy` is a
plain-text body with its Title/Tags/Priority headers. Every request also says which event it
carries (`X-SignalOS-Event`, `X-SignalOS-Seq`) and is signed when the webhook has a secret
(signing.py) over the exact bytes built here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signalosd import strict_json
from signalosd.alerts import signing, text, urls
from signalosd.models import EventType
from signalosd.models.webhooks import WebhookFormat
from signalosd.store import EventRecord

JSON_TYPE = "application/json"

# ntfy priorities (1 min .. 5 max) and tags (emoji shortcodes) by event type.
_URGENT = {EventType.EMERGENCY_STOP, EventType.RISK_LIMIT_BREACHED}
_HIGH = {EventType.RISK_WARNING, EventType.AGENT_DISCONNECTED, EventType.COMMAND_FAILED}


@dataclass(frozen=True, slots=True)
class Request:
    body: bytes
    headers: dict[str, str]


def _json(ev: EventRecord, line: str, url: str) -> tuple[dict[str, Any], str]:
    doc = {
        "seq": ev.seq,
        "type": ev.type,
        "account": ev.account,
        "data": json.loads(ev.data_json),
        "ts": ev.ts,
        "actor": json.loads(ev.actor_json),
        "text": line,
    }
    return doc, JSON_TYPE


def _telegram(ev: EventRecord, line: str, url: str) -> tuple[dict[str, Any], str]:
    doc: dict[str, Any] = {"text": line}
    chat_id = urls.query_value(url, "chat_id")
    if chat_id is not None:
        doc["chat_id"] = chat_id
    return doc, JSON_TYPE


_BODIES: dict[WebhookFormat, Callable[[EventRecord, str, str], tuple[dict[str, Any], str]]] = {
    WebhookFormat.JSON: _json,
    WebhookFormat.SLACK: lambda ev, line, url: ({"text": line}, JSON_TYPE),
    WebhookFormat.DISCORD: lambda ev, line, url: ({"content": line}, JSON_TYPE),
    WebhookFormat.TELEGRAM: _telegram,
}


def _header_text(value: str) -> str:
    """A header value from our words and an account name: printable ASCII only."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in value)


def _ntfy_headers(ev: EventRecord) -> dict[str, str]:
    where = ev.account if ev.account is not None else "all accounts"
    if ev.type in _URGENT:
        priority, tags = "5", "rotating_light"
    elif ev.type in _HIGH:
        priority, tags = "4", "warning"
    else:
        priority, tags = "3", "information_source"
    return {
        "Title": _header_text(f"SignalOS {ev.type} on {where}"),
        "Tags": tags,
        "Priority": priority,
    }


def build(fmt: WebhookFormat, ev: EventRecord, url: str, secret: str | None) -> Request:
    """The request that carries `ev` to a webhook of format `fmt` at `url`."""
    line = text.line(ev.seq, ev.type, ev.account, json.loads(ev.data_json))
    headers = {"X-SignalOS-Event": ev.type, "X-SignalOS-Seq": str(ev.seq)}
    if fmt is WebhookFormat.NTFY:
        body = line.encode()
        headers |= {"Content-Type": "text/plain; charset=utf-8"} | _ntfy_headers(ev)
    else:
        doc, content_type = _BODIES[fmt](ev, line, url)
        body = strict_json.dumps(doc).encode()
        headers["Content-Type"] = content_type
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.signature(secret, body)
    return Request(body, headers)
