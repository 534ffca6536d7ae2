"""Helpers shared by the bench/ scripts: run the real daemon in-process, talk to /ws, measure.

Every bench prints exactly one JSON object on stdout; progress goes to stderr through `log`.
Nothing here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import math
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from signalosd import keys
from signalosd.app import create_app
from signalosd.auth import accounts
from signalosd.config import Settings
from signalosd.models import Role
from signalosd.ops.guard import ConnectionGuard
from signalosd.ops.listeners import GuardedSite

HOST = "127.0.0.1"
PYTHON = sys.executable


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The bench's one JSON object on stdout."""
    print(json.dumps(result, separators=(",", ":")), flush=True)


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard limit (1,000 sockets per side need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of a process in KiB (VmRSS from /proc/<pid>/status)."""
    path = f"/proc/{pid or os.getpid()}/status"
    with open(path) as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in {path}")


def settled_rss_kib() -> int:
    """This process's RSS after a full garbage collection."""
    gc.collect()
    return rss_kib()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an unsorted sequence; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def rnd(x: float, digits: int = 3) -> float | None:
    """Round for the JSON output (nan/inf become null)."""
    return None if math.isnan(x) or math.isinf(x) else round(x, digits)


# ---- the daemon, in-process ---------------------------------------------------------------


@dataclass
class Daemon:
    """The real signalosd app served on an ephemeral loopback port with a temporary state dir."""

    app: web.Application
    runner: web.AppRunner
    port: int
    admin_token: str
    tmp: tempfile.TemporaryDirectory[str]

    @property
    def ws_url(self) -> str:
        return f"http://{HOST}:{self.port}/ws"

    @property
    def settings(self) -> Settings:
        return self.app[keys.SETTINGS]

    @property
    def guard(self) -> ConnectionGuard:
        """The front door's count of unauthenticated connections (and how many it closed)."""
        return self.app[keys.GUARD]

    async def make_token(self, role: Role = Role.VIEWER, account: str = "default") -> str:
        made = await self.app[keys.DB].write(
            lambda tx: accounts.create_token(tx, account, role, "bench", accounts.local_actor())
        )
        return str(made["token"])

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.tmp.cleanup()


async def start_daemon(**overrides: Any) -> Daemon:
    """The daemon app behind its real front door (`listeners.GuardedSite`: header deadline,
    cap on unauthenticated connections, its listen backlog), as `signalosd` serves it; only
    the control socket and the systemd notifier are left out."""
    tmp = tempfile.TemporaryDirectory(prefix="signalos-bench-")
    values: dict[str, Any] = {
        "state_dir": Path(tmp.name) / "state",
        "host": HOST,
        "port": 0,
        "log_level": "warning",
    }
    values.update(overrides)
    settings = Settings(**values)
    app = create_app(settings)
    runner = await start_app(app, guarded=True)
    gc.collect()  # as signalosd's __main__ does once the app is up: the start-up heap is
    gc.freeze()  # never scanned again by the garbage collector
    admin = settings.admin_token_path.read_text().strip()
    return Daemon(app, runner, port_of(runner), admin, tmp)


async def start_app(app: web.Application, port: int = 0, *, guarded: bool = False) -> web.AppRunner:
    """Serve an aiohttp app on 127.0.0.1: a bare baseline with aiohttp's own TCPSite (backlog
    2048), or with `guarded` the daemon's GuardedSite (its app must hold keys.GUARD and
    keys.SETTINGS), so the benches measure the front door the daemon really has."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    if guarded:
        await GuardedSite(runner, host=HOST, port=port).start()
    else:
        await web.TCPSite(runner, HOST, port, backlog=2048).start()
    return runner


def port_of(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


# ---- clients ------------------------------------------------------------------------------


async def open_authenticated(
    session: ClientSession,
    url: str,
    token: str,
    since: int | None = None,
    subscribe: bool = True,
) -> ClientWebSocketResponse:
    """Connect to /ws, authenticate (wait for `authenticated`) and optionally subscribe."""
    ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
    await ws.send_str(json.dumps({"type": "authenticate", "data": {"token": token}}))
    msg = await ws.receive(timeout=30)
    if msg.type is not WSMsgType.TEXT or json.loads(msg.data).get("type") != "authenticated":
        raise RuntimeError(f"authentication failed: {msg.type} {msg.data!r}")
    if subscribe:
        data = {} if since is None else {"since": since}
        await ws.send_str(json.dumps({"type": "subscribe", "data": data}))
    return ws


async def open_many(
    session: ClientSession,
    url: str,
    token: str,
    n: int,
    since: int | None = None,
    subscribe: bool = True,
    parallel: int = 64,
) -> list[ClientWebSocketResponse]:
    """n authenticated connections, opened `parallel` at a time (kind to the listen backlog)."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> ClientWebSocketResponse:
        async with gate:
            return await open_authenticated(session, url, token, since, subscribe)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def wait_until(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.01)


def envelope(seq: int, data: dict[str, Any]) -> str:
    """A frame shaped and sized like the daemon's event message (for the bare baselines)."""
    return json.dumps(
        {
            "id": f"evt_{seq}",
            "type": "bench_tick",
            "seq": seq,
            "data": data,
            "timestamp": "2026-01-05T09:00:00.000Z",
            "account": "default",
            "actor": {"kind": "system"},
        },
        separators=(",", ":"),
    )


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client-to-server WebSocket frame (FIN set). The XOR runs on one big int,
    so pre-encoding 50,000 frames takes well under a second."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


def text_frame(text: str) -> bytes:
    """A masked client text frame, ready to write (for pre-encoding a burst)."""
    return client_frame(0x1, text.encode())


class RawWebSocket:
    """A minimal RFC 6455 client over asyncio streams, for the receive-heavy benches.

    aiohttp's client costs ~6 us of CPU per received frame (one future wake-up per message), so on
    a 2-core machine a 1,000-subscriber client process tops out near 170,000 frames/s: below both
    servers, which then measure the same. This client parses every frame that arrived in one
    read in a tight loop (~1 us per frame), so the server under test is the bottleneck.
    Text frames only, no fragmentation, no extensions (the servers send none); pings are ponged.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()

    @classmethod
    async def connect(cls, port: int, path: str = "/ws") -> RawWebSocket:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"websocket upgrade refused: {head[:200]!r}")
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes) -> None:
        self.writer.write(client_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    async def read_frames(self) -> list[bytes]:
        """The payloads of every complete text frame buffered (waits for at least one)."""
        while True:
            frames = self._parse()
            if frames:
                return frames
            chunk = await self.reader.read(1 << 18)
            if not chunk:
                raise ConnectionError("websocket closed by the server")
            self.buf += chunk

    def _parse(self) -> list[bytes]:
        buf, pos, end, out = self.buf, 0, len(self.buf), []
        while end - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if end - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            if opcode == 0x1:
                out.append(payload)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError(f"websocket closed by the server: {payload[:2].hex()}")
        del buf[:pos]
        return out

    async def authenticate(
        self, token: str, since: int | None = None, subscribe: bool = True
    ) -> dict[str, Any]:
        """authenticate (and wait for `authenticated`), then optionally subscribe."""
        self.send_text(json.dumps({"type": "authenticate", "data": {"token": token}}))
        first = json.loads((await self.read_frames())[0])
        if first.get("type") != "authenticated":
            raise RuntimeError(f"authentication failed: {first}")
        if subscribe:
            self.send_text(
                json.dumps({"type": "subscribe", "data": {} if since is None else {"since": since}})
            )
        return dict(first)

    def close(self) -> None:
        self.writer.close()


async def open_many_raw(port: int, token: str, n: int, parallel: int = 64) -> list[RawWebSocket]:
    """n RawWebSockets, authenticated and subscribed live, opened `parallel` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> RawWebSocket:
        async with gate:
            ws = await RawWebSocket.connect(port)
            await ws.authenticate(token)
            return ws

    return list(await asyncio.gather(*(one() for _ in range(n))))


class RawAgent:
    """A protocol-level desktop agent on /ws/agent over `RawWebSocket` (docs/agent.md).

    `connect` authenticates with an agent-role token, sends `hello` and waits for `welcome`.
    Frames that arrive together are kept in order, so none is lost between calls.
    """

    def __init__(self, ws: RawWebSocket, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        self._pending: deque[dict[str, Any]] = deque()

    @classmethod
    async def connect(
        cls, port: int, token: str, version: str = "bench", broker: str = "paper"
    ) -> RawAgent:
        ws = await RawWebSocket.connect(port, "/ws/agent")
        await ws.authenticate(token, subscribe=False)
        ws.send_text(
            json.dumps({"type": "hello", "data": {"agent_version": version, "broker": broker}})
        )
        agent = cls(ws, {})
        first = await agent.next_message()
        if first.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {first}")
        agent.welcome = first["data"]
        return agent

    async def next_message(self) -> dict[str, Any]:
        while not self._pending:
            self._pending.extend(json.loads(f) for f in await self.ws.read_frames())
        return self._pending.popleft()

    async def next_command(self, command_type: str | None = None) -> dict[str, Any]:
        """The next `command` frame (of `command_type`); other commands are finished on the way."""
        while True:
            msg = await self.next_message()
            if msg.get("type") != "command":
                continue
            if command_type is None or msg["data"]["type"] == command_type:
                return msg
            self.finish(msg["id"])

    def finish(self, command_id: str, ok: bool = True, data: dict[str, Any] | None = None) -> None:
        """`ack` then `command_result` for a command, so the daemon's outbox stays clean."""
        self.ws.send_text(json.dumps({"type": "ack", "data": {"messageId": command_id}}))
        self.ws.send_text(
            json.dumps(
                {
                    "type": "command_result",
                    "data": {"command_id": command_id, "ok": ok, "data": data or {}},
                }
            )
        )

    def close(self) -> None:
        self.ws.close()


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client with JSON bodies and a bearer token.

    `send` only writes the request (take the start time right before it); `response` reads the
    reply. Used where aiohttp's client would add its own overhead to a latency measurement.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, token: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self.host = f"{HOST}:{port}"
        self.token = token

    @classmethod
    async def connect(cls, port: int, token: str) -> RawHttp:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer, port, token)

    def send(self, method: str, path: str, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Length: {len(data)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)

    async def response(self) -> tuple[int, Any]:
        """(status, decoded JSON body or None)."""
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, json.loads(body) if body else None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.send(method, path, body)
        return await self.response()

    def close(self) -> None:
        self.writer.close()


# ---- child processes ----------------------------------------------------------------------


async def spawn_child(
    script: str, *args: str, ready_within: float = 60.0, niceness: int = 0
) -> Child:
    """Run `script` with `args` in a new Python process; wait for its `READY` line.
    `niceness`: run it at that lower CPU priority (see estop_latency.py's attackers)."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        script,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 24,
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )
    child = Child(proc)
    line = await child.line(ready_within)
    if line != "READY":
        await child.kill()
        raise RuntimeError(f"{Path(script).name} {' '.join(args[:1])}: not ready: {line!r}")
    return child


@dataclass
class Child:
    """A bench child process driven by lines: the parent writes a command, the child answers
    with one JSON line (see `stdin_line` for the child's side)."""

    proc: asyncio.subprocess.Process

    async def line(self, within: float) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
        return raw.decode().strip()

    def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    async def ask(self, text: str, within: float) -> dict[str, Any]:
        """Send one command line and return the child's JSON reply."""
        self.tell(text)
        return await self.report(within)

    async def report(self, within: float) -> dict[str, Any]:
        line = await self.line(within)
        if not line:
            raise RuntimeError(f"child exited with {await self.proc.wait()} before replying")
        return dict(json.loads(line))

    async def bye(self, within: float = 10.0) -> None:
        """Tell the child to finish (`bye`) and wait for it; kill it if it does not."""
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.tell("bye")
            try:
                await asyncio.wait_for(self.proc.wait(), within)
            except TimeoutError:
                await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def stdin_line() -> str:
    """Child side: the next command line from the parent ('' when the parent went away)."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip()


def reply(result: dict[str, Any]) -> None:
    """Child side: one JSON line to the parent."""
    print(json.dumps(result, separators=(",", ":")), flush=True)


def latency_summary(ns: Sequence[int]) -> dict[str, Any]:
    """p50/p90/p99/max/mean in ms of a list of nanosecond durations."""
    ms = [x / 1e6 for x in ns]
    return {
        "n": len(ms),
        "p50_ms": rnd(percentile(ms, 50)),
        "p90_ms": rnd(percentile(ms, 90)),
        "p99_ms": rnd(percentile(ms, 99)),
        "max_ms": rnd(max(ms) if ms else math.nan),
        "mean_ms": rnd(sum(ms) / len(ms) if ms else math.nan),
    }


def durable_connection(path: str | Path) -> sqlite3.Connection:
    """A plain sqlite3 connection set up like the daemon's writer: WAL, synchronous=FULL,
    autocommit mode (explicit BEGIN IMMEDIATE … COMMIT)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn
