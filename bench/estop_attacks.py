"""The attackers of `estop_latency.py`'s attack rounds (run as `estop_latency.py --attack KIND`
in processes of their own). They use only the daemon's public HTTP/WS API and take commands
on stdin: `start` (the attack is in place when it answers), `stop` (with what it did), `bye`.

- `heavy_reads`: clients looping on `GET /api/events?type=<rare>` with one viewer's token,
  following the cursor;
- `idle_sockets`: connections that never send a byte, or upgrade to `/ws` and never
  authenticate, reopened when the daemon closes them (at most `--reconnects-per-s`);
- `hostile_filter`: `/ws` subscribers with the worst type filter the daemon accepts (found by
  probing, after the issue's literal `****************!`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from _common import (
    HOST,
    RawHttp,
    RawWebSocket,
    percentile,
    raise_nofile,
    reply,
    rnd,
    stdin_line,
    wait_until,
)

LITERAL_HOSTILE = "****************!"  # the pattern (exponential as a regex)
RARE_TYPE = "bench_rare"  # what heavy_reads ask for: one event in RARE_EVERY of the log


class Attack(Protocol):
    """What the parent drives: `start` answers once the attack is in place, `stop` ends it and
    answers with what it did meanwhile."""

    async def start(self) -> dict[str, Any]: ...

    async def stop(self) -> dict[str, Any]: ...


async def cancel_all(tasks: list[asyncio.Task[None]], within: float = 10.0) -> None:
    """Cancel and wait, cancelling again what is still running: in Python 3.11 a task whose
    awaited operation completes as the cancel arrives can carry on (asyncio.wait_for swallows
    the CancelledError then), and one missed cancel must not hang the attacker."""
    deadline = time.monotonic() + within
    pending = {t for t in tasks if not t.done()}
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    if pending:
        raise RuntimeError(f"{len(pending)} attacker tasks would not stop")


def ms_summary(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1e3 for s in seconds]
    return {
        "p50_ms": rnd(percentile(ms, 50)),
        "p99_ms": rnd(percentile(ms, 99)),
        "max_ms": rnd(max(ms)) if ms else None,
    }


class HeavyReads:
    """Clients on keep-alive connections, each looping `GET /api/events?since=<cursor>&type=
    <rare>&limit=1000` through the whole log (following `last_seq`, back to 0 at the head),
    all with one viewer token of another account: the read the daemon must keep bounded and
    off the lanes that token checks and the stop use."""

    def __init__(self, port: int, token: str, clients: int) -> None:
        self.port, self.token, self.clients = port, token, clients
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> dict[str, Any]:
        self.statuses: Counter[int] = Counter()
        self.read_s: list[float] = []
        self.events = self.passes = self.reconnects = 0
        self.started = time.perf_counter()
        self.tasks = [asyncio.ensure_future(self._loop()) for _ in range(self.clients)]
        return {"clients": self.clients}

    async def _loop(self) -> None:
        http = await RawHttp.connect(self.port, self.token)
        cursor = 0
        try:
            while True:
                path = f"/api/events?since={cursor}&type={RARE_TYPE}&limit=1000"
                t = time.perf_counter()
                try:
                    status, body = await http.request("GET", path)
                except (ConnectionError, asyncio.IncompleteReadError):
                    self.reconnects += 1
                    http.close()
                    http = await RawHttp.connect(self.port, self.token)
                    continue
                self.read_s.append(time.perf_counter() - t)
                self.statuses[status] += 1
                if status != 200:  # refused (e.g. a cap): try again a little later
                    await asyncio.sleep(0.01)
                    continue
                self.events += len(body["events"])
                if body["last_seq"] <= cursor:
                    cursor, self.passes = 0, self.passes + 1
                else:
                    cursor = body["last_seq"]
        finally:
            http.close()

    async def stop(self) -> dict[str, Any]:
        await cancel_all(self.tasks)
        seconds = time.perf_counter() - self.started
        requests = sum(self.statuses.values())
        return {
            "clients": self.clients,
            "requests": requests,
            "requests_per_s": rnd(requests / seconds, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "events_returned": self.events,
            "passes_through_log": self.passes,
            "reconnects": self.reconnects,
            "read": ms_summary(self.read_s),
            "seconds": rnd(seconds),
        }


class Pacer:
    """At most `rate` reservations per second, shared by every slot (the attack stays bounded)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(self.next, now)
        self.next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class IdleSockets:
    """`slots` connections that never send a request (or, for a `ws_share` of them, upgrade to
    /ws and never authenticate), opened before the round and kept: each one the daemon closes
    (the guard aborts the oldest beyond its cap; the header or authentication deadline closes
    the silent ones) is opened again, reconnects paced to at most `rate` per second in all."""

    def __init__(self, port: int, slots: int, ws_share: float, rate: float) -> None:
        self.port, self.slots, self.rate = port, slots, rate
        self.ws_slots = round(slots * ws_share)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> dict[str, Any]:
        self.stats: Counter[str] = Counter()
        self.open = 0
        self.samples: list[int] = []
        self.pacer = Pacer(self.rate)
        self.gate = asyncio.Semaphore(64)  # the first pass: as fast as the backlog takes them
        began = time.perf_counter()
        self.tasks = [asyncio.ensure_future(self._slot(i)) for i in range(self.slots)]
        await wait_until(lambda: self.stats["first_tries"] >= self.slots, 60, "first pass")
        first_failures = self.stats["connect_failures"]
        opened = self.open
        await asyncio.sleep(0.5)
        self.started = time.perf_counter()
        self.stats.clear()  # from here on: the attack's own figures
        self.tasks.append(asyncio.ensure_future(self._sample()))
        return {
            "open_after_first_pass": opened,
            "first_pass_failures": first_failures,
            "first_pass_s": rnd(self.started - began - 0.5),
            "open_at_start": self.open,
        }

    def _upgrade(self) -> bytes:
        return (
            f"GET /ws HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    async def _slot(self, i: int) -> None:
        first = True
        while True:
            if not first:
                if self.rate <= 0:
                    return  # told not to reopen
                await self.pacer.wait()
            try:
                async with self.gate if first else contextlib.nullcontext(), asyncio.timeout(5):
                    reader, writer = await asyncio.open_connection(HOST, self.port)
            except (OSError, TimeoutError):
                self.stats["connect_failures"] += 1
                continue
            finally:
                self.stats["first_tries"] += first
                first = False
            self.stats["connects"] += 1
            self.open += 1
            try:
                if i < self.ws_slots:
                    writer.write(self._upgrade())
                while chunk := await reader.read(1 << 16):
                    if chunk.startswith(b"HTTP/1.1 101"):
                        self.stats["ws_upgraded"] += 1
            except ConnectionError:
                pass  # a reset: closed all the same
            finally:
                self.stats["closed_by_daemon"] += 1
                self.open -= 1
                writer.close()

    async def _sample(self) -> None:
        while True:
            self.samples.append(self.open)
            await asyncio.sleep(0.05)

    async def stop(self) -> dict[str, Any]:
        at_end, stats = self.open, dict(self.stats)  # before our own closes count
        seconds = time.perf_counter() - self.started
        await cancel_all(self.tasks)
        return {
            "slots": self.slots,
            "ws_slots": self.ws_slots,
            "reconnects_per_s_cap": self.rate,
            "open_avg": rnd(sum(self.samples) / len(self.samples), 1) if self.samples else None,
            "open_min": min(self.samples, default=None),
            "open_end": at_end,
            "connects": stats.get("connects", 0),
            "connects_per_s": rnd(stats.get("connects", 0) / seconds, 1),
            "connect_failures": stats.get("connect_failures", 0),
            "closed_by_daemon": stats.get("closed_by_daemon", 0),
            "ws_upgraded": stats.get("ws_upgraded", 0),
            "seconds": rnd(seconds),
        }


def hostile_patterns(count: int, length: int, end: str) -> list[str]:
    """`count` distinct type filters of `length` characters: runs of `*` (or `*e` pairs) that a
    glob -> regex translation backtracks on exponentially, ending in `end` (plus a number to
    keep them distinct) so that they match no event type."""
    out = []
    for j in range(count):
        tail = end if j == 0 else f"{end}{j}"
        body = max(0, length - len(tail))
        out.append(("*" * body if j % 2 == 0 else ("*e" * body)[:body]) + tail)
    return out


async def filter_verdict(port: int, token: str, types: list[str]) -> dict[str, Any] | None:
    """None when the daemon accepts `subscribe {types}` on /ws (the `pong` sent after it comes
    back without an `error` first), else the refusal (the `error` frame's data, or the close)."""
    ws = await RawWebSocket.connect(port)
    try:
        await ws.authenticate(token, subscribe=False)
        ws.send_text(json.dumps({"type": "subscribe", "data": {"types": types}}))
        ws.send_text(json.dumps({"type": "ping", "data": {"timestamp": "probe"}}))
        while True:
            for raw in await asyncio.wait_for(ws.read_frames(), 10):
                msg = json.loads(raw)
                if msg.get("type") == "error":
                    return dict(msg.get("data") or {})
                if msg.get("type") == "pong":
                    return None
    except ConnectionError as exc:
        return {"closed": str(exc)}
    finally:
        ws.close()


async def largest_accepted(
    verdict: Callable[[int], Awaitable[dict[str, Any] | None]], hi: int
) -> tuple[int, dict[str, Any] | None]:
    """The largest v in 1..hi the daemon accepts (limits are monotone), and the refusal of
    v + 1 (None if hi itself was accepted). Binary search: a dozen probes."""
    if await verdict(1) is not None:
        raise RuntimeError("the daemon refuses even one pattern of one character")
    refusal = await verdict(hi)
    if refusal is None:
        return hi, None
    lo = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        got = await verdict(mid)
        if got is None:
            lo = mid
        else:
            hi, refusal = mid, got
    return lo, refusal


class HostileFilter:
    """Viewers of the stopped account subscribing with the most hostile type filter the
    daemon accepts: the stopped account's, so that their filter is tested against every
    event the stops publish (another account's would be skipped before the filter); with
    `since` they first replay the log through it (it matches nothing). The filter is found
    once, at startup: the issue's literal pattern's outcome, then the longest pattern
    accepted, then the most of those."""

    def __init__(self, port: int, token: str, subscribers: int, since: int | None) -> None:
        self.port, self.token, self.subscribers, self.since = port, token, subscribers, since
        self.sockets: list[RawWebSocket] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def probe(self) -> dict[str, Any]:
        async def verdict(types: list[str]) -> dict[str, Any] | None:
            return await filter_verdict(self.port, self.token, types)

        literal = await verdict([LITERAL_HOSTILE])
        end = "!" if literal is None else "q"  # the literal's shape if accepted, else a-z0-9_*

        async def by_length(n: int) -> dict[str, Any] | None:
            return await verdict(hostile_patterns(1, n, end))

        length, too_long = await largest_accepted(by_length, 4096)
        hi = max(1, (512 << 10) // (length + 4))  # the message stays under 1 MiB

        async def by_count(n: int) -> dict[str, Any] | None:
            return await verdict(hostile_patterns(n, length, end))

        count, too_many = await largest_accepted(by_count, hi)
        self.types = hostile_patterns(count, length, end)
        return {
            "literal": {
                "pattern": LITERAL_HOSTILE,
                "outcome": "accepted" if literal is None else "refused",
                "error": literal,
            },
            "used": {"patterns": count, "length": length, "examples": self.types[:2]},
            "refused_longer": too_long,
            "refused_more": too_many,
        }

    async def start(self) -> dict[str, Any]:
        self.frames = self.errors = self.closed = 0
        self.subscribed_s: list[float] = []  # subscribe sent -> its pong back
        began = time.perf_counter()
        self.sockets = [await RawWebSocket.connect(self.port) for _ in range(self.subscribers)]
        for ws in self.sockets:
            await ws.authenticate(self.token, subscribe=False)
        data: dict[str, Any] = {"types": self.types}
        if self.since is not None:
            data["since"] = self.since
        subscribe = json.dumps({"type": "subscribe", "data": data})
        ping = json.dumps({"type": "ping", "data": {"timestamp": "subscribed"}})
        self.started = time.perf_counter()
        for ws in self.sockets:
            ws.send_text(subscribe)
            ws.send_text(ping)  # its pong comes once subscribed (after the replay, if any)
        self.tasks = [asyncio.ensure_future(self._drain(ws)) for ws in self.sockets]
        return {
            "subscribers": self.subscribers,
            "since": self.since,
            "connect_s": rnd(self.started - began),
        }

    async def _drain(self, ws: RawWebSocket) -> None:
        try:
            while True:
                for raw in await ws.read_frames():
                    kind = json.loads(raw).get("type")
                    if kind == "pong":
                        self.subscribed_s.append(time.perf_counter() - self.started)
                    elif kind == "error":
                        self.errors += 1
                    else:
                        self.frames += 1
        except ConnectionError:
            self.closed += 1

    async def stop(self) -> dict[str, Any]:
        await cancel_all(self.tasks)
        for ws in self.sockets:
            ws.close()
        return {
            "subscribers": self.subscribers,
            "subscribed": len(self.subscribed_s),
            "subscribed_s_max": rnd(max(self.subscribed_s)) if self.subscribed_s else None,
            "event_frames": self.frames,
            "errors": self.errors,
            "closed_by_daemon": self.closed,
            "seconds": rnd(time.perf_counter() - self.started),
        }


async def attacker_main(kind: str, port: int, token: str, args: argparse.Namespace) -> None:
    raise_nofile()
    attack: Attack
    ready: dict[str, Any] = {}
    if kind == "heavy_reads":
        attack = HeavyReads(port, token, args.readers)
    elif kind == "idle_sockets":
        attack = IdleSockets(port, args.sockets, args.ws_share, args.reconnects_per_s)
    else:
        since = None if args.hostile_since == "live" else int(args.hostile_since)
        hostile = attack = HostileFilter(port, token, args.hostile_subscribers, since)
        ready = await hostile.probe()
    print("READY", flush=True)
    reply(ready)
    running = False
    while (line := await stdin_line()) in ("start", "stop"):
        running = line == "start"
        reply(await (attack.start() if running else attack.stop()))
    if running:  # the parent went away mid-attack: end it all the same
        await attack.stop()
