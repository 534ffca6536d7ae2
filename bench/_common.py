"""Helpers shared by the bench/ scripts: run the real daemon in-process, talk to /ws, measure.

Every bench prints exactly one JSON object on stdout; progress goes to stderr through `log`.
Nothing here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, web

from signalosd import accounts, keys
from signalosd.app import create_app
from signalosd.config import Settings
from signalosd.models import Role

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

    async def make_token(self, role: Role = Role.VIEWER, account: str = "default") -> str:
        made = await self.app[keys.DB].write(
            lambda tx: accounts.create_token(tx, account, role, "bench", accounts.local_actor())
        )
        return str(made["token"])

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.tmp.cleanup()


async def start_daemon(**overrides: Any) -> Daemon:
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
    runner = await start_app(app)
    admin = settings.admin_token_path.read_text().strip()
    return Daemon(app, runner, port_of(runner), admin, tmp)


async def start_app(app: web.Application, port: int = 0) -> web.AppRunner:
    """Serve any aiohttp app (the daemon or a bare baseline) on 127.0.0.1."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
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
        n = len(payload)
        head = bytes([0x80 | opcode]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        )
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

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
