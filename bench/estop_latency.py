"""Emergency stop latency: `POST /api/trading/emergency-stop` sent -> the agent has the command.

The server is the real daemon app in this process, behind its real front door
(`listeners.GuardedSite`). One separate process (this file with `--measure`) is both the
operator and the agent, so one clock (`perf_counter_ns`) times send -> receive: it holds a raw
HTTP/1.1 keep-alive connection (operator token) and a protocol-level agent on /ws/agent (agent
token, `hello {broker: "paper"}`, `welcome`). Per iteration it:
1. takes t0, writes the POST (`{"reason": "bench"}`) (in `fresh` mode it first opens a new TCP
   connection for it, after t0, as `signalos stop` does), then waits for both the HTTP reply and
   the agent's `command` frame of type `emergency_stop`; latency = frame parsed - t0;
2. acks the command and sends its `command_result` (ok), so the outbox stays clean;
3. resumes trading (`POST /api/trading/resume {"confirm_halt": true}`), finishes the `resume`
   command the same way and long-polls `GET /api/commands/{id}?wait=5` until it succeeded;
   so every emergency stop is a real running -> halted transition (`changed: true`, checked);
4. sleeps a random 0-20 ms, so the stops fall at every phase of the load's 20 ms ticks.

Rounds, each against the same server:
- `idle`: 1,000 stops with nothing else happening (max <= 20 ms: housekeeping such as WAL
  checkpoints must stay off the stop's path, so the daemon first gets a large event log);
- `load`: 100 /ws subscribers (viewer token, live, in another process) receive 500 events/s
  generated inside the server (every 20 ms one write transaction appending 10 events);
- three attacks, each from its own process (this file with `--attack KIND`) using only the
  public HTTP/WS API, each paired with idle stops in the same run, interleaved idle (half) ->
  attack -> idle (half), so a drift of the machine's load hits both sides alike:
  `heavy_reads` (another account's viewer: 20 clients looping rare-type event pages through a
  large log), `idle_sockets` (2,000 connections that never send a byte or never authenticate
  their WebSocket, reopened when the daemon closes them; stops on fresh connections, because
  a new connection getting in is what such an attack threatens) and `hostile_filter` (20
  viewers of the stopped account subscribed live with the most hostile type filter the daemon
  accepts; the events flowing are the stops' own; `--hostile-since 0` adds a replay of the
  whole log through the filter, which is then mostly a heavy read).

Baseline in the same run (the floor): a bare aiohttp app in this file whose POST handler does
one durable SQLite commit (sqlite3, WAL, synchronous=FULL, on one dedicated thread) and then
sends the command frame to the connected agent socket; its load is the same 10 rows every
20 ms, committed the same way and broadcast to the 100 subscribers. Same measuring code.

Targets (DESIGN §6): idle p50 <= 1.3x the floor's; idle max <= 20 ms over 1,000 stops; p99 <=
10 ms under load; p99 under each attack <= 2x the p99 of its paired idle stops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    Child,
    Daemon,
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
from estop_attacks import RARE_TYPE, attacker_main

from signalosd import keys
from signalosd.models import Role
from signalosd.ops.guard import ConnectionGuard

TARGET_P50_VS_FLOOR = 1.3
TARGET_IDLE_MAX_MS = 20.0
TARGET_LOAD_P99_MS = 10.0
TARGET_ATTACK_P99_VS_IDLE = 2.0
# The attacking processes run at the lowest CPU priority: a real attacker's clients run on its
# own machines, so what an attack may cost the daemon is the daemon's own work for them, not
# the attacker's CPU on the daemon's two cores. The daemon still serves every request.
ATTACKER_NICE = 19
TICK_S = 0.020  # load: one write transaction of BATCH events every 20 ms = 500 events/s
BATCH = 10
ESTOP = "/api/trading/emergency-stop"
RESUME = "/api/trading/resume"
ATTACKS = ("heavy_reads", "idle_sockets", "hostile_filter")
RIVAL = "rival"  # the attacking account of `heavy_reads`
BULK_TYPE = "bench_bulk"
RARE_EVERY = 10_000  # one rare event per this many bulk events: the reads scan, find little
BULK_PER_TX = 100_000
CHUNK_WARMUP = 5  # stops not counted at the start of each interleaved part


# ---- the measuring process: operator (HTTP) and agent (/ws/agent) on one clock ------------


async def one_stop(
    agent: RawAgent, keep: RawHttp, fresh: tuple[int, str] | None
) -> tuple[int, int, bool]:
    """(ns to the agent's command, ns to the HTTP reply, changed) for one emergency stop; on
    the keep-alive connection, or with `fresh` (port, token) on a new one opened after t0."""

    async def command() -> int:
        msg = await agent.next_command("emergency_stop")
        at = time.perf_counter_ns()
        agent.finish(msg["id"], data={"closed": [], "failed": []})
        return at

    async def answer(http: RawHttp) -> tuple[int, int, Any]:
        status, body = await http.response()
        return time.perf_counter_ns(), status, body

    t0 = time.perf_counter_ns()
    http = keep if fresh is None else await RawHttp.connect(*fresh)
    try:
        http.send("POST", ESTOP, {"reason": "bench"})
        t_cmd, (t_reply, status, body) = await asyncio.gather(command(), answer(http))
    finally:
        if http is not keep:
            http.close()
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
    """Answer `run N WARMUP keepalive|fresh` lines with the latencies of N stops."""
    agent = await RawAgent.connect(port, agent_token)
    http = await RawHttp.connect(port, operator_token)
    rng = random.Random(42)
    print("READY", flush=True)
    while (line := await stdin_line()).startswith("run"):
        _, iterations, warmup, mode = line.split()
        fresh = (port, operator_token) if mode == "fresh" else None
        to_agent, to_reply, unchanged = [], [], 0
        started = time.perf_counter()
        for i in range(int(warmup) + int(iterations)):
            ns_agent, ns_reply, changed = await one_stop(agent, http, fresh)
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


ACTOR = {"kind": "system", "id": None, "label": "bench"}


async def bulk_log(daemon: Daemon, account: str, n: int) -> dict[str, Any]:
    """Setup, not timed: n events of `account` (one in RARE_EVERY of RARE_TYPE) appended in
    transactions of BULK_PER_TX, then the WAL checkpointed and truncated from a connection of
    our own, so the rounds start from a settled database rather than a 100 MB WAL."""
    db = daemon.app[keys.DB]
    account_id = await account_id_of(daemon, account)
    started = time.perf_counter()

    def append(first: int, count: int) -> Callable[[Any], None]:
        def fn(tx: Any) -> None:
            for i in range(first, first + count):
                kind = RARE_TYPE if i % RARE_EVERY == 0 else BULK_TYPE
                tx.append_event(account_id, kind, {"i": i, "symbol": "EURUSD", "p": 1.08765}, ACTOR)

        return fn

    for first in range(0, n, BULK_PER_TX):
        await db.write(append(first, min(BULK_PER_TX, n - first)))
    appended = time.perf_counter()
    checkpoint = await asyncio.to_thread(truncate_wal, daemon.settings.db_path)
    return {
        "events": n,
        "rare_events": (n + RARE_EVERY - 1) // RARE_EVERY,
        "append_s": rnd(appended - started),
        "checkpoint_s": rnd(time.perf_counter() - appended),
        "checkpoint": checkpoint,
    }


async def account_id_of(daemon: Daemon, name: str) -> int:
    row = await daemon.app[keys.DB].read(lambda tx: tx.account_by_name(name))
    if row is None:
        raise RuntimeError(f"no account {name!r}")
    return int(row["id"])


def truncate_wal(path: Path, within: float = 60.0) -> dict[str, int]:
    """PRAGMA wal_checkpoint(TRUNCATE) until it is not busy (the daemon's own checkpointer
    may hold the checkpoint lock: then SQLite answers busy at once, without waiting)."""
    conn = sqlite3.connect(path, isolation_level=None)
    deadline = time.monotonic() + within
    tries = 0
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        while True:
            tries += 1
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy or time.monotonic() > deadline:
                return {"busy": busy, "wal_frames": frames, "copied": copied, "tries": tries}
            time.sleep(0.05)
    finally:
        conn.close()


class DaemonSampler:
    """What the daemon process (this one) does during a part of a round: CPU share, open
    files, the front door's unauthenticated connections and how many it closed, and what
    could explain a slow stop: the event loop's worst lag (a 20 ms timer firing late) and
    the garbage collector's pauses."""

    def __init__(self, guard: ConnectionGuard | None) -> None:
        self.guard = guard  # None: the bare server has no front door

    def _unauthenticated(self) -> int:
        return self.guard.unauthenticated if self.guard is not None else 0

    def _closed(self) -> int:
        return self.guard.closed_total if self.guard is not None else 0

    async def during(
        self, work: Awaitable[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        samples: list[tuple[int, int]] = []
        lags: list[float] = []
        pauses: list[tuple[int, float, int]] = []  # (generation, seconds, objects freed)
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                seconds = time.perf_counter() - gc_started[0]
                pauses.append((info["generation"], seconds, info["collected"]))

        async def sample() -> None:
            while True:
                samples.append((self._unauthenticated(), len(os.listdir("/proc/self/fd"))))
                await asyncio.sleep(0.1)

        async def lag() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + 0.02
                await asyncio.sleep(0.02)
                lags.append(loop.time() - due)

        closed0, cpu0, wall0 = self._closed(), time.process_time(), time.perf_counter()
        tasks = [asyncio.ensure_future(sample()), asyncio.ensure_future(lag())]
        gc.callbacks.append(on_gc)
        try:
            result = await work
        finally:
            gc.callbacks.remove(on_gc)
            for task in tasks:
                task.cancel()
        wall = time.perf_counter() - wall0
        unauth = [u for u, _ in samples] or [0]
        return result, {
            "server_cpu_pct": rnd(100 * (time.process_time() - cpu0) / wall, 1),
            "loop_lag_max_ms": rnd(max(lags, default=0.0) * 1e3, 1),
            "gc_pauses": len(pauses),
            "gc_max_ms": rnd(max((d for _, d, _ in pauses), default=0.0) * 1e3, 1),
            "gc_gen2": sum(g == 2 for g, _, _ in pauses),
            "gc_gen2_freed": sum(n for g, _, n in pauses if g == 2),
            "unauthenticated_avg": rnd(sum(unauth) / len(unauth), 1),
            "unauthenticated_max": max(unauth),
            "closed_by_guard": self._closed() - closed0,
            "open_files_max": max((f for _, f in samples), default=None),
        }


def combined(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two samplings of the server (the two idle halves of a paired round) as one."""
    out = {}
    for key, x in a.items():
        y = b[key]
        if x is None or y is None:
            out[key] = x if y is None else y
        elif key.endswith(("_max", "_max_ms")):
            out[key] = max(x, y)
        elif key.endswith(("_avg", "_pct")):
            out[key] = rnd((x + y) / 2, 1)
        else:
            out[key] = x + y
    return out


@dataclass
class Stopper:
    """The measuring process and a sampler of the server's process: one call per part."""

    measurer: Child
    sampler: DaemonSampler

    async def run(
        self, n: int, warmup: int, mode: str = "keepalive"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the measurer's raw latencies of n stops, what the server process did meanwhile)."""
        return await self.sampler.during(
            self.measurer.ask(f"run {n} {warmup} {mode}", 60 + 0.2 * (n + warmup))
        )


def summary(raw: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    return {
        "to_agent": latency_summary(raw["agent_ns"]),
        "to_http_reply": latency_summary(raw["reply_ns"]),
        "unchanged": raw["unchanged"],
        "seconds": rnd(raw["seconds"]),
        "server": server,
    }


def merged(*raws: dict[str, Any]) -> dict[str, Any]:
    """Several parts of one scenario as one sample."""
    return {
        "agent_ns": [x for r in raws for x in r["agent_ns"]],
        "reply_ns": [x for r in raws for x in r["reply_ns"]],
        "unchanged": sum(r["unchanged"] for r in raws),
        "seconds": sum(r["seconds"] for r in raws),
    }


def idle_summary(raw: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    """The long idle round also says how many stops missed the max target, and the worst."""
    ms = sorted((x / 1e6 for x in raw["agent_ns"]), reverse=True)
    return summary(raw, server) | {
        "over_max_target": sum(x > TARGET_IDLE_MAX_MS for x in ms),
        "slowest_ms": [rnd(x) for x in ms[:5]],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return rnd(a / b) if a and b else None


# ---- the rounds ---------------------------------------------------------------------------


async def load_round(
    stopper: Stopper,
    port: int,
    viewer: str,
    tick: Callable[[], Awaitable[None]],
    subscribed: Callable[[], int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Stops while `args.subscribers` live subscribers receive BATCH events every TICK_S."""
    log(f"load: {args.subscribers} subscribers x {BATCH / TICK_S:g} events/s")
    subs = await spawn_child(
        __file__, "--subscribers-of", str(port), viewer, "--subscribers", str(args.subscribers)
    )
    stop = asyncio.Event()
    generator: asyncio.Future[float] | None = None
    try:
        await wait_until(lambda: subscribed() >= args.subscribers, 30, "subscribers")
        generator = asyncio.ensure_future(ticker(tick, stop))
        await asyncio.sleep(0.5)  # settle at the steady rate first
        before = await subs.ask("count", 10)
        started = time.monotonic()
        raw, server = await stopper.run(args.iterations, args.warmup)
        after = await subs.ask("count", 10)
        elapsed = time.monotonic() - started
        stop.set()
        ticks_per_s = await generator
    finally:
        stop.set()
        if generator is not None and not generator.done():
            await asyncio.wait([generator], timeout=5)
        await subs.bye()
    return summary(raw, server) | {
        "subscribers": args.subscribers,
        "events_per_s_generated": rnd(ticks_per_s * BATCH, 0),
        "frames_per_s_delivered": rnd((after["frames"] - before["frames"]) / elapsed, 0),
        "subscribers_closed": after["closed"],
        "subscriber_errors": after["errors"],
    }


async def attack_round(
    kind: str, stopper: Stopper, port: int, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Idle (half) -> attack -> idle (half) on one server, the attack in its own process."""
    extra = [
        *("--readers", str(args.readers), "--sockets", str(args.sockets)),
        *("--ws-share", str(args.ws_share), "--reconnects-per-s", str(args.reconnects_per_s)),
        *("--hostile-subscribers", str(args.hostile_subscribers)),
        *("--hostile-since", args.hostile_since),
    ]
    attacker = await spawn_child(
        __file__, "--attack", kind, str(port), token, *extra, niceness=ATTACKER_NICE
    )
    mode = "fresh" if kind == "idle_sockets" else "keepalive"
    n = args.attack_iterations
    try:
        setup = await attacker.report(60)
        log(f"{kind}: idle, {n // 2} stops ({mode})")
        idle_a, server_a = await stopper.run(n // 2, CHUNK_WARMUP, mode)
        started = await attacker.ask("start", 120)
        log(f"{kind}: under attack, {n} stops ({mode}); attacker: {started}")
        attacked, server = await stopper.run(n, CHUNK_WARMUP, mode)
        stats = await attacker.ask("stop", 60)
        log(f"{kind}: idle, {n - n // 2} stops ({mode}); attacker: {stats}")
        idle_b, server_b = await stopper.run(n - n // 2, CHUNK_WARMUP, mode)
    finally:
        await attacker.bye()
    idle = summary(merged(idle_a, idle_b), combined(server_a, server_b))
    attack = summary(attacked, server)
    result = {
        "connection": mode,
        "idle": idle,
        "attack": attack,
        "ratio_p99": ratio(attack["to_agent"]["p99_ms"], idle["to_agent"]["p99_ms"]),
        "attacker": started | stats,
    }
    if setup:
        result["filter"] = setup
    log(f"{kind}: {result}")
    return result


async def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """The floor server: idle and load, with the same measuring process."""
    tmp = tempfile.TemporaryDirectory(prefix="signalos-bench-")
    bare = Bare(Path(tmp.name) / "bare.db")
    runner = await start_app(bare.app())
    port = port_of(runner)
    measurer = await spawn_child(__file__, "--measure", str(port), "op", "agent")
    stopper = Stopper(measurer, DaemonSampler(None))
    try:
        log(f"baseline: idle, {args.idle_iterations} stops")
        idle = idle_summary(*await stopper.run(args.idle_iterations, args.warmup))
        load = await load_round(
            stopper, port, "viewer", bare.tick, lambda: len(bare.subscribers), args
        )
    finally:
        await measurer.bye()
        await runner.cleanup()
        bare.thread.shutdown()
        bare.conn.close()
        tmp.cleanup()
    result = {"idle": idle, "load": load}
    log(f"baseline: {result}")
    return result


async def run_signalosd(args: argparse.Namespace) -> dict[str, Any]:
    """The daemon: a large log first, then idle, load and each attack paired with idle."""
    daemon = await start_daemon()
    try:
        db, bus = daemon.app[keys.DB], daemon.app[keys.BUS]
        default_id = await account_id_of(daemon, "default")
        operator, agent, viewer = [
            await daemon.make_token(r) for r in (Role.OPERATOR, Role.AGENT, Role.VIEWER)
        ]
        rival_viewer = await daemon.make_token(Role.VIEWER, account=RIVAL)
        log(f"signalosd: appending {args.bulk_events} events of account {RIVAL!r} (setup)")
        setup = await bulk_log(daemon, RIVAL, args.bulk_events)
        if args.gc_freeze:  # diagnostic: what gc.freeze() at the daemon's start would change
            gc.collect()
            gc.freeze()
            setup["gc_frozen_objects"] = gc.get_freeze_count()

        def append(tx: Any) -> None:
            for _ in range(BATCH):
                tx.append_event(default_id, "bench_tick", tick_data(), ACTOR)

        async def tick() -> None:
            await db.write(append)

        measurer = await spawn_child(__file__, "--measure", str(daemon.port), operator, agent)
        stopper = Stopper(measurer, DaemonSampler(daemon.guard))
        try:
            log(f"signalosd: idle, {args.idle_iterations} stops")
            idle = idle_summary(*await stopper.run(args.idle_iterations, args.warmup))
            result: dict[str, Any] = {"setup": setup, "idle": idle}
            result["load"] = await load_round(
                stopper, daemon.port, viewer, tick, lambda: len(bus), args
            )
            tokens = {"heavy_reads": rival_viewer, "idle_sockets": "-", "hostile_filter": viewer}
            result["attacks"] = {
                kind: await attack_round(kind, stopper, daemon.port, tokens[kind], args)
                for kind in args.attacks
            }
        finally:
            await measurer.bye()
        return result
    finally:
        await daemon.stop()


# ---- targets and output -------------------------------------------------------------------


def check(value: float | None, target: float, **figures: Any) -> dict[str, Any]:
    return {
        "value": value,
        "target": target,
        **figures,
        "ok": value is not None and value <= target,
    }


def targets(sig: dict[str, Any], base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every DESIGN §6 target of the emergency stop, each with its same-run baseline."""
    idle, floor = sig["idle"]["to_agent"], base["idle"]["to_agent"]
    out = {
        "idle_p50_vs_floor": check(
            ratio(idle["p50_ms"], floor["p50_ms"]),
            TARGET_P50_VS_FLOOR,
            p50_ms=idle["p50_ms"],
            floor_p50_ms=floor["p50_ms"],
        ),
        "idle_max_ms": check(
            idle["max_ms"], TARGET_IDLE_MAX_MS, n=idle["n"], floor_max_ms=floor["max_ms"]
        ),
        "load_p99_ms": check(
            sig["load"]["to_agent"]["p99_ms"],
            TARGET_LOAD_P99_MS,
            n=sig["load"]["to_agent"]["n"],
            floor_p99_ms=base["load"]["to_agent"]["p99_ms"],
        ),
    }
    for kind, r in sig["attacks"].items():
        out[f"{kind}_p99_vs_idle"] = check(
            r["ratio_p99"],
            TARGET_ATTACK_P99_VS_IDLE,
            p99_ms=r["attack"]["to_agent"]["p99_ms"],
            idle_p99_ms=r["idle"]["to_agent"]["p99_ms"],
            n=r["attack"]["to_agent"]["n"],
        )
    return out


def attacks_ran(attacks: dict[str, Any]) -> dict[str, bool]:
    """Each attack did what it says (else its ratio proves nothing)."""
    ran = {}
    for kind, r in attacks.items():
        a = r["attacker"]
        if kind == "heavy_reads":
            ran[kind] = a["statuses"].get("200", 0) > 0
        elif kind == "idle_sockets":
            ran[kind] = (a["open_avg"] or 0) > 0
        else:
            ran[kind] = a["subscribed"] == a["subscribers"] and a["closed_by_daemon"] == 0
    return ran


def closing_note(checks: dict[str, dict[str, Any]]) -> None:
    """The figures and their same-run baselines, readable, on stderr."""
    log("emergency stop, to_agent (ms) — figure, same-run baseline, target:")
    for name, c in checks.items():
        if name == "idle_p50_vs_floor":
            text = f"p50 {c['p50_ms']} vs floor {c['floor_p50_ms']} = {c['value']}x"
        elif name == "idle_max_ms":
            text = f"max {c['value']} over {c['n']} stops (floor's max {c['floor_max_ms']})"
        elif name == "load_p99_ms":
            text = f"p99 {c['value']} (floor's p99 {c['floor_p99_ms']})"
        else:
            text = f"p99 {c['p99_ms']} vs paired idle {c['idle_p99_ms']} = {c['value']}x"
        unit = "ms" if name.endswith("_ms") else "x"
        log(f"  {name:<26} {text:<52} <= {c['target']:g}{unit}  {'ok' if c['ok'] else 'MISSED'}")


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    started = time.monotonic()
    baseline = await run_baseline(args)
    signalosd = await run_signalosd(args)
    checks = targets(signalosd, baseline)
    stops = [signalosd["idle"], signalosd["load"]]
    stops += [r[part] for r in signalosd["attacks"].values() for part in ("idle", "attack")]
    every_change = all(s["unchanged"] == 0 for s in stops)
    delivered = signalosd["load"]["subscribers_closed"] == 0
    ran = attacks_ran(signalosd["attacks"])
    emit(
        {
            "bench": "estop_latency",
            "iterations": args.iterations,
            "idle_iterations": args.idle_iterations,
            "attack_iterations": args.attack_iterations,
            "warmup": args.warmup,
            "signalosd": signalosd,
            "baseline": baseline,
            "ratio_p99_vs_floor": {
                s: ratio(signalosd[s]["to_agent"]["p99_ms"], baseline[s]["to_agent"]["p99_ms"])
                for s in ("idle", "load")
            },
            "targets": checks,
            "targets_met": {name: c["ok"] for name, c in checks.items()},
            "every_stop_changed_mode": every_change,
            "load_delivered": delivered,
            "attacks_ran": ran,
            "ok": all(c["ok"] for c in checks.values())
            and every_change
            and delivered
            and all(ran.values()),
            "wall_s": round(time.monotonic() - started, 1),
        }
    )
    closing_note(checks)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=200, help="stops under load")
    p.add_argument("--idle-iterations", type=int, default=1000, help="idle stops, each server")
    p.add_argument(
        "--attack-iterations",
        type=int,
        default=200,
        help="stops under each attack (+ as many idle)",
    )
    p.add_argument("--warmup", type=int, default=20, help="stops not counted, idle and load")
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--bulk-events", type=int, default=300_000, help="the rival account's log")
    p.add_argument(
        "--attacks", type=lambda s: [a for a in s.split(",") if a], default=list(ATTACKS)
    )
    p.add_argument("--readers", type=int, default=20, help="heavy_reads: concurrent clients")
    p.add_argument("--sockets", type=int, default=2000, help="idle_sockets: connections held")
    p.add_argument("--ws-share", type=float, default=0.25, help="idle_sockets: share on /ws")
    p.add_argument(
        "--reconnects-per-s", type=float, default=500.0, help="idle_sockets: cap (0: none)"
    )
    p.add_argument("--hostile-subscribers", type=int, default=20, help="hostile_filter")
    p.add_argument(
        "--hostile-since",
        default="live",
        help="hostile_filter: subscribe live, or replay from this seq (0: the whole log)",
    )
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="diagnostic: gc.freeze() the server process's heap before the daemon's rounds",
    )
    p.add_argument(
        "--measure", nargs=3, metavar=("PORT", "OPERATOR", "AGENT"), help=argparse.SUPPRESS
    )
    p.add_argument("--subscribers-of", nargs=2, metavar=("PORT", "TOKEN"), help=argparse.SUPPRESS)
    p.add_argument("--attack", nargs=3, metavar=("KIND", "PORT", "TOKEN"), help=argparse.SUPPRESS)
    args = p.parse_args()
    unknown = set(args.attacks) - set(ATTACKS)
    if unknown:
        p.error(f"unknown attacks {sorted(unknown)}; choose from {','.join(ATTACKS)}")
    return args


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.measure:
        asyncio.run(measure_main(int(ARGS.measure[0]), ARGS.measure[1], ARGS.measure[2]))
    elif ARGS.subscribers_of:
        asyncio.run(
            subscribers_main(int(ARGS.subscribers_of[0]), ARGS.subscribers_of[1], ARGS.subscribers)
        )
    elif ARGS.attack:
        kind, port, token = ARGS.attack
        asyncio.run(attacker_main(kind, int(port), token, ARGS))
    else:
        asyncio.run(main(ARGS))
    sys.exit(0)
