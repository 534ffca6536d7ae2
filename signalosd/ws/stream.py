"""/ws: the event stream for dashboards and `signalos tail`.

Protocol: the first message must be `authenticate {token}` within the auth timeout (else close
4401). `subscribe {since?, types?}` replays the log after `since` and then goes live with no gap
and no duplicate; without `since` it is live only. Every outgoing frame goes through the
connection's bounded queue and its single writer task, so a slow client only hurts itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from signalosd import keys
from signalosd.auth.tokens import Principal
from signalosd.clock import iso
from signalosd.domain.event_log import ReplayStep, replay_step
from signalosd.live.bus import CONTROL, Subscription
from signalosd.models import CloseCode, Role, type_filter
from signalosd.store import Tx
from signalosd.ws.session import Session, closed, serve

log = logging.getLogger("signalosd.ws.stream")

REPLAY_PAGE = 1000
_SUBSCRIBE = -1  # queue marker: run the replay in the writer task


class SubscribeData(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    since: int | None = Field(default=None, ge=0)
    # Checked by type_filter.parse (count, length, characters), which names a bad filter.
    types: list[str] | None = None


class StreamSession(Session):
    """One authenticated /ws connection."""

    INVALID_JSON = "message is not valid JSON ({exc}); send a JSON object"
    BAD_MESSAGE = 'a message is a JSON object {"type": ..., "data": {...}}'
    BINARY = "send JSON text frames, not binary"

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, principal: Principal):
        super().__init__(request.app, ws, principal)
        self.account_ids = None if principal.role is Role.ADMIN else [principal.account_id]
        # Registered with the bus only once the replay has caught up (see _replay_then_live).
        self.subscription = Subscription(
            frozenset(self.account_ids) if self.account_ids is not None else None,
            None,
            self.queue,
            self.close_slow,
        )
        self.subscribe_params: SubscribeData | None = None
        self.floor = 0  # events with seq <= floor were already sent (or skipped by the replay)
        self.last_sent = 0

    # ---- outgoing -------------------------------------------------------------------------

    def fell_behind(self) -> None:
        # A frame of our own found the queue full (e.g. a ping flood from a client that does
        # not read): the bus drops the client as it would for events (once, 4008).
        self.app[keys.BUS].drop_slow(self.subscription)

    async def writer(self) -> None:
        ws = self.ws
        while True:
            for seq, text in await self.queue.take():
                if seq == _SUBSCRIBE:
                    await self._replay_then_live()
                elif seq == CONTROL:
                    await ws.send_str(text)
                elif seq > self.floor:
                    # Counted before the await: send_str hands the frame to the transport and
                    # only then waits for the socket to drain, so a 4008 decided meanwhile
                    # names the last seq the client gets (resuming from it: no duplicate).
                    self.floor = self.last_sent = seq
                    await ws.send_str(text)

    async def _replay_then_live(self) -> None:
        params = self.subscribe_params
        assert params is not None
        db, bus = self.app[keys.DB], self.app[keys.BUS]
        ids = self.account_ids
        if params.since is None:
            self.floor = bus.published_seq
            self._go_live()
            return

        # Every step is one bounded read on the scan lane (at most `heavy_reads_per_token` at
        # once per token): a replay of a huge log never holds a reader for long, and a token
        # check or an emergency stop never waits behind it.
        types, scan_max = self.subscription.matches, self.app[keys.SETTINGS].scan_max_rows

        def step_after(after: int) -> Callable[[Tx], ReplayStep]:
            return lambda tx: replay_step(tx, ids, after, REPLAY_PAGE, types, scan_max)

        cursor = params.since
        while True:
            reset, page, cursor_next = await db.scan(
                step_after(cursor), owner=self.principal.token_id
            )
            if reset is not None:
                await self.ws.send_str(self.control("reset", reset))
            for event in page:
                self.last_sent = event.seq  # before the await, as in writer()
                await self.ws.send_str(event.message())
            cursor = cursor_next
            # Caught up when the last read reached the log's head and nothing newer has been
            # published since: registering now (no await in between) cannot miss an event,
            # and anything published that the read already returned is skipped by `floor`.
            # A read that stopped at its scan bound returns a cursor below the head: go on.
            if reset is None and len(page) < REPLAY_PAGE and cursor >= bus.published_seq:
                self.floor = max(cursor, self.last_sent)
                self._go_live()
                return

    def _go_live(self) -> None:
        if not self.closing:
            self.app[keys.BUS].subscribe(self.subscription)

    def close_slow(self) -> None:
        """The client fell behind: drop it with 4008; it resumes from the last seq it got."""
        log.warning(
            "event=ws_slow_consumer token_id=%s last_seq=%d",
            self.principal.token_id,
            self.last_sent,
        )
        self.close(CloseCode.SLOW_CONSUMER, f"slow consumer: resume from seq {self.last_sent}")

    def close(self, code: int, reason: str) -> None:
        self.app[keys.BUS].unsubscribe(self.subscription)  # nothing more is queued for it
        super().close(code, reason)

    # ---- incoming -------------------------------------------------------------------------

    def receive(self, raw: str) -> None:
        msg = self.envelope(raw)
        if msg is None:
            return
        data = msg.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error("bad_message", "'data' must be a JSON object")
            return
        kind = msg["type"]
        if kind == "ping":
            self.send(
                "pong",
                {
                    "timestamp": data.get("timestamp"),
                    "server_time": iso(self.app[keys.CLOCK].now()),
                },
            )
        elif kind == "ack":
            pass  # accepted for the seed's clients; delivery is tracked by seq, not by ack
        elif kind == "subscribe":
            self._subscribe(data)
        elif kind == "authenticate":
            self.error("already_authenticated", "this connection is already authenticated")
        else:
            self.error(
                "unknown_type", f"unknown message type {kind!r}; expected subscribe, ping or ack"
            )

    def _subscribe(self, data: dict[str, Any]) -> None:
        if self.subscribe_params is not None:
            self.error(
                "already_subscribed",
                "this connection is already subscribed; reconnect to change the filter",
            )
            return
        try:
            params = SubscribeData.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            self.error("validation_error", f"invalid subscribe: {field}: {first['msg']}")
            return
        try:
            matches = type_filter.parse(params.types)
        except type_filter.FilterError as exc:
            self.error("validation_error", f"invalid subscribe: types: {exc}")
            return
        self.subscribe_params = params
        self.subscription.matches = matches
        self.put(_SUBSCRIBE, "")


def _stream_role_problem(principal: Principal) -> str | None:
    if principal.role is Role.AGENT:
        return "agent tokens are for /ws/agent; use a viewer, operator or admin token here"
    if principal.role is Role.METRICS:
        return "metrics tokens may only read /metrics; use a viewer, operator or admin token here"
    return None


def _watch_writer(session: StreamSession, writer: asyncio.Task[None]) -> None:
    """A writer that dies of anything but the peer going away must not leave a silent stream:
    log it and close with 1011 naming the seq to resume from."""

    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None or isinstance(exc, ConnectionError) or session.ws.closed:
            return
        log.error(
            "event=ws_writer_failed token_id=%s last_seq=%d error=%r",
            session.principal.token_id,
            session.last_sent,
            exc,
        )
        session.close(
            CloseCode.INTERNAL_ERROR, f"internal error: resume from seq {session.last_sent}"
        )

    writer.add_done_callback(done)


async def stream(request: web.Request) -> web.StreamResponse:
    return await serve(request, _stream_role_problem, _run)


async def _run(request: web.Request, ws: web.WebSocketResponse, principal: Principal) -> None:
    session = StreamSession(request, ws, principal)
    streams = request.app[keys.STREAMS]
    streams.setdefault(principal.token_id, set()).add(session)
    session.send(
        "authenticated",
        {
            "account": principal.account,
            "role": principal.role.value,
            "token_id": principal.token_id,
            "last_seq": request.app[keys.BUS].published_seq,
        },
    )
    writer = asyncio.get_running_loop().create_task(session.writer())
    _watch_writer(session, writer)
    try:
        await session.read()
    finally:
        request.app[keys.BUS].unsubscribe(session.subscription)
        mine = streams.get(principal.token_id)
        if mine is not None:
            mine.discard(session)
            if not mine:
                del streams[principal.token_id]
        writer.cancel()
        try:
            await writer
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception as exc:  # already logged by _watch_writer when it mattered
            log.debug("event=ws_writer_stopped error=%r", exc)
        await closed(session.close_task)
