"""A slow or stuck /ws client (DESIGN invariant 6): it has a bounded queue and its own writer;
on overflow it is closed with 4008 ("slow consumer: resume from seq …") and the others never
notice. Real loopback sockets: the stuck client's kernel buffers really fill up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from signalosd import keys
from signalosd.live.bus import ClientQueue, Subscription
from tests.conftest import Harness
from tests.stream_client import Stream, append_events, head_seq, open_stream, start_daemon, until

QUEUE_MAX = 20
BATCH = 5  # events per commit: a reading client is never QUEUE_MAX events behind
PAD = 16_000  # bytes of data per event
MAX_COMMITS = 1500  # ~120 MB, far beyond loopback buffering (a run here overflows at ~50)
CLOSE_SLOW_CONSUMER = 4008


def small_receive_buffer(addr_info: Any) -> socket.socket:
    """A client socket whose kernel receive buffer stays small (no autotuning)."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


@asynccontextmanager
async def stuck_client(daemon) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:  # type: ignore[no-untyped-def]
    """A live subscriber that stops reading once subscribed (until the test reads again)."""
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        ws = await session.ws_connect(daemon.url("/ws"))
        try:
            stream = Stream(ws)
            await stream.authenticate(daemon.admin)
            await stream.subscribe()
            assert await stream.sync() == []
            yield ws
        finally:
            await ws.close()


@dataclass
class Overflow:
    """One client stuck, one reading, commits until the stuck one overflows (then 10 more)."""

    daemon: Harness
    stuck: aiohttp.ClientWebSocketResponse
    stuck_queue: ClientQueue  # the stuck client's server-side queue
    longest_queue: int  # its length, sampled after every commit
    start: int  # the head when both subscribed
    head: int  # the head after the last commit
    received: list[int]  # what the reading client got by then


@asynccontextmanager
async def overflow(aiohttp_client, tmp_path, clock, monkeypatch) -> AsyncIterator[Overflow]:  # type: ignore[no-untyped-def]
    daemon = await start_daemon(
        aiohttp_client, tmp_path, clock, ws_queue_max=QUEUE_MAX, ws_close_timeout_s=5
    )
    bus = daemon.app[keys.BUS]
    subscriptions: list[Subscription] = []
    subscribe = bus.subscribe
    monkeypatch.setattr(bus, "subscribe", lambda sub: (subscriptions.append(sub), subscribe(sub)))
    start = await head_seq(daemon)
    received: list[int] = []

    async def read() -> None:
        while True:
            msg = await reader.recv()
            if "seq" in msg:
                received.append(msg["seq"])

    async with stuck_client(daemon) as stuck, open_stream(daemon, daemon.admin) as reader:
        await reader.subscribe()
        await reader.sync()
        stuck_queue = subscriptions[0].queue
        reading = asyncio.create_task(read())
        longest_queue = commits = 0
        while bus.slow_consumer_closes == 0 and commits < MAX_COMMITS:
            await append_events(daemon, BATCH, pad=PAD)
            commits += 1
            longest_queue = max(longest_queue, len(stuck_queue))
        assert bus.slow_consumer_closes == 1, f"no overflow after {commits} commits"
        for _ in range(10):  # life goes on for everyone else
            await append_events(daemon, BATCH, pad=PAD)
        head = await head_seq(daemon)
        await until(lambda: bool(received) and received[-1] >= head)
        reading.cancel()
        yield Overflow(daemon, stuck, stuck_queue, longest_queue, start, head, received)


async def test_a_stuck_client_overflows_its_bounded_queue_and_leaves_the_bus(
    aiohttp_client, tmp_path, clock, monkeypatch
):
    async with overflow(aiohttp_client, tmp_path, clock, monkeypatch) as o:
        bus = o.daemon.app[keys.BUS]

        assert bus.slow_consumer_closes == 1
        assert len(bus) == 1  # the reading client only
        # Checked per commit: at most QUEUE_MAX - 1 waiting plus one commit's events.
        assert o.longest_queue <= QUEUE_MAX - 1 + BATCH
        assert len(o.stuck_queue) == 0 and o.stuck_queue.overflowed  # memory freed at once


async def test_a_reading_client_gets_every_event_in_order_while_another_is_stuck(
    aiohttp_client, tmp_path, clock, monkeypatch
):
    async with overflow(aiohttp_client, tmp_path, clock, monkeypatch) as o:
        assert o.received == list(range(o.start + 1, o.head + 1))


async def test_a_stuck_client_reading_again_gets_its_events_then_4008_naming_its_last_seq(
    aiohttp_client, tmp_path, clock, monkeypatch
):
    """Resuming from the seq in the close reason leaves no gap and repeats nothing."""
    async with overflow(aiohttp_client, tmp_path, clock, monkeypatch) as o:
        got: list[int] = []
        while (msg := await o.stuck.receive(timeout=5)).type is WSMsgType.TEXT:
            got.append(int(msg.json()["seq"]))

        assert msg.type is WSMsgType.CLOSE, msg
        assert o.stuck.close_code == CLOSE_SLOW_CONSUMER
        assert msg.extra.startswith("slow consumer: resume from seq ")
        assert got == list(range(o.start + 1, o.start + 1 + len(got)))
        assert o.start < int(msg.extra.rsplit(" ", 1)[1]) == got[-1] < o.head


async def test_a_client_still_stuck_after_the_close_deadline_is_disconnected(
    aiohttp_client, tmp_path, clock
):
    """The polite 4008 close cannot complete while the client reads nothing: once
    ws_close_timeout_s has passed the server drops the connection and what is still queued
    for it, instead of holding both until the client reads again."""
    daemon = await start_daemon(
        aiohttp_client, tmp_path, clock, ws_queue_max=QUEUE_MAX, ws_close_timeout_s=0.1
    )
    bus = daemon.app[keys.BUS]
    server = daemon.client.server.runner.server
    async with stuck_client(daemon):
        assert len(server.connections) == 1
        async with asyncio.timeout(8):
            while bus.slow_consumer_closes == 0:
                await append_events(daemon, BATCH, pad=PAD)
        await until(lambda: not server.connections, within=3)  # 30 times the deadline

    assert len(bus) == 0


async def test_one_commit_larger_than_the_queue_does_not_drop_a_reading_client(
    aiohttp_client, tmp_path, clock
):
    """The bound is checked per commit: a bulk commit is not a slow reader."""
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_queue_max=QUEUE_MAX)
    async with open_stream(daemon, daemon.admin) as reader:
        await reader.subscribe()
        await reader.sync()
        seqs = await append_events(daemon, QUEUE_MAX * 5)
        got = await reader.events_through(seqs[-1])
        assert [m["seq"] for m in got] == seqs
        assert daemon.app[keys.BUS].slow_consumer_closes == 0
