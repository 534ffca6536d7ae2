"""Replay: one /ws client subscribing with since=0 to a 100,000-event log (`tail --since 0`).

Setup (not timed): the real daemon app in this process; 100,000 events appended in a few large
write transactions. Measured: a client in a separate process (this file with `--client`)
authenticates, sends `subscribe {since: 0}` and reads until it has the `last_seq` announced in
`authenticated`; it checks the count and that seqs are consecutive from 1. events/s = events /
(last frame received - subscribe sent).

Baselines in the same run: `sqlite_select` (one SELECT of all rows of the events table in Python,
the floor of reading the log) and `bare_aiohttp` (a plain aiohttp /ws handler sending the same
100,000 pre-built frames with `await ws.send_str` to the same client code).

Target (DESIGN §6): signalosd replay >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator

from _common import (
    HOST,
    PYTHON,
    RawWebSocket,
    emit,
    log,
    open_authenticated,
    port_of,
    raise_nofile,
    rnd,
    start_app,
    start_daemon,
)
from aiohttp import ClientSession, WSMsgType, web

from signalosd import keys
from signalosd.models import Role

TARGET_EVENTS_PER_S = 50_000
CLIENT_TIMEOUT_S = 60.0


# ---- client process -----------------------------------------------------------------------


async def frames(kind: str, port: int, token: str) -> AsyncIterator[str]:
    """The text frames of a /ws stream subscribed with since=0, `authenticated` first."""
    if kind == "raw":
        ws = await RawWebSocket.connect(port)
        first = await ws.authenticate(token, since=0)
        yield json.dumps(first)
        while True:
            for payload in await ws.read_frames():
                yield payload.decode()
    async with ClientSession() as session:
        aws = await open_authenticated(session, f"http://{HOST}:{port}/ws", token, subscribe=False)
        yield json.dumps({"type": "authenticated", "data": {"last_seq": -1}})
        await aws.send_str(json.dumps({"type": "subscribe", "data": {"since": 0}}))
        async for msg in aws:
            if msg.type is not WSMsgType.TEXT:
                break
            yield msg.data


async def client_main(kind: str, port: int, token: str, expected: int) -> None:
    stream = frames(kind, port, token)
    first = json.loads(await anext(stream))
    target = first["data"]["last_seq"] if first["data"]["last_seq"] >= 0 else expected
    started = time.perf_counter()  # subscribe was sent just before `authenticated` was yielded
    count, consecutive, last, other = 0, True, 0, 0

    async def consume() -> None:
        nonlocal count, consecutive, last, other
        async for text in stream:
            msg = json.loads(text)  # what a real tail does with every frame
            seq = msg.get("seq")
            if seq is None:
                other += 1
                continue
            consecutive = consecutive and seq == last + 1
            last, count = seq, count + 1
            if seq >= target:
                return

    try:
        await asyncio.wait_for(consume(), CLIENT_TIMEOUT_S)
    except TimeoutError:
        log(f"client: timed out at seq {last} of {target}")
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "events": count,
                "last_seq": last,
                "target": target,
                "seconds": elapsed,
                "consecutive": consecutive,
                "control_frames": other,
            }
        ),
        flush=True,
    )
    await stream.aclose()


async def run_client(kind: str, port: int, token: str, expected: int) -> dict:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        __file__,
        "--client",
        str(port),
        token,
        str(expected),
        "--client-kind",
        kind,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), CLIENT_TIMEOUT_S + 30)
    report = json.loads(out.decode().strip().splitlines()[-1])
    report["events_per_s"] = rnd(report["events"] / report["seconds"], 0)
    report["seconds"] = rnd(report["seconds"])
    report["complete"] = (
        report["consecutive"] and report["events"] == expected and report["last_seq"] == expected
    )
    return report


# ---- servers and setup --------------------------------------------------------------------


def bare_app(messages: list[str]) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            kind = json.loads(msg.data).get("type")
            if kind == "authenticate":
                await ws.send_str(
                    json.dumps({"type": "authenticated", "data": {"last_seq": len(messages)}})
                )
            elif kind == "subscribe":
                for text in messages:
                    await ws.send_str(text)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


def time_sqlite_select(path: str) -> dict:
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        rows = conn.execute(
            "SELECT seq, account_id, type, data, ts, actor FROM events WHERE seq > 0 ORDER BY seq"
        ).fetchall()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return {"rows": len(rows), "seconds": rnd(elapsed), "rows_per_s": rnd(len(rows) / elapsed, 0)}


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    started = time.monotonic()
    daemon = await start_daemon()
    bare = None
    try:
        db = daemon.app[keys.DB]
        token = await daemon.make_token(Role.VIEWER)
        account_id = int((await db.read(lambda tx: tx.account_by_name("default")))["id"])
        log(f"setup: appending {args.events} events")
        chunk = 25_000

        def append(tx, n: int) -> None:
            for i in range(n):
                tx.append_event(
                    account_id,
                    "trade_update",
                    {"i": i, "symbol": "EURUSD", "profit": 12.5, "t": time.time_ns()},
                    {"kind": "system"},
                )

        for done in range(0, args.events, chunk):
            size = min(chunk, args.events - done)
            await db.write(lambda tx, n=size: append(tx, n))
        head = daemon.app[keys.BUS].published_seq
        messages = [e.message() for e in await db.read(lambda tx: tx.read_events(0, head, None))]
        log(f"setup done: log head seq {head}, {time.monotonic() - started:.1f} s")
        bare = await start_app(bare_app(messages))
        runs: dict[str, list[dict]] = {"signalosd": [], "bare_aiohttp": []}
        for r in range(args.rounds):
            for name in (
                ("signalosd", "bare_aiohttp") if r % 2 == 0 else ("bare_aiohttp", "signalosd")
            ):
                port, tok = (daemon.port, token) if name == "signalosd" else (port_of(bare), "x")
                res = await run_client(args.client_kind, port, tok, head)
                log(f"round {r + 1}/{args.rounds} {name}: {res}")
                runs[name].append(res)
        select = time_sqlite_select(str(daemon.settings.db_path))
        log(f"sqlite_select: {select}")
    finally:
        if bare is not None:
            await bare.cleanup()
        await daemon.stop()
    best = {k: max(v, key=lambda x: x["events_per_s"] or 0) for k, v in runs.items()}
    eps = best["signalosd"]["events_per_s"] or 0
    complete = all(x["complete"] for v in runs.values() for x in v)
    emit(
        {
            "bench": "replay",
            "events": head,
            "client_kind": args.client_kind,
            "rounds": args.rounds,
            "signalosd": best["signalosd"],
            "all_rounds_events_per_s": {k: [x["events_per_s"] for x in v] for k, v in runs.items()},
            "baseline": {"bare_aiohttp": best["bare_aiohttp"], "sqlite_select": select},
            "ratio_vs_bare_aiohttp": round(eps / (best["bare_aiohttp"]["events_per_s"] or 1), 3),
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "complete": complete,
            "ok": complete and eps >= TARGET_EVENTS_PER_S,
            "wall_s": round(time.monotonic() - started, 1),
        }
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3, help="alternating replays of each server")
    p.add_argument("--client-kind", choices=("raw", "aiohttp"), default="raw")
    p.add_argument(
        "--client", nargs=3, metavar=("PORT", "TOKEN", "EXPECTED"), help=argparse.SUPPRESS
    )
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.client:
        port, token, expected = ARGS.client
        asyncio.run(client_main(ARGS.client_kind, int(port), token, int(expected)))
    else:
        asyncio.run(main(ARGS))
    sys.exit(0)
