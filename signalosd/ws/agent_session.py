"""/ws/agent: the desktop agent's session (protocol in docs/agent.md).

Sending: commands come from `Delivery`, control replies from the receive loop; every frame goes
through the session's bounded outbox and its single writer task. Receiving: each valid message
goes into an ordered inbox; one applier task applies everything waiting in one transaction
(group commit), each message under its own savepoint, in the order the agent sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from signalosd import keys, strict_json
from signalosd.auth.tokens import Principal
from signalosd.clock import iso
from signalosd.domain import account_history, agent_reports
from signalosd.live.bus import CONTROL, Outbox
from signalosd.models import DEFAULT_JOURNAL_KEEP_S, AccountStatus, AgentHello, CommandType
from signalosd.outbox import results
from signalosd.outbox.delivery import DELIVERY_ACTOR, Delivery
from signalosd.store import Tx
from signalosd.ws.agent_protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_REPLACED,
    ENVELOPE,
    REPORTS,
    receive_hello,
    record_connected,
    record_disconnected,
    role_problem,
)
from signalosd.ws.session import CLOSE_AUTH_FAILED, authenticate, close_soon, closed, frame, upgrade

log = logging.getLogger("signalosd.agent")


class AgentSession:
    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        principal: Principal,
        hello: AgentHello,
    ) -> None:
        self.app = request.app
        self.ws = ws
        self.id = secrets.token_hex(6)
        self.account_id = principal.account_id
        self.principal = principal
        self.hello = hello
        self.connected_at = iso(self.app[keys.CLOCK].now())
        self.actor = principal.actor("ws") | {"session": self.id}
        settings = self.app[keys.SETTINGS]
        self.outbox = Outbox(settings.ws_queue_max)
        self.inbox: deque[tuple[str, Any]] = deque()
        self._inbox_ready = asyncio.Event()
        # Backpressure: past this many waiting messages the receive loop stops reading, so an
        # agent that sends faster than we commit waits in TCP instead of in our memory.
        self._inbox_max = 2 * settings.agent_batch_max
        self._inbox_room = asyncio.Event()
        self._inbox_room.set()
        # How long the agent keeps the ids of commands it executed: nothing older is sent.
        self.journal_keep_s = hello.journal_keep_s or DEFAULT_JOURNAL_KEEP_S
        self.delivery = Delivery(
            self.account_id,
            self.app[keys.DB],
            self.app[keys.CLOCK],
            settings,
            self.app[keys.POLICY],
            self.send_command,
            DELIVERY_ACTOR,
            principal.token_id,
            self.journal_keep_s,
            self.revoke,
        )
        # Equity reported since the last applied status (the throttle drops most): a dip in
        # between still reaches the history's min/max (account_history.py).
        self.equity_seen = account_history.EquityRange()
        self.revoked = False  # the token was revoked: nothing more is sent or applied
        self._revoked_in_tx = False  # set on the writer thread by a batch that found it so
        self.closing = False
        self.close_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._msg_no = 0

    def describe(self) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "agent_version": self.hello.agent_version,
            "broker": self.hello.broker,
            "login": self.hello.login,
            "server": self.hello.server,
            "connected_at": self.connected_at,
        }

    # ---- outgoing -------------------------------------------------------------------------

    def _put(self, text: str, *, first: bool = False) -> None:
        if self.outbox.full:
            self.outbox.overflow()
            self.close(4008, "slow consumer: reconnect")
            return
        self.outbox.put(CONTROL, text, first=first)

    def send(self, type_: str, data: dict[str, Any]) -> None:
        self._msg_no += 1
        self._put(frame(type_, data, f"msg_{self._msg_no}", iso(self.app[keys.CLOCK].now())))

    def send_command(self, command: dict[str, Any]) -> None:
        """A command frame; an emergency stop goes ahead of every frame still waiting."""
        if self.revoked:
            return
        data = {
            k: command[k] for k in ("id", "type", "trade_id", "params", "expires_at", "halt_gen")
        }
        data["attempt"] = command["attempts"] + 1
        text = frame("command", data, command["id"], iso(self.app[keys.CLOCK].now()))
        self._put(text, first=command["type"] == CommandType.EMERGENCY_STOP.value)

    def revoke(self) -> None:
        """The session's token was revoked: apply nothing more it sent, send it nothing, close
        it with 4401 (the agent stops: do not retry with that token)."""
        if self.revoked:
            return
        self.revoked = True
        dropped = len(self.inbox)
        self.inbox.clear()
        self._inbox_room.set()
        log.warning(
            "event=agent_token_revoked account_id=%d session=%s token_id=%s dropped_messages=%d",
            self.account_id,
            self.id,
            self.principal.token_id,
            dropped,
        )
        self.close(CLOSE_AUTH_FAILED, "token revoked")

    async def writer(self) -> None:
        while True:
            for _, text in await self.outbox.take():
                await self.ws.send_str(text)

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.close_task = close_soon(self.app, self.ws, code, reason)

    # ---- incoming -------------------------------------------------------------------------

    def receive(self, raw: str) -> None:
        if self.revoked:
            return
        self.app[keys.AGENTS].seen(self.account_id)
        try:  # fast path: envelope and payload validated in one pass
            envelope = ENVELOPE.validate_json(raw)
        except ValidationError:
            self._receive_slowly(raw)  # a ping, or a bad message that deserves a precise error
            return
        self._accept(envelope.type, envelope.data)

    def _receive_slowly(self, raw: str) -> None:
        try:
            msg = strict_json.loads(raw, nan_for_models=True)  # the models refuse NaN
        except ValueError as exc:
            self.send("error", {"code": "invalid_json", "message": f"not valid JSON ({exc})"})
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.send(
                "error",
                {"code": "bad_message", "message": 'a message is {"type": ..., "data": {...}}'},
            )
            return
        kind, data = msg["type"], msg.get("data")
        if kind == "ping":
            self.send(
                "pong",
                {"timestamp": (data or {}).get("timestamp") if isinstance(data, dict) else None},
            )
            return
        model = REPORTS.get(kind)
        if model is None:
            self.send(
                "error",
                {
                    "code": "unknown_type",
                    "message": f"unknown message type "
                    f"{kind!r}; expected one of {', '.join(REPORTS)} or ping",
                },
            )
            return
        try:
            item = model.model_validate(data if data is not None else {})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
            self.send(
                "error",
                {
                    "code": "validation_error",
                    "ref": msg.get("id"),
                    "message": f"invalid {kind}: {where}: {first['msg']}",
                },
            )
            return
        self._accept(kind, item)

    def _accept(self, kind: str, item: Any) -> None:
        if isinstance(item, AccountStatus):
            status = item.model_dump()
            if not self.app[keys.AGENTS].status_event_due(self.account_id, status):
                self.equity_seen.see(item.equity)
                return  # kept for health; not worth an event yet
            item = (item, self.equity_seen.take(item.equity))
        self.inbox.append((kind, item))
        self._inbox_ready.set()
        if len(self.inbox) >= self._inbox_max:
            self._inbox_room.clear()

    async def room(self) -> None:
        """Wait while the inbox is full (the applier makes room, or ends)."""
        await self._inbox_room.wait()

    async def applier(self) -> None:
        """Apply what the agent sent, in order, many messages per durable commit.

        A batch that cannot be committed (the database locked past the busy timeout, the disk
        full…) ends the session with 1011: applying later messages would skip it. The agent
        reconnects, sends a snapshot and gets every unfinished command again (re-sending the
        results it stored), so nothing is lost for good."""
        db, limit = self.app[keys.DB], self.app[keys.SETTINGS].agent_batch_max
        try:
            while True:
                if not self.inbox:
                    if self._stopping:
                        return
                    self._inbox_ready.clear()
                    await self._inbox_ready.wait()
                    continue
                batch = [self.inbox.popleft() for _ in range(min(limit, len(self.inbox)))]
                if len(self.inbox) < self._inbox_max:
                    self._inbox_room.set()
                try:
                    await db.write(self._batch(batch))
                    if self._revoked_in_tx:
                        self.revoke()
                        return
                except Exception:
                    log.exception(
                        "event=agent_batch_failed account_id=%d session=%s messages=%d",
                        self.account_id,
                        self.id,
                        len(batch),
                    )
                    self.close(CLOSE_INTERNAL_ERROR, "could not store the agent's reports")
                    return
        finally:
            self._inbox_room.set()  # never leave the receive loop waiting on a stopped applier

    async def drain(self, applier: asyncio.Task[None], deadline: float) -> None:
        """Before the session ends: everything already received is applied (nothing the
        agent sent is lost because the connection dropped right after)."""
        self._stopping = True
        self._inbox_ready.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(deadline):
                await asyncio.shield(applier)

    def _batch(self, items: list[tuple[str, Any]]) -> Callable[[Tx], None]:
        return lambda tx: self._apply(tx, items)

    def _apply(self, tx: Tx, items: list[tuple[str, Any]]) -> None:
        # Checked in the batch's own transaction: nothing the agent sends after its token's
        # revocation committed (here or by `signalosd token revoke`) is applied.
        if not tx.token_active(self.principal.token_id):
            self._revoked_in_tx = True
            return
        try:
            with tx.savepoint():  # the common case: the whole batch applies cleanly
                for kind, item in items:
                    self._apply_one(tx, kind, item)
            return
        except Exception:
            pass  # one message is bad: redo them one by one, so that only it is skipped
        for kind, item in items:
            try:
                with tx.savepoint():
                    self._apply_one(tx, kind, item)
            except Exception:
                log.exception(
                    "event=agent_message_failed kind=%s account_id=%d session=%s",
                    kind,
                    self.account_id,
                    self.id,
                )

    def _apply_one(self, tx: Tx, kind: str, item: Any) -> None:
        account_id, actor = self.account_id, self.actor
        if kind == "ack":
            results.apply_ack(tx, account_id, item.messageId, actor)
        elif kind == "command_result":
            agent_reports.apply_result(tx, account_id, item, actor)
        elif kind == "trade_update":
            agent_reports.apply_position(tx, account_id, item, actor, adopted_by="trade_update")
        elif kind == "sync_snapshot":
            agent_reports.apply_snapshot(tx, account_id, item, actor)
            if item.account is not None:
                self._status(tx, item.account.model_dump())
        elif kind == "mt5_status_update":
            status, seen = item
            self._status(tx, status.model_dump(), seen)
        elif kind == "agent_state":
            agent_reports.apply_agent_state(tx, account_id, item, actor)

    def _status(
        self, tx: Tx, status: dict[str, Any], seen: tuple[float, float] | None = None
    ) -> None:
        tx.save_agent_status(
            self.account_id, {"mt5": status, "mt5_at": tx.now, "last_seen": tx.now}
        )
        tx.append_event(self.account_id, "mt5_status_update", status, self.actor)
        interval = self.app[keys.SETTINGS].account_history_interval_s
        account_history.record(tx, self.account_id, status, interval, seen)


async def agent_stream(request: web.Request) -> web.StreamResponse:
    app, settings = request.app, request.app[keys.SETTINGS]
    ws = await upgrade(request)
    if ws is None:
        return web.Response(status=400)  # never sent: the client is gone
    principal = await authenticate(request, ws, role_problem)
    if principal is None:
        return ws
    await ws.send_str(
        frame(
            "authenticated",
            {"account": principal.account, "role": "agent", "token_id": principal.token_id},
            "msg_0",
            iso(app[keys.CLOCK].now()),
        )
    )
    hello = await receive_hello(ws, settings.ws_auth_timeout_s)
    if hello is None:
        return ws
    session = AgentSession(request, ws, principal, hello)
    hub, db = app[keys.AGENTS], app[keys.DB]
    previous = hub.session(principal.account_id)
    state = await db.write(
        lambda tx: record_connected(tx, session, previous.id if previous else None)
    )
    # `welcome` carries the daemon's mode and halt generation, and is the session's first
    # frame: the session joins the hub (which sends it emergency stops straight from their
    # commit) only now, in the same step, so no command can overtake the state it describes.
    session.send(
        "welcome",
        {
            "session_id": session.id,
            "ack_timeout_s": settings.ack_timeout_s,
            "mode": state["mode"],
            "halt_gen": state["halt_gen"],
        },
    )
    old = hub.attach(session)
    if old is not None:
        old.close(CLOSE_REPLACED, "replaced by a newer agent session for this account")
    log.info(
        "event=agent_connected account=%s session=%s broker=%s version=%s",
        principal.account,
        session.id,
        hello.broker,
        hello.agent_version,
    )
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(session.writer()),
        loop.create_task(session.applier()),
        loop.create_task(session.delivery.run()),
    ]
    reason = "connection closed"
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                session.receive(msg.data)
                await session.room()
            elif msg.type is WSMsgType.BINARY:
                session.send("error", {"code": "bad_message", "message": "send JSON text"})
        reason = f"closed with {ws.close_code}"
    finally:
        tasks[2].cancel()
        await session.drain(tasks[1], settings.shutdown_timeout_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        current = hub.detach(session)
        if not current:
            reason = "replaced by a newer session"
        await db.write(lambda tx: record_disconnected(tx, session, reason, current))
        await closed(session.close_task)
        log.info(
            "event=agent_disconnected account=%s session=%s reason=%r",
            principal.account,
            session.id,
            reason,
        )
    return ws
