"""Emergency stop latency: `POST /api/trading/emergency-stop` sent -> the agent has the command.

The server is the real daemon app in this process. One separate process (this file with
`--measure`) is both the operator and the agent, so one clock (`perf_counter_ns`) times send ->
receive: it holds a raw HTTP/1.1 keep-alive connection (operator token) and a protocol-level
agent on /ws/agent (agent token, `hello {broker: "paper"}`, `welcome`). Per iteration it:
1. takes t0, writes the POST (`{"reason": "bench"}`), then waits for both the HTTP reply and the
   agent's `command` frame of type `emergency_stop`; latency = frame parsed - t0;
2. acks the command and sends its `command_result` (ok), so the outbox stays clean;
3. resumes trading (`POST /api/trading/resume {"confirm_halt": true}`), finishes the `resume`
   command the same way and long-polls `GET /api/commands/{id}?wait=5` until it succeeded;
   so every emergency stop is a real running -> halted transition (`changed: true`, checked);
4. sleeps a random 0-20 ms, so the stops fall at every phase of the load's 20 ms ticks.

Scenarios: `idle` (nothing else happening) and `load`: 100 /ws subscribers (viewer token,
subscribed live, in a third process, this file with `--subscribers`) receive 500 events/s
generated inside the server: every 20 ms one write transaction appending 10 events.

Baseline in the same run (the floor): a bare aiohttp app in this file whose POST handler does
one durable SQLite commit (sqlite3, WAL, synchronous=FULL, on one dedicated thread) and then
sends the command frame to the connected agent socket; its load is the same 10 rows every
20 ms, committed the same way and broadcast to the 100 subscribers. Same measuring code.

Targets (DESIGN §6): p99 <= 3 ms idle, <= 10 ms under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    Child,
    RawAgent,
    RawHttp,
    durable_connection,
    emit,
    latency_summary,
    log,
    open_many_raw,
    port_of,
    raise_nofile,
    reply,
    rnd,
    spawn_child,
    start_app,
    start_daemon,
    stdin_line,
    wait_until,
)
from aiohttp import WSMsgType, web

from signalosd import keys
from signalosd.models import Role

TARGET_P99_MS = {"idle": 3.0, "load": 10.0}
TICK_S = 0.020  # load: one write transaction of BATCH events every 20 ms = 500 events/s
BATCH = 10
ESTOP = "/api/trading/emergency-stop"
RESUME = "/api/trading/resume"


# ---- the measuring process: operator (HTTP) and agent (/ws/agent) on one clock ------------


async def one_stop(http: RawHttp, agent: RawAgent) -> tuple[int, int, bool]:
    """(ns to the agent's command, ns to the HTTP reply, changed) for one emergency stop."""

    async def command() -> int:
        msg = await agent.next_command("emergency_stop")
        at = time.perf_counter_ns()
        agent.finish(msg["id"], data={"closed": [], "failed": []})
        return at

    async def answer() -> tuple[int, int, Any]:
        status, body = await http.response()
        return time.perf_counter_ns(), status, body

    t0 = time.perf_counter_ns()
    http.send("POST", ESTOP, {"reason": "bench"})
    t_cmd, (t_reply, status, body) = await asyncio.gather(command(), answer())
    if status != 202:
        raise RuntimeError(f"emergency stop answered {status}: {body}")
    return t_cmd - t0, t_reply - t0, bool(body.get("changed"))


async def resume(http: RawHttp, agent: RawAgent) -> None:
    status, body = await http.request("POST", RESUME, {"confirm_halt": True})
    if status != 202:
        raise RuntimeError(f"resume answered {status}: {body}")
    msg = await agent.next_command("resume")
    agent.finish(msg["id"], data={"mode": "running"})
    status, body = await http.request("GET", f"/api/commands/{msg['id']}?wait=5")
    if status != 200 or body["command"]["status"] != "succeeded":
        raise RuntimeError(f"resume command not finished: {status} {body}")


async def measure_main(port: int, operator_token: str, agent_token: str) -> None:
    agent = await RawAgent.connect(port, agent_token)
    http = await RawHttp.connect(port, operator_token)
    rng = random.Random(42)
    print("READY", flush=True)
    while (line := await stdin_line()).startswith("run"):
        _, iterations, warmup = line.split()
        to_agent, to_reply, unchanged = [], [], 0
        started = time.perf_counter()
        for i in range(int(warmup) + int(iterations)):
            ns_agent, ns_reply, changed = await one_stop(http, agent)
            await resume(http, agent)
            if i >= int(warmup):
                to_agent.append(ns_agent)
                to_reply.append(ns_reply)
                unchanged += not changed
            await asyncio.sleep(rng.uniform(0, TICK_S))
        reply(
            {
                "agent_ns": to_agent,
                "reply_ns": to_reply,
                "unchanged": unchanged,
                "seconds": time.perf_counter() - started,
            }
        )
    agent.close()
    http.close()


# ---- the subscribers' process -------------------------------------------------------------


async def subscribers_main(port: int, token: str, n: int) -> None:
    """n live /ws subscribers that read (and count) every frame until told to stop."""
    raise_nofile()
    sockets = await open_many_raw(port, token, n)
    counts = [0] * n
    errors: list[str] = []

    async def drain(i: int) -> None:
        try:
            while True:
                counts[i] += len(await sockets[i].read_frames())
        except ConnectionError as exc:
            errors.append(repr(exc))

    tasks = [asyncio.ensure_future(drain(i)) for i in range(n)]
    print("READY", flush=True)
    while await stdin_line() == "count":
        reply({"frames": sum(counts), "errors": errors[:3], "closed": len(errors)})
    for task in tasks:
        task.cancel()
    for ws in sockets:
        ws.close()


# ---- the servers and their load -----------------------------------------------------------


async def ticker(tick: Callable[[], Awaitable[None]], stop: asyncio.Event) -> float:
    """Run `tick` every TICK_S (on an absolute schedule) until `stop`; return ticks per second."""
    loop = asyncio.get_running_loop()
    started = due = loop.time()
    ticks = 0
    while not stop.is_set():
        await tick()
        ticks += 1
        due += TICK_S
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            due = loop.time()  # behind: do not burst to catch up
    return ticks / (loop.time() - started)


class Bare:
    """The floor: one durable SQLite commit on one thread, then a frame to the agent socket."""

    def __init__(self, path: Path) -> None:
        self.conn = durable_connection(path)
        self.conn.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, kind TEXT, data TEXT)")
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="bare-sqlite")
        self.agent: web.WebSocketResponse | None = None
        self.subscribers: list[web.WebSocketResponse] = []
        self.seq = 0
        self.ticks = 0

    def _commit(self, rows: list[tuple[str, str]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT INTO log (kind, data) VALUES (?, ?)", rows)
        self.conn.execute("COMMIT")

    async def commit(self, rows: list[tuple[str, str]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.thread, self._commit, rows)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(ESTOP, lambda r: self.control(r, "emergency_stop"))
        app.router.add_post(RESUME, lambda r: self.control(r, "resume"))
        app.router.add_get("/api/commands/{id}", self.command_status)
        app.router.add_get("/ws/agent", self.agent_stream)
        app.router.add_get("/ws", self.stream)
        return app

    async def control(self, request: web.Request, kind: str) -> web.Response:
        params = await request.json()
        command_id = str(uuid.uuid4())
        await self.commit([(kind, json.dumps(params))])
        if self.agent is not None:
            await self.agent.send_str(
                json.dumps(
                    {
                        "id": command_id,
                        "type": "command",
                        "data": {"id": command_id, "type": kind, "params": params},
                        "timestamp": "2026-01-05T09:00:00.000Z",
                    }
                )
            )
        return web.json_response(
            {"mode": "halted", "changed": True, "command": {"id": command_id}}, status=202
        )

    async def command_status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"command": {"id": request.match_info["id"], "status": "succeeded"}}
        )

    async def agent_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            kind = json.loads(msg.data).get("type")
            if kind == "authenticate":
                await ws.send_str('{"type":"authenticated","data":{}}')
            elif kind == "hello":
                await ws.send_str('{"type":"welcome","data":{}}')
                self.agent = ws
        return ws

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    kind = json.loads(msg.data).get("type")
                    if kind == "authenticate":
                        await ws.send_str('{"type":"authenticated","data":{}}')
                    elif kind == "subscribe":
                        self.subscribers.append(ws)
        finally:
            if ws in self.subscribers:
                self.subscribers.remove(ws)
        return ws

    async def tick(self) -> None:
        rows = [("bench_tick", json.dumps(tick_data())) for _ in range(BATCH)]
        await self.commit(rows)
        for _, data in rows:
            self.seq += 1
            text = (
                f'{{"id":"evt_{self.seq}","type":"bench_tick","seq":{self.seq},"data":{data},'
                f'"timestamp":"2026-01-05T09:00:00.000Z","account":"default",'
                f'"actor":{{"kind":"system"}}}}'
            )
            for ws in self.subscribers:
                await ws.send_str(text)


def tick_data() -> dict[str, Any]:
    return {"t": time.time_ns(), "symbol": "EURUSD", "price": 1.08765, "profit": 12.5}


async def run_server(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both scenarios against one server: idle, then under the subscribers' load."""
    stop = asyncio.Event()
    cleanup: list[Callable[[], Awaitable[None]]] = []
    children: list[Child] = []
    generator: asyncio.Future[float] | None = None
    try:
        if name == "signalosd":
            daemon = await start_daemon()
            cleanup.append(daemon.stop)
            db, bus = daemon.app[keys.DB], daemon.app[keys.BUS]
            account_id = int((await db.read(lambda tx: tx.account_by_name("default")))["id"])
            port = daemon.port
            tokens = [await daemon.make_token(r) for r in (Role.OPERATOR, Role.AGENT, Role.VIEWER)]
            actor = {"kind": "system", "id": None, "label": "bench"}

            def append(tx: Any) -> None:
                for _ in range(BATCH):
                    tx.append_event(account_id, "bench_tick", tick_data(), actor)

            async def tick() -> None:
                await db.write(append)

            def subscribed() -> int:
                return len(bus)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="signalos-bench-")
            bare = Bare(Path(tmp.name) / "bare.db")
            runner = await start_app(bare.app())

            async def stop_bare() -> None:
                await runner.cleanup()
                bare.thread.shutdown()
                bare.conn.close()
                tmp.cleanup()

            cleanup.append(stop_bare)
            port, tokens, tick = port_of(runner), ["op", "agent", "viewer"], bare.tick

            def subscribed() -> int:
                return len(bare.subscribers)

        measurer = await spawn_child(__file__, "--measure", str(port), tokens[0], tokens[1])
        children.append(measurer)
        run = f"run {args.iterations} {args.warmup}"
        log(f"{name}: idle, {args.iterations} emergency stops")
        idle = await measurer.ask(run, 120)

        log(f"{name}: load, {args.subscribers} subscribers x {BATCH / TICK_S:g} events/s")
        subs = await spawn_child(
            __file__,
            "--subscribers-of",
            str(port),
            tokens[2],
            "--subscribers",
            str(args.subscribers),
        )
        children.append(subs)
        await wait_until(lambda: subscribed() >= args.subscribers, 30, "subscribers")
        generator = asyncio.ensure_future(ticker(tick, stop))
        await asyncio.sleep(0.5)  # settle at the steady rate first
        before = await subs.ask("count", 10)
        started = time.monotonic()
        load = await measurer.ask(run, 120)
        after = await subs.ask("count", 10)
        elapsed = time.monotonic() - started
        stop.set()
        ticks_per_s = await generator
        result = {"idle": summary(idle), "load": summary(load)}
        result["load"] |= {
            "subscribers": args.subscribers,
            "events_per_s_generated": rnd(ticks_per_s * BATCH, 0),
            "frames_per_s_delivered": rnd((after["frames"] - before["frames"]) / elapsed, 0),
            "subscribers_closed": after["closed"],
            "subscriber_errors": after["errors"],
        }
        log(f"{name}: {result}")
        return result
    finally:
        stop.set()
        if generator is not None and not generator.done():
            await asyncio.wait([generator], timeout=5)
        for child in reversed(children):
            await child.bye()
        for fn in reversed(cleanup):
            await fn()


def summary(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "to_agent": latency_summary(raw["agent_ns"]),
        "to_http_reply": latency_summary(raw["reply_ns"]),
        "unchanged": raw["unchanged"],
        "seconds": rnd(raw["seconds"]),
    }


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    started = time.monotonic()
    baseline = await run_server("baseline", args)
    signalosd = await run_server("signalosd", args)
    ratio, met = {}, {}
    for scenario, target in TARGET_P99_MS.items():
        p99 = signalosd[scenario]["to_agent"]["p99_ms"]
        floor = baseline[scenario]["to_agent"]["p99_ms"]
        ratio[scenario] = rnd(p99 / floor if p99 and floor else float("nan"))
        met[scenario] = p99 is not None and p99 <= target
    every_change = signalosd["idle"]["unchanged"] == 0 and signalosd["load"]["unchanged"] == 0
    delivered = signalosd["load"]["subscribers_closed"] == 0
    emit(
        {
            "bench": "estop_latency",
            "iterations": args.iterations,
            "warmup": args.warmup,
            "signalosd": signalosd,
            "baseline": baseline,
            "ratio_p99": ratio,
            "target_p99_ms": TARGET_P99_MS,
            "targets_met": met,
            "every_stop_changed_mode": every_change,
            "load_delivered": delivered,
            "ok": all(met.values()) and every_change and delivered,
            "wall_s": round(time.monotonic() - started, 1),
        }
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20, help="stops not counted, per scenario")
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument(
        "--measure", nargs=3, metavar=("PORT", "OPERATOR", "AGENT"), help=argparse.SUPPRESS
    )
    p.add_argument("--subscribers-of", nargs=2, metavar=("PORT", "TOKEN"), help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.measure:
        asyncio.run(measure_main(int(ARGS.measure[0]), ARGS.measure[1], ARGS.measure[2]))
    elif ARGS.subscribers_of:
        asyncio.run(
            subscribers_main(int(ARGS.subscribers_of[0]), ARGS.subscribers_of[1], ARGS.subscribers)
        )
    else:
        asyncio.run(main(ARGS))
    sys.exit(0)
