"""Idle connections: RSS growth per idle authenticated /ws connection, vs a bare aiohttp server.

Each server runs in a fresh process of the same kind (this file with `--serve daemon|bare`), so its
RSS (VmRSS after gc.collect) is its own; the clients live in this process. Per server: open and
close a few warm-up connections, read RSS, open N connections that authenticate (and wait for
`authenticated`), read RSS again. KiB per connection = (after - before) / N.

The baseline is a plain aiohttp /ws handler with the daemon's WebSocketResponse options
(heartbeat 30 s, no compression) that answers `authenticate` with `authenticated` and holds the
socket in its receive loop. `signalosd_subscribed` (informational) repeats the daemon run with
each connection also subscribed live.

Target (DESIGN §6): signalosd KiB/connection <= 1.6 x the bare server's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time

from _common import (
    HOST,
    PYTHON,
    emit,
    log,
    open_many,
    port_of,
    raise_nofile,
    rnd,
    rss_kib,
    start_app,
    start_daemon,
)
from aiohttp import ClientSession, TCPConnector, WSMsgType, web

from signalosd import keys
from signalosd.models import Role

TARGET_RATIO = 1.6
WARMUP = 20


# ---- server processes ---------------------------------------------------------------------


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and json.loads(msg.data).get("type") == "authenticate":
                await ws.send_str('{"type":"authenticated","data":{}}')
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


async def serve(kind: str) -> None:
    """Serve, print {"port", "token", "pid"}, then answer `rss` / `quit` lines on stdin."""
    raise_nofile()
    daemon = runner = None
    if kind == "daemon":
        daemon = await start_daemon()
        port, token = daemon.port, await daemon.make_token(Role.VIEWER)
    else:
        runner = await start_app(bare_app())
        port, token = port_of(runner), "bare"
    print(json.dumps({"port": port, "token": token}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"rss":
            await asyncio.sleep(0.2)  # let the last handshakes and auth writes finish
            gc.collect()
            extra = {"subscribers": len(daemon.app[keys.BUS])} if daemon else {}
            print(json.dumps({"rss_kib": rss_kib(), **extra}), flush=True)
        elif line.strip() == b"quit":
            break
    if daemon is not None:
        await daemon.stop()
    if runner is not None:
        await runner.cleanup()


# ---- measuring ----------------------------------------------------------------------------


class Server:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, token: str) -> None:
        self.proc, self.port, self.token = proc, port, token

    @classmethod
    async def start(cls, kind: str) -> Server:
        proc = await asyncio.create_subprocess_exec(
            PYTHON,
            __file__,
            "--serve",
            kind,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        hello = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        return cls(proc, hello["port"], hello["token"])

    async def rss(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"rss\n")
        return dict(json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30)))

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def measure(kind: str, n: int, subscribe: bool) -> dict:
    server = await Server.start(kind)
    url = f"http://{HOST}:{server.port}/ws"
    try:
        async with ClientSession(connector=TCPConnector(limit=0)) as session:
            warm = await open_many(session, url, server.token, WARMUP, subscribe=subscribe)
            await asyncio.gather(*(ws.close() for ws in warm))
            await asyncio.sleep(0.3)
            before = await server.rss()
            started = time.monotonic()
            sockets = await open_many(session, url, server.token, n, subscribe=subscribe)
            opened_s = time.monotonic() - started
            after = await server.rss()
            alive = sum(not ws.closed for ws in sockets)
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    finally:
        await server.stop()
    growth = after["rss_kib"] - before["rss_kib"]
    result = {
        "rss_before_kib": before["rss_kib"],
        "rss_after_kib": after["rss_kib"],
        "kib_per_conn": rnd(growth / n, 2),
        "open_connections": alive,
        "open_seconds": rnd(opened_s, 2),
    }
    if "subscribers" in after:
        result["live_subscribers"] = after["subscribers"]
    return result


async def main(args: argparse.Namespace) -> None:
    limit = raise_nofile()
    if limit < args.connections + 100:
        raise SystemExit(f"open-files limit {limit} is too low for {args.connections} clients")
    started = time.monotonic()
    results = {}
    for name, kind, subscribe in (
        ("baseline", "bare", False),
        ("signalosd", "daemon", False),
        ("signalosd_subscribed", "daemon", True),
    ):
        log(f"{name}: {args.connections} idle connections")
        results[name] = await measure(kind, args.connections, subscribe)
        log(f"  {name}: {results[name]}")
    ratio = (results["signalosd"]["kib_per_conn"] or 0) / (
        results["baseline"]["kib_per_conn"] or float("nan")
    )
    all_open = all(r["open_connections"] == args.connections for r in results.values())
    emit(
        {
            "bench": "idle_conns",
            "connections": args.connections,
            **results,
            "ratio": rnd(ratio),
            "target_ratio": TARGET_RATIO,
            "all_open": all_open,
            "ok": all_open and ratio <= TARGET_RATIO,
            "wall_s": round(time.monotonic() - started, 1),
        }
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--serve", choices=("daemon", "bare"), help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    asyncio.run(serve(ARGS.serve) if ARGS.serve else main(ARGS))
    sys.exit(0)
