"""The WebSocket handshakes' deadlines are absolute: `authenticate` on /ws and /ws/agent, and the
agent's `hello`, must come within `ws_auth_timeout_s` of the upgrade, and no frame the client
sends in the meantime (ping, pong) moves that deadline (DESIGN §7: aiohttp's
`receive(timeout=)` restarts its timeout on every control frame)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from tests.stream_client import start_daemon

AUTH_TIMEOUT_S = 0.5
FRAME_EVERY_S = 0.1
WITHIN = 5.0  # ten times the deadline: the old code never closed at all


@contextlib.asynccontextmanager
async def frames_every(ws: ClientWebSocketResponse, kind: str) -> AsyncIterator[None]:
    """Send a ping (or an unsolicited pong) frame every FRAME_EVERY_S while the block runs."""

    async def keep_sending() -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed:
                await (ws.ping() if kind == "ping" else ws.pong())
                await asyncio.sleep(FRAME_EVERY_S)

    task = asyncio.get_running_loop().create_task(keep_sending())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def text_then_close(ws: ClientWebSocketResponse) -> tuple[list[dict], int | None]:
    """The text messages up to the end of the connection, and its close code. The bound is an
    absolute deadline too: the client's own receive(timeout=) restarts on the server's pongs."""
    texts = []
    async with asyncio.timeout(WITHIN):
        while (msg := await ws.receive()).type is WSMsgType.TEXT:
            texts.append(json.loads(msg.data))
    return texts, ws.close_code


@pytest.mark.parametrize("kind", ["ping", "pong"])
async def test_control_frames_do_not_extend_the_authenticate_deadline(
    aiohttp_client, tmp_path, clock, kind
):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_auth_timeout_s=AUTH_TIMEOUT_S)
    ws = await daemon.client.ws_connect("/ws", autoping=True)
    async with frames_every(ws, kind):
        try:
            texts, code = await text_then_close(ws)
        except TimeoutError:
            pytest.fail(f"a client sending {kind} frames was never asked for its token")
    assert code == 4401
    (error,) = texts
    assert error["data"]["code"] == "unauthorized" and "0.5 s" in error["data"]["message"]


async def test_pings_do_not_extend_the_agent_authenticate_deadline(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_auth_timeout_s=AUTH_TIMEOUT_S)
    ws = await daemon.client.ws_connect("/ws/agent")
    async with frames_every(ws, "ping"):
        try:
            texts, code = await text_then_close(ws)
        except TimeoutError:
            pytest.fail("an agent sending pings was never asked for its token")
    assert code == 4401 and texts[0]["data"]["code"] == "unauthorized"


async def test_pings_do_not_extend_the_agent_hello_deadline(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_auth_timeout_s=AUTH_TIMEOUT_S)
    token = await daemon.token("agent")
    ws = await daemon.client.ws_connect("/ws/agent")
    await ws.send_json({"type": "authenticate", "data": {"token": token}})
    async with frames_every(ws, "ping"):
        try:
            texts, code = await text_then_close(ws)
        except TimeoutError:
            pytest.fail("an agent sending pings but no hello was never closed")
    assert texts[0]["type"] == "authenticated"
    assert code == 1008
    assert texts[-1]["data"]["code"] == "bad_hello" and "0.5 s" in texts[-1]["data"]["message"]
