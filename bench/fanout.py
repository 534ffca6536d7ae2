"""Fan-out: events delivered to 1,000 live /ws subscribers, vs a bare aiohttp broadcast loop.

The server is the real daemon app in this process; the 1,000 clients run in a separate process
(this file with `--client`). E events are appended in batches by write transactions, each carrying
`time.time_ns()` from inside the transaction; the clients record receive time minus that.
deliveries/s = frames received by all clients / (last delivery - first publish).

The baseline, in the same run with the same client code and the same number and size of frames:
a plain aiohttp app whose /ws handler answers `authenticate` and registers the socket on
`subscribe`, and a loop `for ws in clients: await ws.send_str(msg)` per message.

Target (DESIGN §6): signalosd deliveries/s >= 0.7 x the bare loop's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from _common import (
    HOST,
    PYTHON,
    RawWebSocket,
    emit,
    envelope,
    log,
    open_many,
    open_many_raw,
    percentile,
    port_of,
    raise_nofile,
    rnd,
    start_app,
    start_daemon,
    wait_until,
)
from aiohttp import ClientSession, ClientWebSocketResponse, TCPConnector, WSMsgType, web

from signalosd import keys
from signalosd.models import Role

TARGET_RATIO = 0.7
CLIENT_TIMEOUT_S = 30.0


# ---- client process -----------------------------------------------------------------------


async def client_main(kind: str, port: int, token: str, n: int, events: int) -> None:
    """Open n subscribers, say READY, count every event frame, report one JSON line."""
    raise_nofile()
    latencies: list[int] = []
    counts = [0] * n
    last_ns = 0

    def record(i: int, now: int, text: bytes | str, at: int) -> None:
        nonlocal last_ns
        latencies.append(now - int(text[at + 4 : text.index("}", at)]))  # type: ignore[arg-type]
        counts[i] += 1
        last_ns = now

    async def drain_raw(i: int, ws: RawWebSocket) -> None:
        while counts[i] < events:
            frames = await ws.read_frames()
            now = time.time_ns()
            for text in frames:
                at = text.find(b'"t":')  # cheaper than json.loads: keep the client off the path
                if at >= 0:
                    record(i, now, text.decode(), at)

    async def drain_aiohttp(i: int, ws: ClientWebSocketResponse) -> None:
        while counts[i] < events:
            msg = await ws.receive()
            now = time.time_ns()
            if msg.type is not WSMsgType.TEXT:
                raise ConnectionError(f"{msg.type} {msg.data!r} {ws.close_code}")
            at = msg.data.find('"t":')
            if at >= 0:
                record(i, now, msg.data, at)

    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        if kind == "raw":
            sockets: list = await open_many_raw(port, token, n)
            drain = drain_raw
        else:
            sockets = await open_many(session, f"http://{HOST}:{port}/ws", token, n)
            drain = drain_aiohttp  # type: ignore[assignment]
        print("READY", flush=True)
        tasks = [asyncio.ensure_future(drain(i, ws)) for i, ws in enumerate(sockets)]
        _, pending = await asyncio.wait(tasks, timeout=CLIENT_TIMEOUT_S)
        for task in pending:
            task.cancel()
        errors = [repr(t.exception()) for t in tasks if not t.cancelled() and t.exception()]
        print(
            json.dumps(
                {
                    "received": sum(counts),
                    "last_ns": last_ns,
                    "errors": errors[:3],
                    "complete_clients": sum(c == events for c in counts),
                    "p50_ms": percentile(latencies, 50) / 1e6,
                    "p99_ms": percentile(latencies, 99) / 1e6,
                }
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "bye"
        for ws in sockets:
            ws.close() if kind == "raw" else await ws.close()


async def spawn_client(
    kind: str, port: int, token: str, n: int, events: int
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        __file__,
        "--client",
        str(port),
        token,
        "--client-kind",
        kind,
        "--clients",
        str(n),
        "--events",
        str(events),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"READY":
        raise RuntimeError(f"client process failed to connect: {line!r}")
    return proc


async def client_report(proc: asyncio.subprocess.Process, t0: int, cpu0: float) -> dict:
    """The client's counts; the server's CPU seconds from first publish to the report."""
    assert proc.stdout is not None and proc.stdin is not None
    report = json.loads(await asyncio.wait_for(proc.stdout.readline(), CLIENT_TIMEOUT_S + 30))
    cpu = time.process_time() - cpu0  # all threads of this (the server's) process
    proc.stdin.write(b"bye\n")
    await proc.wait()
    elapsed = (report["last_ns"] - t0) / 1e9
    return {
        "deliveries_per_s": rnd(report["received"] / elapsed if elapsed > 0 else 0.0, 0),
        "p50_ms": rnd(report["p50_ms"]),
        "p99_ms": rnd(report["p99_ms"]),
        "received": report["received"],
        "complete_clients": report["complete_clients"],
        "seconds": rnd(elapsed),
        "server_cpu_us_per_delivery": rnd(
            cpu * 1e6 / report["received"] if report["received"] else float("nan")
        ),
        "client_errors": report["errors"],
    }


# ---- the two servers ----------------------------------------------------------------------


async def run_signalosd(kind: str, n: int, events: int, batch: int, queue_max: int) -> dict:
    daemon = await start_daemon(ws_queue_max=queue_max)
    try:
        token = await daemon.make_token(Role.VIEWER)
        db, bus = daemon.app[keys.DB], daemon.app[keys.BUS]
        account = await db.read(lambda tx: tx.account_by_name("default"))
        account_id = int(account["id"])
        proc = await spawn_client(kind, daemon.port, token, n, events)
        await wait_until(lambda: len(bus) >= n, 30, "all subscriptions to go live")

        def append(tx) -> None:
            for _ in range(batch):
                tx.append_event(account_id, "bench_tick", {"t": time.time_ns()}, {"kind": "system"})

        t0, cpu0 = time.time_ns(), time.process_time()
        for _ in range(events // batch):
            await db.write(append)
        result = await client_report(proc, t0, cpu0)
        result["slow_consumer_closes"] = bus.slow_consumer_closes
        return result
    finally:
        await daemon.stop()


def bare_app(clients: list[web.WebSocketResponse]) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    kind = json.loads(msg.data).get("type")
                    if kind == "authenticate":
                        await ws.send_str('{"type":"authenticated","data":{}}')
                    elif kind == "subscribe":
                        clients.append(ws)
        finally:
            if ws in clients:
                clients.remove(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


async def run_bare(kind: str, n: int, events: int, batch: int) -> dict:
    clients: list[web.WebSocketResponse] = []
    runner = await start_app(bare_app(clients))
    try:
        proc = await spawn_client(kind, port_of(runner), "bare", n, events)
        await wait_until(lambda: len(clients) >= n, 30, "all bare clients to subscribe")
        t0, cpu0 = time.time_ns(), time.process_time()
        seq = 0
        for _ in range(events // batch):
            batch_msgs = []
            for _ in range(batch):
                seq += 1
                batch_msgs.append(envelope(seq, {"t": time.time_ns()}))
            for msg in batch_msgs:
                for ws in clients:
                    await ws.send_str(msg)
        return await client_report(proc, t0, cpu0)
    finally:
        await runner.cleanup()


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    n, events, batch = args.clients, args.events, args.batch
    events -= events % batch
    queue_max = max(1000, 2 * events)  # a whole burst fits: no 4008 from the burst itself
    rounds: dict[str, list[dict]] = {"signalosd": [], "baseline": []}
    started = time.monotonic()
    for r in range(args.rounds):
        for name in ("baseline", "signalosd") if r % 2 == 0 else ("signalosd", "baseline"):
            log(f"round {r + 1}/{args.rounds}: {name}, {n} clients x {events} events")
            if name == "signalosd":
                res = await run_signalosd(args.client_kind, n, events, batch, queue_max)
            else:
                res = await run_bare(args.client_kind, n, events, batch)
            log(f"  {name}: {res}")
            rounds[name].append(res)
    best = {k: max(v, key=lambda x: x["deliveries_per_s"] or 0) for k, v in rounds.items()}
    expected = n * events
    complete = all(x["received"] == expected for v in rounds.values() for x in v)
    ratio = (best["signalosd"]["deliveries_per_s"] or 0) / (
        best["baseline"]["deliveries_per_s"] or 1
    )
    cpu = {k: min(x["server_cpu_us_per_delivery"] or 1e9 for x in v) for k, v in rounds.items()}
    emit(
        {
            "bench": "fanout",
            "clients": n,
            "client_kind": args.client_kind,
            "events": events,
            "batch": batch,
            "ws_queue_max": queue_max,
            "rounds": args.rounds,
            "signalosd": best["signalosd"],
            "baseline": best["baseline"],
            "all_rounds_deliveries_per_s": {
                k: [x["deliveries_per_s"] for x in v] for k, v in rounds.items()
            },
            # secondary, less noise-sensitive: baseline server CPU per delivery / signalosd's
            "cpu_efficiency_ratio": round(cpu["baseline"] / cpu["signalosd"], 3),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "all_delivered": complete,
            "ok": complete and ratio >= TARGET_RATIO,
            "wall_s": round(time.monotonic() - started, 1),
        }
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--batch", type=int, default=10, help="events per write transaction")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs of each server")
    p.add_argument(
        "--client-kind",
        choices=("raw", "aiohttp"),
        default="raw",
        help="subscriber implementation (see README: aiohttp's is the bottleneck)",
    )
    p.add_argument("--client", nargs=2, metavar=("PORT", "TOKEN"), help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.client:
        asyncio.run(
            client_main(
                ARGS.client_kind, int(ARGS.client[0]), ARGS.client[1], ARGS.clients, ARGS.events
            )
        )
    else:
        asyncio.run(main(ARGS))
    sys.exit(0)
