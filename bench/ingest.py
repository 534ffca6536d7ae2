"""Agent ingest: `trade_update`s per second, persisted durably (group commit) and broadcast.

The server is the real daemon app in this process. One agent connection in a separate process
(this file with `--agent`: agent token, `hello {broker: "paper"}`, `welcome`) pre-encodes N
(50,000) `trade_update` frames for 100 tickets (every update changes price_current and profit,
so each one is a real change) and, on "go", writes them as fast as the socket takes them.
A /ws subscriber in another process (this file with `--subscriber`, viewer token, subscribed
live) counts the resulting events (`trade_opened` for each ticket's first update, then
`trade_update`). Both stamp `time.time_ns()` (one system clock; loopback only):
updates/s = N / (subscriber has the N-th resulting event - agent's first send).
Also reported: the daemon side (a bus listener stamps the N-th resulting event published, i.e.
committed) and the agent's own send rate. Afterwards the event log is counted in SQLite:
the trade_opened + trade_update events must equal N, and the mirror must hold 100 trades.

Baselines in the same run (DESIGN §6, for scale): single-row durable commits/s (sqlite3, WAL,
synchronous=FULL, one INSERT + COMMIT per row, for ~2 s) and batched rows/s (executemany of the
same rows in one transaction).

Target (DESIGN §6): >= 20,000 updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    Child,
    RawAgent,
    RawWebSocket,
    durable_connection,
    emit,
    log,
    raise_nofile,
    reply,
    rnd,
    spawn_child,
    start_daemon,
    stdin_line,
    text_frame,
    wait_until,
)

from signalosd import keys
from signalosd.models import Role

TARGET_PER_S = 20_000
RESULTING = ("trade_opened", "trade_update")
WAIT_S = 60.0
FIRST_TICKET = 5_000_000


def position(i: int, tickets: int) -> dict[str, Any]:
    """The i-th update: ticket i % tickets, with prices that never repeat."""
    return {
        "ticket": FIRST_TICKET + i % tickets,
        "symbol": "EURUSD",
        "type": "buy",
        "volume": 0.1,
        "price_open": 1.08,
        "price_current": round(1.08 + i * 1e-6, 6),
        "sl": 1.07,
        "tp": 1.1,
        "profit": round(i * 0.01, 2),
        "swap": 0.0,
        "time": "2026-01-05T09:00:00Z",
    }


# ---- the agent's process ------------------------------------------------------------------


async def agent_main(port: int, token: str, n: int, tickets: int, chunk: int) -> None:
    agent = await RawAgent.connect(port, token)
    blobs = [
        b"".join(
            text_frame(
                json.dumps(
                    {
                        "id": f"m{i}",
                        "type": "trade_update",
                        "data": position(i, tickets),
                        "timestamp": "2026-01-05T09:00:00.000Z",
                    },
                    separators=(",", ":"),
                )
            )
            for i in range(start, min(start + chunk, n))
        )
        for start in range(0, n, chunk)
    ]
    errors: list[str] = []

    async def read_replies() -> None:  # the daemon answers nothing unless a message is bad
        try:
            while True:
                for raw in await agent.ws.read_frames():
                    msg = json.loads(raw)
                    if msg.get("type") == "error":
                        errors.append(json.dumps(msg["data"])[:300])
        except ConnectionError as exc:
            errors.append(repr(exc))

    reader = asyncio.ensure_future(read_replies())
    print("READY", flush=True)
    await stdin_line()  # "go"
    writer = agent.ws.writer
    first_ns = time.time_ns()
    for blob in blobs:
        writer.write(blob)
        await writer.drain()
    sent_ns = time.time_ns()
    await asyncio.sleep(0.2)  # let a late error frame arrive
    reply({"first_ns": first_ns, "sent_ns": sent_ns, "errors": errors[:3], "n_errors": len(errors)})
    await stdin_line()  # "bye"
    reader.cancel()
    agent.close()


# ---- the subscriber's process -------------------------------------------------------------


async def subscriber_main(port: int, token: str, n: int) -> None:
    ws = await RawWebSocket.connect(port)
    await ws.authenticate(token)
    marks = [b'"type":"' + kind.encode() + b'"' for kind in RESULTING]
    received, other, last_ns, error = 0, 0, 0, None
    print("READY", flush=True)

    async def count() -> None:
        nonlocal received, other, last_ns
        while received < n:
            frames = await ws.read_frames()
            now = time.time_ns()
            for frame in frames:
                head = frame[:64]  # the envelope's type comes right after its id
                if any(m in head for m in marks):
                    received += 1
                    last_ns = now
                else:
                    other += 1

    try:
        await asyncio.wait_for(count(), WAIT_S)
    except (TimeoutError, ConnectionError) as exc:
        error = repr(exc)
    reply({"received": received, "other": other, "last_ns": last_ns, "error": error})
    await stdin_line()  # "bye"
    ws.close()


# ---- one ingest run against a fresh daemon ------------------------------------------------


async def run_signalosd(args: argparse.Namespace) -> dict[str, Any]:
    daemon = await start_daemon()
    children: list[Child] = []
    try:
        db, bus, hub = daemon.app[keys.DB], daemon.app[keys.BUS], daemon.app[keys.AGENTS]
        agent_token = await daemon.make_token(Role.AGENT)
        viewer_token = await daemon.make_token(Role.VIEWER)
        port, n = str(daemon.port), args.updates
        sub = await spawn_child(__file__, "--subscriber", port, viewer_token, str(n))
        children.append(sub)
        await wait_until(lambda: len(bus) >= 1, 10, "the subscriber to go live")
        agent = await spawn_child(
            __file__,
            "--agent",
            port,
            agent_token,
            str(n),
            "--tickets",
            str(args.tickets),
            "--chunk",
            str(args.chunk),
        )
        children.append(agent)
        await wait_until(lambda: len(hub) == 1, 10, "the agent session")
        published = {"count": 0, "last_ns": 0}

        def on_event(event: Any) -> None:
            if event.type in RESULTING:
                published["count"] += 1
                if published["count"] == n:
                    published["last_ns"] = time.time_ns()

        bus.listen(on_event)
        cpu0 = time.process_time()
        log(f"signalosd: {n} trade_updates for {args.tickets} tickets")
        agent.tell("go")
        sent = await agent.report(WAIT_S)
        got = await sub.report(WAIT_S + 10)
        cpu = time.process_time() - cpu0
        await wait_until(lambda: published["count"] >= n, 10, "every update published")
        for child in children:
            await child.bye()
        counts = dict(
            await db.read(
                lambda tx: tx.conn.execute(
                    "SELECT type, count(*) FROM events GROUP BY type"
                ).fetchall()
            )
        )
        trades = await db.read(lambda tx: tx.conn.execute("SELECT count(*) FROM trades").fetchone())
    finally:
        for child in children:
            await child.bye()
        await daemon.stop()
    t0 = sent["first_ns"]
    persisted = sum(counts.get(kind, 0) for kind in RESULTING)
    seconds = (got["last_ns"] - t0) / 1e9 if got["last_ns"] else float("nan")
    committed_s = (published["last_ns"] - t0) / 1e9 if published["last_ns"] else float("nan")
    return {
        "updates_per_s": rnd(got["received"] / seconds, 0),
        "seconds": rnd(seconds),
        "committed_per_s": rnd(n / committed_s, 0),
        "agent_send_per_s": rnd(n / ((sent["sent_ns"] - t0) / 1e9), 0),
        "received_by_subscriber": got["received"],
        "subscriber_error": got["error"],
        "persisted_events": persisted,
        "events_by_type": {k: counts.get(k, 0) for k in RESULTING},
        "trades": trades[0],
        "agent_errors": sent["n_errors"],
        "agent_error_samples": sent["errors"],
        "server_cpu_us_per_update": rnd(cpu * 1e6 / n),
    }


# ---- SQLite baselines ---------------------------------------------------------------------


def event_row(i: int) -> tuple[Any, ...]:
    data = json.dumps(position(i, 100) | {"id": i % 100 + 1, "status": "open"})
    return (1, "trade_update", data, "2026-01-05T09:00:00.000Z", '{"kind":"token"}')


def sqlite_baselines(seconds: float, batch_rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="signalos-bench-") as tmp:
        conn = durable_connection(Path(tmp) / "baseline.db")
        conn.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER, "
            "type TEXT NOT NULL, data TEXT NOT NULL, ts TEXT NOT NULL, actor TEXT NOT NULL)"
        )
        sql = "INSERT INTO events (account_id, type, data, ts, actor) VALUES (?, ?, ?, ?, ?)"
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, event_row(rows))
            conn.execute("COMMIT")
            rows += 1
        single_s = time.perf_counter() - started
        batch = [event_row(i) for i in range(batch_rows)]
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        batch_s = time.perf_counter() - started
        conn.close()
    return {
        "single_row_commits_per_s": rnd(rows / single_s, 0),
        "single_row_commits": rows,
        "batched_rows_per_s": rnd(batch_rows / batch_s, 0),
        "batched_rows": batch_rows,
    }


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    started = time.monotonic()
    log("baseline: sqlite single-row durable commits, then one executemany")
    baseline = sqlite_baselines(args.single_row_seconds, args.batch_rows)
    log(f"baseline: {baseline}")
    rounds = []
    for r in range(args.rounds):
        res = await run_signalosd(args)
        log(f"round {r + 1}/{args.rounds}: {res}")
        rounds.append(res)
    best = max(rounds, key=lambda x: x["updates_per_s"] or 0)
    n = args.updates
    complete = all(
        x["received_by_subscriber"] == n
        and x["persisted_events"] == n
        and x["trades"] == args.tickets
        and x["agent_errors"] == 0
        for x in rounds
    )
    rate = best["updates_per_s"] or 0
    emit(
        {
            "bench": "ingest",
            "updates": n,
            "tickets": args.tickets,
            "rounds": args.rounds,
            "signalosd": best,
            "all_rounds_updates_per_s": [x["updates_per_s"] for x in rounds],
            "baseline": baseline,
            "ratio_vs_single_row_commits": rnd(rate / (baseline["single_row_commits_per_s"] or 1)),
            "target_updates_per_s": TARGET_PER_S,
            "all_persisted_and_delivered": complete,
            "ok": complete and rate >= TARGET_PER_S,
            "wall_s": round(time.monotonic() - started, 1),
        }
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=50_000)
    p.add_argument("--tickets", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2, help="fresh daemon each round; best reported")
    p.add_argument("--chunk", type=int, default=256, help="frames per socket write (agent)")
    p.add_argument("--single-row-seconds", type=float, default=2.0)
    p.add_argument("--batch-rows", type=int, default=200_000)
    p.add_argument("--agent", nargs=3, metavar=("PORT", "TOKEN", "N"), help=argparse.SUPPRESS)
    p.add_argument("--subscriber", nargs=3, metavar=("PORT", "TOKEN", "N"), help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.agent:
        port, token, n = ARGS.agent
        asyncio.run(agent_main(int(port), token, int(n), ARGS.tickets, ARGS.chunk))
    elif ARGS.subscriber:
        port, token, n = ARGS.subscriber
        asyncio.run(subscriber_main(int(port), token, int(n)))
    else:
        asyncio.run(main(ARGS))
    sys.exit(0)
