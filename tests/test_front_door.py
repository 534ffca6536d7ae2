"""The daemon's front door (listeners.py, guard.py) against a real `signalosd` process on a real
loopback port: no client without a token can hold a socket for long or crowd out a fresh
connection, whatever the file limit.

Settings are given as SIGNALOS_* variables, which a daemon without them ignores: these tests
then show the old failure (an idle socket kept for an hour, an emergency stop not accepted),
not a configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.daemon_process import Daemon, call, clean_env, daemon_pool

TIMEOUT = 10.0  # generous bound for what must happen; a passing test never waits this long
FLOOD = 2000


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    with daemon_pool() as start:
        yield start


def start(daemons: Callable[..., Daemon], tmp_path: Path, **settings: Any) -> Daemon:
    env = {f"SIGNALOS_{k.upper()}": str(v) for k, v in settings.items()}
    return daemons(tmp_path / "state", env=env)


def operator_token(d: Daemon) -> str:
    create = ["create", "--account", "default", "--role", "operator", "--label", "front door"]
    out = subprocess.run(
        [sys.executable, "-m", "signalosd", "token", "--state-dir", str(d.state_dir), *create],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextlib.asynccontextmanager
async def raw(d: Daemon) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def closed_by_server(reader: asyncio.StreamReader, within: float = TIMEOUT) -> bool:
    """True once the server closes the connection (EOF or reset), False if it is still open
    after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str | None = None
) -> int:
    """One keep-alive GET on a raw connection; the reply's status (its body is read too)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n{auth}\r\n".encode())
    async with asyncio.timeout(TIMEOUT):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next(int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length"))
        await reader.readexactly(length)
    return int(lines[0].split()[1])


# ---- the header deadline --------------------------------------------------------------------


async def test_silent_and_idle_keep_alive_connections_are_closed_at_the_header_deadline(
    tmp_path: Path, daemons: Any
) -> None:
    d = start(daemons, tmp_path, http_header_timeout_s=1)
    async with raw(d) as (silent, _), raw(d) as (reader, writer):
        assert await exchange(reader, writer, "/livez") == 200
        # Both are closed: the silent one from its connect, the other from its reply.
        assert await closed_by_server(silent), "a silent connection outlived the deadline"
        assert await closed_by_server(reader), "an idle keep-alive connection outlived it"


async def test_headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline(
    tmp_path: Path, daemons: Any
) -> None:
    d = start(daemons, tmp_path, http_header_timeout_s=1)
    async with raw(d) as (reader, writer):
        writer.write(b"GET /livez HTTP/1.1\r\n")
        closed = False
        for _ in range(int(TIMEOUT / 0.2)):  # one byte every 0.2 s, for at most TIMEOUT
            try:
                writer.write(b"X")
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            if await closed_by_server(reader, within=0.2):
                closed = True
                break
    assert closed, "a client trickling its headers kept the connection open"


async def test_requests_in_flight_and_authenticated_websockets_outlive_the_deadline(
    tmp_path: Path, daemons: Any
) -> None:
    d = start(daemons, tmp_path, http_header_timeout_s=1)
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(f"{d.url}/ws")
        await ws.send_json({"type": "authenticate", "data": {"token": d.admin}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "authenticated"
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", d.admin, json={})
        assert status == 202, body
        # No agent runs: the long-poll holds its request open for 2 s, twice the deadline.
        command = body["command"]["id"]
        status, body = await call(s, "GET", f"{d.url}/api/commands/{command}?wait=2", d.admin)
        assert status == 200 and body["command"]["status"] == "queued", body
        await ws.send_json({"type": "ping", "data": {"timestamp": 1}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "pong"
        await ws.close()


# ---- the cap on unauthenticated connections ---------------------------------------------------


async def test_beyond_the_cap_the_oldest_unauthenticated_connections_are_closed(
    tmp_path: Path, daemons: Any
) -> None:
    d = start(daemons, tmp_path, max_unauthenticated_connections=8, http_header_timeout_s=60)
    async with contextlib.AsyncExitStack() as stack, aiohttp.ClientSession() as s:
        # Connections that showed a valid token first: never counted, never closed.
        kept_reader, kept_writer = await stack.enter_async_context(raw(d))
        assert await exchange(kept_reader, kept_writer, "/api/trading/state", d.admin) == 200
        ws = await s.ws_connect(f"{d.url}/ws")
        await ws.send_json({"type": "authenticate", "data": {"token": d.admin}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "authenticated"

        idle = [await stack.enter_async_context(raw(d)) for _ in range(20)]
        closed = await asyncio.gather(*(closed_by_server(r) for r, _ in idle[:12]))
        assert all(closed), f"{closed.count(False)} of the 12 oldest are still open"
        for reader, writer in idle[12:]:  # the 8 newest were kept, and still work
            assert await exchange(reader, writer, "/livez") == 200

        assert await exchange(kept_reader, kept_writer, "/api/trading/state", d.admin) == 200
        await ws.send_json({"type": "ping", "data": {"timestamp": 1}})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "pong"
        await ws.close()
    d.wait_for_line(r"event=unauthenticated_connections_closed count=\d+ total=\d+ cap=8")
    assert "Traceback" not in d.output


async def test_websockets_that_never_authenticate_count_against_the_cap(
    tmp_path: Path, daemons: Any
) -> None:
    d = start(daemons, tmp_path, max_unauthenticated_connections=8, ws_auth_timeout_s=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        sockets = [await s.ws_connect(f"{d.url}/ws") for _ in range(20)]

        async def ended(ws: aiohttp.ClientWebSocketResponse) -> bool:
            try:
                async with asyncio.timeout(TIMEOUT):  # receive(timeout=) restarts on pings
                    msg = await ws.receive()
            except TimeoutError:
                return False
            return msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)

        closed = await asyncio.gather(*(ended(ws) for ws in sockets[:12]))
        assert all(closed), f"{closed.count(False)} of the 12 oldest websockets are still open"
        for ws in sockets[12:]:  # the newest still get their chance to authenticate
            await ws.send_json({"type": "authenticate", "data": {"token": d.admin}})
            assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "authenticated"
        for ws in sockets:
            await ws.close()
    assert "Traceback" not in d.output


# ---- the file limit ---------------------------------------------------------------------------


PRLIMIT = shutil.which("prlimit")
needs_prlimit = pytest.mark.skipif(PRLIMIT is None, reason="prlimit (util-linux) is not installed")


def limited(d: Daemon, soft: int, hard: int) -> Daemon:
    """`d` started under `prlimit`, which sets the open-files limits and then execs signalosd
    (same pid): as systemd's LimitNOFILE= would."""
    assert PRLIMIT is not None
    d.cmd = [PRLIMIT, f"--nofile={soft}:{hard}", "--", *d.cmd]
    return d.start().wait_listening()


def _soft_file_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no 'Max open files' in /proc/PID/limits")


@needs_prlimit
async def test_the_daemon_raises_its_soft_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "state")
    try:
        limited(d, 1024, 4096)
        d.wait_for_line(r"event=open_files_limit_raised from=1024 to=4096")
        assert d.proc is not None and _soft_file_limit(d.proc.pid) == 4096
    finally:
        d.kill()


@needs_prlimit
async def test_an_emergency_stop_gets_through_2000_idle_connections_at_a_1024_file_limit(
    tmp_path: Path,
) -> None:
    """The issue's case: systemd's default soft limit (1024, here the hard one too, so that
    raising it cannot help) and more idle connections than that. With the cap (default 256)
    the daemon keeps accepting, and a fresh connection's emergency stop answers at once.
    Without it the daemon ran out of descriptors and accepted nothing more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FLOOD + 200:
        if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
            pytest.skip(f"needs {FLOOD + 200} open files in the test process; hard limit {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (FLOOD + 200, hard))
    try:
        await _stop_through_a_flood(tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _stop_through_a_flood(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "state", env={"SIGNALOS_HTTP_HEADER_TIMEOUT_S": "120"})
    flood: list[socket.socket] = []
    try:
        limited(d, 1024, 1024)
        token = operator_token(d)
        loop = asyncio.get_running_loop()
        for _ in range(FLOOD):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            flood.append(sock)
        connects = [
            loop.create_task(loop.sock_connect(sock, ("127.0.0.1", d.port))) for sock in flood
        ]
        done, pending = await asyncio.wait(connects, timeout=20)
        for task in pending:
            task.cancel()
        # Connected as far as the kernel goes (handshake done, maybe not yet accepted).
        connected = sum(1 for t in done if not t.cancelled() and t.exception() is None)

        async with aiohttp.ClientSession() as s:
            try:
                status, body = await call(
                    s,
                    "POST",
                    f"{d.url}/api/trading/emergency-stop",
                    token,
                    json={"reason": "flood"},
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                pytest.fail(
                    f"the emergency stop got no answer ({exc!r}) with {connected} of {FLOOD} "
                    "idle connections made:\n" + d.output[-3000:]
                )
        assert status == 202 and body["mode"] == "halted", body
        assert connected == FLOOD, f"only {connected} of {FLOOD} connections could be made"
        assert "Too many open files" not in d.output and "Traceback" not in d.output
        d.wait_for_line(r"event=unauthenticated_connections_closed .*cap=256")
    finally:
        for sock in flood:
            sock.close()
        d.kill()


UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_an_upgrade_the_guard_cut_short_is_no_error_and_no_traceback(
    tmp_path: Path, daemons: Any
) -> None:
    """A WebSocket upgrade whose connection the cap closes before the 101 went out (a newer
    connection arrived at that moment) is a client gone, not a 500 with a traceback: under a
    flood, tracebacks would become an attack on the log and the event loop."""
    d = start(daemons, tmp_path, max_unauthenticated_connections=1)
    for _ in range(60):
        _, old_w = await asyncio.open_connection("127.0.0.1", d.port)
        old_w.write(UPGRADE)  # the request arrives…
        newer = await asyncio.open_connection("127.0.0.1", d.port)  # …as the cap evicts it
        old_w.transport.abort()
        newer[1].transport.abort()
    async with raw(d) as (reader, writer):  # the daemon serves on, and has logged it all
        assert await exchange(reader, writer, "/livez") == 200
    assert "Traceback" not in d.output and "unhandled_error" not in d.output
