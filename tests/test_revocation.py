"""Revocation is immediate everywhere (issue 9 §4): revoking a token closes every session
that used it, /ws and /ws/agent, with 4401, wherever the revoke was issued, and nothing the
revoked agent says afterwards is believed."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiohttp import WSMsgType

from signalosd.auth import accounts
from signalosd.clock import SystemClock
from signalosd.models import Role
from signalosd.store.open import sync_transaction
from tests.conftest import Harness
from tests.daemon_process import clean_env
from tests.fake_agent import WireAgent, connect_agent
from tests.fault_injection import command_of
from tests.stream_client import open_stream


async def _agent_token(daemon: Harness) -> dict[str, Any]:
    return dict(
        await daemon.db.write(
            lambda tx: accounts.create_token(
                tx, "default", Role.AGENT, "desk", accounts.local_actor()
            )
        )
    )


async def _closed_with(ws: Any, within: float = 3.0) -> int | None:
    """The code of the server's close frame (frames before it are skipped)."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                return None


async def test_signalosd_token_revoke_on_a_running_daemon_closes_the_agent_and_the_stream(
    daemon: Harness,
) -> None:
    """The revoke comes from another process, on the database file: the daemon notices it
    within `external_poll_interval_s` and closes both sessions with 4401."""
    made = await _agent_token(daemon)
    agent = await connect_agent(daemon, made["token"])
    viewer = await daemon.db.write(
        lambda tx: accounts.create_token(tx, "default", Role.VIEWER, "wall", accounts.local_actor())
    )
    async with open_stream(daemon, viewer["token"]) as stream:
        await stream.subscribe()
        await stream.sync()
        for token_id in (made["id"], viewer["id"]):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "signalosd", "token", "--state-dir",
                str(daemon.settings.state_dir), "revoke", token_id,
                env=clean_env(), stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, stderr = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, stderr
        assert await _closed_with(agent.ws) == 4401
        assert await _closed_with(stream.ws) == 4401
    assert daemon.settings.external_poll_interval_s <= 0.5  # noticed "within a second"


async def test_nothing_a_revoked_agent_reports_is_applied(daemon: Harness) -> None:
    """The bug report: a revoked agent session reported an operator's close_all stop as
    succeeded while the position stayed open. A report that arrives after the revocation
    committed (even before the daemon's next poll notices it) changes nothing."""
    made = await _agent_token(daemon)
    agent = await connect_agent(daemon, made["token"])
    _, stop = await daemon.request(
        "POST", "/api/trading/emergency-stop", daemon.admin, json={"close_all": True}
    )
    command = await agent.command()
    # Revoked by another connection to the database file, as `signalosd token revoke` does.
    with sync_transaction(daemon.settings, SystemClock()) as tx:
        accounts.revoke_token(tx, made["id"], accounts.local_actor())
    await agent.result(command["id"], data={"mode": "halted", "closed": [], "failed": []})

    assert await _closed_with(agent.ws) == 4401
    after = await command_of(daemon, stop["command"]["id"])
    assert after["status"] in ("sent", "acked"), after  # still waiting for a real agent
    assert "command_succeeded" not in [e["type"] for e in await daemon.events()]


async def test_a_revoked_agent_session_is_sent_nothing_more(daemon: Harness) -> None:
    made = await _agent_token(daemon)
    agent = await connect_agent(daemon, made["token"])
    await agent.sync()
    await daemon.db.write(lambda tx: accounts.revoke_token(tx, made["id"], accounts.local_actor()))
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)

    frames = []
    async with asyncio.timeout(3):
        while (msg := await agent.ws.receive()).type is WSMsgType.TEXT:
            frames.append(msg.data)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4401)
    assert not [f for f in frames if '"type":"command"' in f]
    # The next agent, with a valid token, gets the stop.
    fresh = await connect_agent(daemon, await daemon.token("agent"))
    assert (await fresh.command())["type"] == "emergency_stop"


async def test_a_revoked_token_cannot_open_a_new_agent_session(daemon: Harness) -> None:
    made = await _agent_token(daemon)
    await daemon.db.write(lambda tx: accounts.revoke_token(tx, made["id"], accounts.local_actor()))
    ws = await daemon.client.ws_connect("/ws/agent")
    agent = WireAgent(ws)
    await agent.send("authenticate", {"token": made["token"]})
    error = await agent.recv()
    assert error["type"] == "error" and "revoked" in error["data"]["message"]
    assert await _closed_with(ws) == 4401
