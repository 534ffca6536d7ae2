"""/ws/agent: the desktop agent's session (protocol in docs/agent.md).

Sending: commands come from the session's `Delivery` (which app.py makes), control replies
from the receive loop; every frame goes through the session's bounded queue and its single
writer task. Receiving: each valid message goes into the ordered inbox that `agent_inbox.py`
applies by group commit.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import ValidationError

from signalosd import keys
from signalosd.auth.tokens import Principal
from signalosd.clock import iso
from signalosd.domain import account_history
from signalosd.live.bus import CONTROL
from signalosd.models import (
    DEFAULT_JOURNAL_KEEP_S,
    AccountStatus,
    AgentHello,
    CloseCode,
    CommandType,
    Source,
)
from signalosd.outbox.delivery import Delivery
from signalosd.store import EventRecord
from signalosd.ws.agent_inbox import AgentInbox
from signalosd.ws.agent_protocol import (
    ENVELOPE,
    REPORTS,
    command_frame,
    queued_stop,
    receive_hello,
    record_connected,
    record_disconnected,
    role_problem,
)
from signalosd.ws.session import Session, closed, frame, serve

log = logging.getLogger("signalosd.agent")


class DeliveryFactory(Protocol):
    """Makes a session's `Delivery` (app.py binds the database, clock, settings and policy)."""

    def __call__(
        self,
        account_id: int,
        send: Callable[[dict[str, Any]], None],
        token_id: str,
        journal_keep_s: float,
        on_revoked: Callable[[], None],
    ) -> Delivery: ...


class AgentSession(Session):
    """One authenticated /ws/agent connection: the account's agent, once its `hello` is in."""

    INVALID_JSON = "not valid JSON ({exc})"
    BAD_MESSAGE = 'a message is {"type": ..., "data": {...}}'
    BINARY = "send JSON text"
    NAN_FOR_MODELS = True  # the models refuse NaN, naming the field

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        principal: Principal,
        hello: AgentHello,
        deliveries: DeliveryFactory,
    ) -> None:
        super().__init__(request.app, ws, principal)
        self.id = secrets.token_hex(6)
        self.account_id = principal.account_id
        self.hello = hello
        self.connected_at = iso(self.app[keys.CLOCK].now())
        self.actor = principal.actor(Source.WS) | {"session": self.id}
        settings = self.app[keys.SETTINGS]
        self.inbox = AgentInbox(
            self.app[keys.DB],
            account_id=self.account_id,
            session_id=self.id,
            token_id=principal.token_id,
            actor=self.actor,
            batch_max=settings.agent_batch_max,
            history_interval_s=settings.account_history_interval_s,
            on_revoked=self.revoke,
            on_failed=lambda: self.close(
                CloseCode.INTERNAL_ERROR, "could not store the agent's reports"
            ),
            policy=self.app[keys.POLICY],
            on_guarded=self.app[keys.RISK].committed,
        )
        # How long the agent keeps the ids of commands it executed: nothing older is sent.
        self.journal_keep_s = hello.journal_keep_s or DEFAULT_JOURNAL_KEEP_S
        self.delivery = deliveries(
            self.account_id,
            self.send_command,
            principal.token_id,
            self.journal_keep_s,
            self.revoke,
        )
        # Equity reported since the last applied status (the throttle drops most): a dip in
        # between still reaches the history's min/max (account_history.py).
        self.equity_seen = account_history.EquityRange()
        self.revoked = False  # the token was revoked: nothing more is sent or applied

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

    def fell_behind(self) -> None:
        self.queue.overflow()
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect")

    def send_command(self, command: dict[str, Any]) -> None:
        """A command frame; an emergency stop goes ahead of every frame still waiting."""
        if self.revoked:
            return
        text = command_frame(command, iso(self.app[keys.CLOCK].now()))
        self.put(CONTROL, text, first=command["type"] == CommandType.EMERGENCY_STOP.value)

    def command_queued(self, event: EventRecord) -> None:
        """A command was queued for the account (the hub tells at its commit): the delivery
        runs a round now, and an emergency stop is sent straight from its event, without
        waiting for that round's read."""
        stop = queued_stop(event)
        if stop is not None:
            self.delivery.send_now(stop)
        self.delivery.wake()

    def revoke(self) -> None:
        """The session's token was revoked: apply nothing more it sent, send it nothing, close
        it with 4401 (the agent stops: do not retry with that token)."""
        if self.revoked:
            return
        self.revoked = True
        dropped = self.inbox.clear()
        log.warning(
            "event=agent_token_revoked account_id=%d session=%s token_id=%s dropped_messages=%d",
            self.account_id,
            self.id,
            self.principal.token_id,
            dropped,
        )
        self.close(CloseCode.AUTH_FAILED, "token revoked")

    async def writer(self) -> None:
        while True:
            for _, text in await self.queue.take():
                await self.ws.send_str(text)

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
        msg = self.envelope(raw)
        if msg is None:
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
            self.error(
                "unknown_type",
                f"unknown message type {kind!r}; expected one of {', '.join(REPORTS)} or ping",
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
            # Every status is judged by the risk guard's watch; one that changes anything for
            # the guard is applied now, past the throttle (live/risk_watch.py).
            urgent = self.app[keys.RISK].must_apply(
                self.account_id, item.balance, item.equity, self.app[keys.CLOCK].now()
            )
            due = self.app[keys.AGENTS].status_event_due(self.account_id, status)
            if not (due or urgent):
                self.equity_seen.see(item.equity)
                return  # kept for health; not worth an event yet
            item = (item, self.equity_seen.take(item.equity))
        self.inbox.append(kind, item)

    async def room(self) -> None:
        await self.inbox.room()


async def agent_stream(request: web.Request) -> web.StreamResponse:
    return await serve(request, role_problem, _run)


async def _run(request: web.Request, ws: web.WebSocketResponse, principal: Principal) -> None:
    app, settings = request.app, request.app[keys.SETTINGS]
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
        return
    session = AgentSession(request, ws, principal, hello, app[keys.DELIVERIES])
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
        old.close(CloseCode.REPLACED, "replaced by a newer agent session for this account")
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
        loop.create_task(session.inbox.applier()),
        loop.create_task(session.delivery.run()),
    ]
    reason = "connection closed"
    try:
        await session.read()
        reason = f"closed with {ws.close_code}"
    finally:
        tasks[2].cancel()
        await session.inbox.drain(tasks[1], settings.shutdown_timeout_s)
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
