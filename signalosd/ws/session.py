"""What /ws and /ws/agent share: the envelope, the authenticate handshake, the session base
(its bounded queue of frames, closing from outside, the envelope checks, the receive loop) and
the handler's set-up around it.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from signalosd import keys, strict_json
from signalosd.auth import local
from signalosd.auth.tokens import Principal
from signalosd.clock import iso
from signalosd.errors import ApiError
from signalosd.live.bus import CONTROL, ClientQueue
from signalosd.models import CloseCode


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
        await close_with_deadline(ws, CloseCode.AUTH_FAILED, message, deadline)

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


class Session(ABC):
    """One authenticated WebSocket connection: every frame it is sent goes through its bounded
    queue to its single writer task (so a slow client only hurts itself, invariant 6), and it is
    closed from outside its own tasks, once. Each endpoint keeps its own wording of the envelope
    errors (clients read them)."""

    INVALID_JSON: ClassVar[str]  # "{exc}" stands for the parser's complaint
    BAD_MESSAGE: ClassVar[str]
    BINARY: ClassVar[str]
    NAN_FOR_MODELS: ClassVar[bool] = False

    def __init__(
        self, app: web.Application, ws: web.WebSocketResponse, principal: Principal
    ) -> None:
        self.app = app
        self.ws = ws
        self.principal = principal
        self.queue = ClientQueue(app[keys.SETTINGS].ws_queue_max)
        self.closing = False
        self.close_task: asyncio.Task[None] | None = None
        self._msg_no = 0

    # ---- outgoing -------------------------------------------------------------------------

    def control(self, type_: str, data: dict[str, Any]) -> str:
        """A frame that is not an event (pong, error, reset, ...), numbered `msg_N`."""
        self._msg_no += 1
        return frame(type_, data, f"msg_{self._msg_no}", iso(self.app[keys.CLOCK].now()))

    def put(self, seq: int, text: str, *, first: bool = False) -> None:
        """Queue a frame for the writer; a full queue means the client fell behind."""
        if self.queue.full:
            self.fell_behind()
            return
        self.queue.put(seq, text, first=first)

    @abstractmethod
    def fell_behind(self) -> None:
        """The queue is full: give up on the client (each endpoint says how)."""

    def send(self, type_: str, data: dict[str, Any]) -> None:
        self.put(CONTROL, self.control(type_, data))

    def error(self, code: str, message: str) -> None:
        self.send("error", {"code": code, "message": message})

    def close(self, code: int, reason: str) -> None:
        """Close from outside the connection's own tasks (never awaits the client)."""
        if self.closing:
            return
        self.closing = True
        self.close_task = close_soon(self.app, self.ws, code, reason)

    # ---- incoming -------------------------------------------------------------------------

    async def read(self) -> None:
        """Hand each text message to `receive`, in order, until the connection closes."""
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                self.receive(msg.data)
                await self.room()
            elif msg.type is WSMsgType.BINARY:
                self.error("bad_message", self.BINARY)

    @abstractmethod
    def receive(self, raw: str) -> None:
        """One text message from the client (never awaits: see `room`)."""

    async def room(self) -> None:
        """Wait before reading on while what was received is still being worked off."""
        return None  # by default nothing is: /ws handles each message as it comes

    def envelope(self, raw: str) -> dict[str, Any] | None:
        """The message as `{"type": str, ...}`, or None once the client was told what is wrong."""
        try:
            msg = strict_json.loads(raw, nan_for_models=self.NAN_FOR_MODELS)
        except ValueError as exc:
            self.error("invalid_json", self.INVALID_JSON.format(exc=exc))
            return None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.error("bad_message", self.BAD_MESSAGE)
            return None
        return msg


async def serve(
    request: web.Request,
    role_problem: Callable[[Principal], str | None],
    run: Callable[[web.Request, web.WebSocketResponse, Principal], Awaitable[None]],
) -> web.StreamResponse:
    """An endpoint's handler: upgrade, authenticate, then `run` the session."""
    ws = await upgrade(request)
    if ws is None:
        return web.Response(status=400)  # never sent: the client is gone
    principal = await authenticate(request, ws, role_problem)
    if principal is not None:
        await run(request, ws, principal)
    return ws
