"""The /ws/agent protocol's fixed parts: what an agent may send (validated in one pass), who
may connect, the `hello` handshake, the `command` frame, and the records of a session's start
and end.

The session itself (sending, receiving) is `agent_session.py`; applying what the agent sent,
by group commit, is `agent_inbox.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from signalosd import strict_json
from signalosd.auth.tokens import Principal
from signalosd.models import (
    AccountStatus,
    AgentAck,
    AgentHello,
    AgentState,
    CloseCode,
    CommandResult,
    CommandType,
    EventType,
    Role,
    SyncSnapshot,
    TradeUpdate,
)
from signalosd.store import EventRecord, Tx
from signalosd.ws.session import frame

if TYPE_CHECKING:
    from signalosd.ws.agent_session import AgentSession

REPORTS: dict[str, type[BaseModel]] = {
    "ack": AgentAck,
    "command_result": CommandResult,
    "trade_update": TradeUpdate,
    "mt5_status_update": AccountStatus,
    "sync_snapshot": SyncSnapshot,
    "agent_state": AgentState,
}
# One discriminated union of {"type": kind, "data": model} envelopes: validating a raw frame
# in one pass costs about half of json.loads followed by model_validate.
ENVELOPE: TypeAdapter[Any] = TypeAdapter(
    Annotated[
        Union[  # noqa: UP007 - a tuple of runtime-built models
            tuple(
                create_model(
                    f"{kind}_message",
                    __config__=ConfigDict(extra="ignore"),
                    type=(Literal[kind], ...),  # type: ignore[arg-type]
                    data=(model, ...),
                )
                for kind, model in REPORTS.items()
            )
        ],
        Field(discriminator="type"),
    ]
)


# What a `command` frame's data carries of the command, besides `attempt` (docs/agent.md).
COMMAND_FIELDS = ("id", "type", "trade_id", "params", "expires_at", "halt_gen")


def command_frame(command: Mapping[str, Any], ts: str) -> str:
    """The `command` frame for a command as stored (`attempts`: how often it was sent before)."""
    data = {k: command[k] for k in COMMAND_FIELDS}
    data["attempt"] = command["attempts"] + 1
    return frame("command", data, command["id"], ts)


def queued_stop(event: EventRecord) -> dict[str, Any] | None:
    """The emergency stop a `command_queued` event queued, shaped as stored and never sent yet
    (it goes out straight from its commit, in the same frame as from a read); None for any other
    command. Only a stop's data is parsed: the text test is cheap, the type is sure."""
    if CommandType.EMERGENCY_STOP.value not in event.data_json:
        return None
    data = json.loads(event.data_json)
    if data["type"] != CommandType.EMERGENCY_STOP.value:
        return None
    return {
        "id": data["command_id"],
        "type": data["type"],
        "trade_id": data["trade_id"],
        "params": data["params"],
        "expires_at": None,  # a stop has no deadline (invariant 10)
        "halt_gen": data["halt_gen"],
        "attempts": 0,
    }


def role_problem(principal: Principal) -> str | None:
    if principal.role is not Role.AGENT:
        return (
            f"/ws/agent takes an agent token; {principal.token_id} is {principal.role.value}"
            " (create one with 'signalosd token create --role agent')"
        )
    return None


async def receive_hello(ws: web.WebSocketResponse, within: float) -> AgentHello | None:
    try:
        async with asyncio.timeout(within):  # absolute: pings do not extend it (DESIGN §7)
            msg = await ws.receive()
        body = strict_json.loads(msg.data) if msg.type is WSMsgType.TEXT else None
        if isinstance(body, dict) and body.get("type") == "hello":
            return AgentHello.model_validate(body.get("data") or {})
        problem = 'the second message must be {"type": "hello", "data": {...}}'
    except TimeoutError:
        problem = f"send hello within {within:g} s"
    except (ValueError, ValidationError) as exc:
        problem = f"invalid hello: {exc}"
    if not ws.closed:
        await ws.send_str(
            strict_json.dumps(
                {"type": "error", "data": {"code": "bad_hello", "message": problem[:500]}}
            )
        )
        await ws.close(code=CloseCode.POLICY, message=problem.encode()[:120])
    return None


def record_connected(tx: Tx, session: AgentSession, replaced: str | None) -> dict[str, Any]:
    """Record the new session; return the account's trading state for its `welcome` (read in
    the same transaction, so nothing committed later can be older than what welcome says)."""
    info = session.describe()
    tx.save_agent_status(
        session.account_id,
        {
            "session_id": session.id,
            "connected": 1,
            "connected_at": tx.now,
            "last_seen": tx.now,
            "agent_version": info["agent_version"],
            "broker": info["broker"],
            "login": None if info["login"] is None else str(info["login"]),
            "server": info["server"],
            "journal_keep_s": session.journal_keep_s,
        },
    )
    tx.append_event(
        session.account_id, EventType.AGENT_CONNECTED, info | {"replaced": replaced}, session.actor
    )
    return tx.get_state(session.account_id)


def record_disconnected(tx: Tx, session: AgentSession, reason: str, current: bool) -> None:
    stored = tx.agent_status(session.account_id) or {}
    # Only if no newer session was recorded meanwhile (a session joins the hub only after its
    # own record, so `current` alone cannot tell).
    if current and stored.get("session_id") == session.id:
        tx.save_agent_status(session.account_id, {"connected": 0, "last_seen": tx.now})
    tx.append_event(
        session.account_id,
        EventType.AGENT_DISCONNECTED,
        {"session_id": session.id, "reason": reason},
        session.actor,
    )
