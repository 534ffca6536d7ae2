"""What /ws and /ws/agent share: the envelope, the authenticate handshake, closing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from signalosd import keys, strict_json
from signalosd.auth import local
from signalosd.auth.tokens import Principal
from signalosd.clock import iso
from signalosd.errors import ApiError

CLOSE_AUTH_FAILED = 4401


def frame(type_: str, data: dict[str, Any], msg_id: str, ts: str) -> str:
    return strict_json.dumps({"id": msg_id, "type": type_, "data": data, "timestamp": ts})


async def close_with_deadline(
    ws: web.WebSocketResponse, code: int, message: str, deadline: float
) -> None:
    """Close politely, but never wait on a client longer than `deadline` (then drop it)."""
    completed = False
    try:
        await asyncio.wait_for(ws.close(code=code, message=message.encode()[:120]), deadline)
        completed = True
    except (TimeoutError, ConnectionError):
        pass
    finally:
        # A timed-out close has already called transport.close(), which then waits without
        # limit to flush what is queued for a client that reads nothing: abort it anyway.
        transport = ws._req.transport if ws._req is not None else None
        if transport is not None and (not completed or not transport.is_closing()):
            transport.abort()


async def upgrade(request: web.Request) -> web.WebSocketResponse | None:
    """The WebSocket both endpoints open (heartbeat, no compression, bounded messages: DESIGN
    §7), prepared; None when the client was gone before the upgrade completed (the front door
    closed it, or it hung up): nothing to answer, and no traceback to log."""
    settings = request.app[keys.SETTINGS]
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_s,
        compress=False,
        max_msg_size=settings.ws_max_message_bytes,
    )
    try:
        await ws.prepare(request)
    except ConnectionError:
        return None
    request.app[keys.WEBSOCKETS].add(ws)
    return ws


def close_soon(
    app: web.Application, ws: web.WebSocketResponse, code: int, reason: str
) -> asyncio.Task[None]:
    """Close from outside the connection's own tasks (never awaits the client): a background
    task, kept referenced, bounded by `ws_close_timeout_s`."""
    task = asyncio.get_running_loop().create_task(
        close_with_deadline(ws, code, reason, app[keys.SETTINGS].ws_close_timeout_s)
    )
    app[keys.BACKGROUND].add(task)
    task.add_done_callback(app[keys.BACKGROUND].discard)
    return task


async def closed(task: asyncio.Task[None] | None) -> None:
    """Before a handler returns: let a close it started finish (bounded), else aiohttp drops
    the connection and the peer sees 1006 instead of the code it was sent."""
    if task is not None:
        with contextlib.suppress(Exception):
            await asyncio.shield(task)


async def authenticate(
    request: web.Request,
    ws: web.WebSocketResponse,
    role_problem: Callable[[Principal], str | None],
) -> Principal | None:
    """The first message must be `authenticate {token}` within the auth timeout. On any
    failure the client gets an `error` and close 4401 (do not retry), and None is returned.
    `role_problem` says why a valid token may not use this endpoint (or None)."""
    settings = request.app[keys.SETTINGS]
    deadline = settings.ws_close_timeout_s

    async def refuse(message: str) -> None:
        await ws.send_str(
            frame(
                "error",
                {"code": "unauthorized", "message": message},
                "msg_0",
                iso(request.app[keys.CLOCK].now()),
            )
        )
        await close_with_deadline(ws, CLOSE_AUTH_FAILED, message, deadline)

    try:
        # An absolute deadline: receive(timeout=) restarts on every ping or pong frame, so a
        # client pinging every second would never be asked for its token (DESIGN §7).
        async with asyncio.timeout(settings.ws_auth_timeout_s):
            msg = await ws.receive()
    except TimeoutError:
        await refuse(f"authenticate within {settings.ws_auth_timeout_s:g} s")
        return None
    if msg.type is not WSMsgType.TEXT:
        if msg.type not in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            await refuse("the first message must be authenticate {token}")
        return None
    try:
        first = strict_json.loads(msg.data)
    except ValueError:
        first = None
    is_authenticate = isinstance(first, dict) and first.get("type") == "authenticate"
    data = first.get("data") if is_authenticate else None
    token = data.get("token") if isinstance(data, dict) else None
    # On the local control socket the peer's uid stands in for a missing token (a token, when
    # sent, still wins), exactly as for a REST request without an Authorization header.
    cred = local.peer(request) if isinstance(data, dict) and token is None else None
    if not isinstance(token, str) and cred is None:
        await refuse('the first message must be {"type": "authenticate", "data": {"token": ...}}')
        return None
    try:
        if cred is not None:
            principal = await local.verify(request, cred)
        else:
            principal = await request.app[keys.AUTH].verify(token)
    except ApiError as err:
        await refuse(err.message)
        return None
    problem = role_problem(principal)
    if problem is not None:
        await refuse(problem)
        return None
    request[keys.PRINCIPAL] = principal  # the request log names who held the connection
    request.app[keys.GUARD].admit(request.protocol)  # no longer counts as unauthenticated
    return principal
