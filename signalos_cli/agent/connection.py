"""The wire of `/ws/agent` as the agent sees it: the url, frames, reading with the close codes
that matter, and the single writer that drains the report queue (see docs/agent.md).

Close 4401 (the token was refused) raises `AuthFailed` and 4409 (a newer agent session for the
account) raises `Replaced`: both stop the agent for good. Any other end of the connection
raises `Lost`, and the agent reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

from signalos_cli.agent.queues import ReportQueue
from signalos_cli.errors import ExitCode
from signalosd.models import CloseCode

log = logging.getLogger("signalos.agent")

MAX_MESSAGE = 1024 * 1024


class AgentStopped(Exception):
    """The daemon told the agent to stop for good (no reconnect)."""

    exit_code = ExitCode.FAILED


class AuthFailed(AgentStopped):
    exit_code = ExitCode.UNAUTHORIZED


class Replaced(AgentStopped):
    exit_code = ExitCode.REPLACED


class Lost(Exception):
    """The connection ended (reconnect)."""


def agent_url(url: str) -> str:
    """http(s)://host:port[/prefix] → ws(s)://host:port[/prefix]/ws/agent."""
    u = URL(url)
    scheme = {"http": "ws", "https": "wss"}.get(u.scheme, u.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported url scheme {u.scheme!r} (use http, https, ws or wss)")
    path = u.path.rstrip("/")
    if not path.endswith("/ws/agent"):
        path += "/ws/agent"
    return str(u.with_scheme(scheme).with_path(path).with_query(None))


def frame(type_: str, data: Mapping[str, Any], timestamp: str) -> str:
    """The seed's envelope `{id, type, data, timestamp}`."""
    return json.dumps(
        {"id": uuid.uuid4().hex, "type": type_, "data": data, "timestamp": timestamp},
        separators=(",", ":"),
    )


async def receive(ws: aiohttp.ClientWebSocketResponse, wait: float | None) -> dict[str, Any]:
    """The next JSON object from the daemon; raises AuthFailed, Replaced or Lost on close."""
    while True:
        msg = await ws.receive(timeout=wait)
        if msg.type is WSMsgType.TEXT:
            try:
                parsed = json.loads(msg.data)
            except ValueError:
                log.warning("event=bad_frame length=%s", len(msg.data))
                continue
            if isinstance(parsed, dict):
                return parsed
            continue
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            # The code the daemon sent, even if the connection dropped before our reply
            # (then aiohttp's own close_code says 1006).
            code = msg.data if msg.type is WSMsgType.CLOSE else ws.close_code
            reason = msg.extra if msg.type is WSMsgType.CLOSE and msg.extra else ""
            if code == CloseCode.AUTH_FAILED:
                raise AuthFailed(f"the daemon refused the agent token ({reason or code})")
            if code == CloseCode.REPLACED:
                raise Replaced("replaced by a newer agent session for this account")
            raise Lost(f"closed with code {code}" + (f" ({reason})" if reason else ""))
        if msg.type is WSMsgType.ERROR:
            raise Lost(f"connection error: {ws.exception()!r}")


async def write(
    ws: aiohttp.ClientWebSocketResponse, queue: ReportQueue, now: Callable[[], str]
) -> None:
    """Send the report queue in order, for as long as the connection lasts."""
    while True:
        item = await queue.get()
        try:
            await ws.send_str(frame(item.type, item.data, now()))
        except BaseException as exc:
            queue.push_front(item)  # sent or not, it goes again: both are idempotent
            if not isinstance(exc, asyncio.CancelledError):
                log.warning("event=send_failed type=%s error=%r", item.type, exc)
                await ws.close()  # the reader sees the close and the agent reconnects
            raise
