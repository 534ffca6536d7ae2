"""The daemon as an operator runs it: a real process, real sockets, real signals.

Every test starts `python -m signalosd --port 0` and reads the port from the
`event=listening url=http://127.0.0.1:PORT` log line. Every wait is bounded, and every process is
killed in the fixture's teardown whatever happens.
"""

from __future__ import annotations

import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from tests.daemon_process import (
    Daemon,
    PendingRequest,
    call,
    daemon_pool,
    events,
    insert_open_trade,
    open_ws,
)


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    with daemon_pool() as start:
        yield start


# ---- first start -----------------------------------------------------------------------------


async def test_first_start_writes_a_private_admin_token_and_never_logs_it(
    tmp_path: Path, daemons: Any
) -> None:
    state = tmp_path / "state"  # does not exist yet: the daemon creates it
    d = daemons(state)
    path = d.admin_token_path
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The database holds token hashes and the trade history: private too.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("signalos.db", "signalos.db-wal"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    token = d.admin
    assert token.startswith("sos_") and len(token) > 30
    assert f"admin_token_file={path}" in d.output

    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{d.url}/api/trading/state", token)
        assert status == 200 and body["mode"] == "running"
        status, body = await call(s, "GET", f"{d.url}/api/trading/state")
        assert status == 401 and body["error"]["code"] == "unauthorized"

    d.signal(signal.SIGTERM)
    assert await d.await_exit() == 0
    assert token not in d.output
    assert "Traceback" not in d.output

    # A second start keeps the token: no new bootstrap, same file, same secret.
    again = daemons(state)
    assert again.admin == token
    assert "event=bootstrap" not in again.output
    again.signal(signal.SIGTERM)
    assert await again.await_exit() == 0
    assert token not in again.output


# ---- durability ------------------------------------------------------------------------------


async def test_kill_9_right_after_the_reply_loses_nothing(tmp_path: Path, daemons: Any) -> None:
    state = tmp_path / "state"
    d = daemons(state)
    admin = d.admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(
            s, "POST", f"{d.url}/api/trading/pause", admin, json={"reason": "kill -9 test"}
        )
        assert status == 202 and body["mode"] == "paused", body
        pause_command = body["command"]["id"]

        trade_id = insert_open_trade(d.db_path)
        status, body = await call(s, "POST", f"{d.url}/api/trades/{trade_id}/close", admin)
        assert status == 202, body
        close_command = body["command"]["id"]
        assert body["command"]["status"] == "queued"
        d.signal(signal.SIGKILL)  # right after the reply: nothing may be lost
    assert await d.await_exit() == -signal.SIGKILL

    d2 = daemons(state)
    assert d2.admin == admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{d2.url}/api/trading/state", admin)
        assert status == 200 and body["mode"] == "paused" and body["reason"] == "kill -9 test"

        for command_id, type_ in ((pause_command, "pause"), (close_command, "close_trade")):
            status, body = await call(s, "GET", f"{d2.url}/api/commands/{command_id}", admin)
            assert status == 200, body
            assert body["command"]["status"] == "queued"
            assert body["command"]["type"] == type_

        status, body = await call(s, "GET", f"{d2.url}/api/trades/{trade_id}", admin)
        assert status == 200 and body["status"] == "closing"

        log = await events(s, d2)
    kinds = [(e["type"], e["data"].get("command_id")) for e in log]
    assert ("trading_paused", None) in kinds
    assert ("command_queued", pause_command) in kinds
    assert ("command_queued", close_command) in kinds
    assert kinds.index(("trading_paused", None)) < kinds.index(("command_queued", close_command))
    closing = [e for e in log if e["type"] == "trade_update" and e["data"].get("id") == trade_id]
    assert closing and closing[-1]["data"]["status"] == "closing"


# ---- SIGTERM ---------------------------------------------------------------------------------


async def test_sigterm_closes_websockets_with_1001_and_exits_0(
    tmp_path: Path, daemons: Any
) -> None:
    d = daemons(tmp_path / "state")  # default shutdown_timeout_s (10 s)
    async with aiohttp.ClientSession() as s:
        ws, hello = await open_ws(s, d, d.admin)
        assert hello["role"] == "admin"
        await ws.send_json({"type": "subscribe", "data": {}})
        await ws.send_json({"type": "ping", "data": {"timestamp": 1}})
        assert (await ws.receive_json(timeout=5))["type"] == "pong"

        started = time.monotonic()
        d.signal(signal.SIGTERM)
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.CLOSE, msg
        assert msg.data == WSCloseCode.GOING_AWAY
        assert ws.close_code == WSCloseCode.GOING_AWAY
        assert await d.await_exit() == 0
        # An open WebSocket must not hold the exit for the HTTP shutdown timeout.
        assert time.monotonic() - started < 5, d.output
        await ws.close()

    out = d.output
    phases = [
        "event=shutdown_requested signal=SIGTERM",
        "event=shutdown phase=stop_accepting",
        "event=closing_websockets count=1",
        "event=database_closed",
        "event=shutdown phase=done",
    ]
    positions = [out.find(p) for p in phases]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    assert "Traceback" not in out


async def test_sigterm_answers_an_inflight_long_poll_and_does_not_wait_for_it(
    tmp_path: Path, daemons: Any
) -> None:
    # On shutdown a pending `?wait=` long-poll is answered at once with the command as it
    # stands, so neither the client (a clean 200, not a dropped connection) nor the exit waits
    # for the 30 s wait or for the shutdown timeout (5 s here; aiohttp would otherwise hold a
    # busy request for up to twice that before cutting it off).
    d = daemons(tmp_path / "state", env={"SIGNALOS_SHUTDOWN_TIMEOUT_S": "5"})
    admin = d.admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", admin)
        assert status == 202, body
        command_id = body["command"]["id"]

    poll = await PendingRequest.send(d, f"/api/commands/{command_id}?wait=30", admin)
    started = time.monotonic()
    d.signal(signal.SIGTERM)
    status, body = await poll.reply(within=10)
    assert status == 200, body
    assert body["command"]["id"] == command_id and body["command"]["status"] == "queued"
    assert await d.await_exit(within=15) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 3, (elapsed, d.output)

    out = d.output
    assert "event=shutdown phase=done" in out
    answered = re.search(rf"method=GET path=/api/commands/{command_id} status=200", out)
    assert answered, out
    # It was still waiting when the signal came: answered after the shutdown began.
    assert 0 <= out.find("event=shutdown_requested") < answered.start(), out
    assert "Traceback" not in out


# ---- start-up failures -----------------------------------------------------------------------


async def test_a_second_daemon_on_the_same_port_exits_3(tmp_path: Path, daemons: Any) -> None:
    state = tmp_path / "state"
    first = daemons(state)
    second = daemons(tmp_path / "other", port=first.port, wait=False)
    assert await second.await_exit() == 3
    out = second.output
    assert "event=listen_failed" in out and f"port={first.port}" in out, out
    assert "in use" in out.lower() and "another signalosd" in out, out
    assert "Traceback" not in out
    assert "event=listening" not in out

    # The failed start left the running daemon and its database alone.
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{first.url}/api/trading/state", first.admin)
        assert status == 200, body
    first.signal(signal.SIGTERM)
    assert await first.await_exit() == 0


async def test_a_second_daemon_on_the_same_state_dir_refuses_to_start(
    tmp_path: Path, daemons: Any
) -> None:
    """Two daemons on one database would both deliver the outbox to agents."""
    state = tmp_path / "state"
    first = daemons(state)
    second = daemons(state, wait=False)
    assert await second.await_exit() == 1
    assert "another signalosd process is using" in second.output, second.output
    assert "Traceback" not in second.output
    async with aiohttp.ClientSession() as s:
        status, _ = await call(s, "GET", f"{first.url}/readyz")
        assert status == 200
    first.signal(signal.SIGTERM)
    assert await first.await_exit() == 0
    third = daemons(state)  # the lock went with the process
    third.signal(signal.SIGTERM)
    assert await third.await_exit() == 0


async def test_a_state_dir_that_cannot_be_created_fails_clearly(
    tmp_path: Path, daemons: Any
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    state = blocker / "state"
    d = daemons(state, wait=False)
    code = await d.await_exit()
    assert code not in (0, None)
    out = d.output
    assert "Traceback" not in out
    assert "event=startup_failed" in out and str(state) in out, out
    assert "--state-dir" in out
    assert "event=listening" not in out
