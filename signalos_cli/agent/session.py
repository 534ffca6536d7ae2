"""One connection of the agent to `/ws/agent`, from connect to close (see docs/agent.md).

The order of frames is the protocol: `authenticate` → `authenticated`, `hello` → `welcome`
(the daemon's mode, halt generation and clock, taken before anything of this connection
executes), our `agent_state`, a full `sync_snapshot`; then at the same time commands in (each
handed to the agent as it arrives) and the report queue out (`connection.write`). When the
connection ends, what only made sense on it is dropped (`Agent.end_connection`).

What the agent does with a command, a welcome or the clock lives in `runner.py`; the wire
details (frames, close codes) in `connection.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from signalos_cli.agent.broker import BrokerError
from signalos_cli.agent.connection import Lost, frame, receive, write
from signalos_cli.agent.journal import KEEP_EXECUTED
from signalosd import __version__

if TYPE_CHECKING:
    from signalos_cli.agent.runner import Agent

__all__ = ["Session"]

log = logging.getLogger("signalos.agent")


class Session:
    def __init__(self, agent: Agent, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.agent = agent
        self.ws = ws

    async def _send(self, type_: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(frame(type_, data, self.agent.now_iso()))

    async def _expect(self, type_: str) -> dict[str, Any]:
        """The next message of `type_` (its envelope: `data` and the `timestamp` it was sent
        at), handling what may come before it."""
        options = self.agent.options
        deadline = options.monotonic() + options.handshake_timeout
        while True:
            left = deadline - options.monotonic()
            if left <= 0:
                raise Lost(f"no {type_} from the daemon")
            msg = await receive(self.ws, left)
            if msg.get("type") == type_:
                return msg
            if msg.get("type") == "error":
                log.warning("event=daemon_error data=%r", msg.get("data"))
            elif msg.get("type") == "command":
                self.agent.on_command(msg.get("data"))

    async def run(self, url: str, token: str) -> None:
        """Returns normally never; raises on close."""
        agent = self.agent
        await self._send("authenticate", {"token": token})
        await self._expect("authenticated")
        try:
            info = await agent.call(agent.broker.account)
            login, server = info.login, info.server
        except BrokerError:
            login, server = None, None
        hello = {"agent_version": __version__, "broker": agent.broker.name,
                 "login": login, "server": server,
                 "journal_keep_s": KEEP_EXECUTED.total_seconds()}  # fmt: skip
        sent = agent.options.now()
        await self._send("hello", hello)
        envelope = await self._expect("welcome")
        agent.track_clock(envelope.get("timestamp"), sent)  # stamped as it was sent
        welcome = envelope["data"] if isinstance(envelope.get("data"), dict) else {}
        agent.adopt_welcome(welcome)
        await self._send("agent_state", agent.state_sent())
        async with agent.lock:
            updates, snap = await agent.call(agent.reporter.snapshot)
            agent.report(updates)
            await self._send("sync_snapshot", snap)
        agent.connected_to(url, welcome.get("session_id"))
        writer = asyncio.create_task(write(self.ws, agent.report_queue, agent.now_iso))
        try:
            while True:
                msg = await receive(self.ws, None)
                if msg.get("type") == "command":
                    agent.on_command(msg.get("data"))
                elif msg.get("type") == "error":
                    log.warning("event=daemon_error data=%r", msg.get("data"))
        finally:
            agent.disconnected()
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer
            agent.end_connection()
