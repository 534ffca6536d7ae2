"""Helpers for the emergency-stop fence tests (this module holds no tests).

`GatedBroker` is a real paper broker (prices still, trading calls counted) one of whose calls
can be made to block on the broker thread until the test lets it go: a slow broker call, as a
busy MT5 terminal makes one. `StallProxy` is a real TCP proxy between the agent and the daemon
whose daemon→agent direction can be stalled and released: a network stall, during which the
daemon's frames are sent (the daemon marks them `sent`) but the agent reads none of them.
`real_agent` runs the real agent (`run_agent`) against a test daemon until the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from signalos_cli.agent.broker import SymbolSpec
from signalos_cli.agent.journal import Journal
from signalos_cli.agent.runner import Options, run_agent
from signalosd import keys
from tests.conftest import Harness
from tests.counting_broker import CountingBroker

WAIT = 10.0  # upper bound only: a passing test never waits this long


class GatedBroker(CountingBroker):
    """`hold(symbol)`: the next `symbol(symbol)` call blocks until `release()` (the first
    pre-trade call an entry makes); `entered` is set once it is blocked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gated_symbol: str | None = None
        self._gate = threading.Event()
        self.entered = threading.Event()

    def hold(self, symbol: str) -> None:
        self._gated_symbol, self._gate = symbol, threading.Event()
        self.entered.clear()

    def release(self) -> None:
        self._gated_symbol = None
        self._gate.set()

    def symbol(self, name: str) -> SymbolSpec:
        if name == self._gated_symbol:
            self.entered.set()
            if not self._gate.wait(WAIT):
                raise RuntimeError("the test never released the gated broker call")
        return super().symbol(name)

    async def wait_entered(self) -> None:
        async with asyncio.timeout(WAIT):
            while not self.entered.is_set():
                await asyncio.sleep(0.005)


class StallProxy:
    """127.0.0.1:port → the daemon. `stall()` stops passing the daemon's bytes to the agent
    (they wait in the proxy, as in a stalled network); `flow()` delivers them in one burst."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> StallProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, stallable=False)),
            asyncio.create_task(self._pump(up_reader, writer, stallable=True)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            w.close()

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, stallable: bool
    ) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                return
            if stallable:
                await self._flowing.wait()
            dst.write(data)
            await dst.drain()


@asynccontextmanager
async def real_agent(
    daemon: Harness,
    broker: CountingBroker,
    state: Path,
    *,
    url: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> AsyncIterator[None]:
    """The real agent connected to the test daemon (optionally through `url`, a proxy) until
    the block ends. Its clock is the daemon's ManualClock (unless `now` says otherwise), so
    deadlines mean the same to both."""
    token = getattr(daemon, "_agent_token", None) or await daemon.token("agent", label="desk")
    daemon._agent_token = token  # type: ignore[attr-defined]
    stop = asyncio.Event()
    options = Options(
        poll_interval=0.05,
        status_interval=0.5,
        backoff_initial=0.05,
        backoff_max=0.1,
        now=now or daemon.clock.now,
    )
    task = asyncio.create_task(
        run_agent(url or daemon.url("/"), token, broker, state, options=options, stop=stop)
    )
    hub = daemon.app[keys.AGENTS]
    account = await daemon.account_id()
    try:
        async with asyncio.timeout(WAIT):
            while hub.session(account) is None:
                await asyncio.sleep(0.01)
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, WAIT)
        async with asyncio.timeout(WAIT):
            while hub.session(account) is not None:
                await asyncio.sleep(0.01)


def agent_journal(state: Path) -> Journal:
    """The agent's on-disk state (open it after the agent has stopped)."""
    return Journal.open(state)


async def command_of(daemon: Harness, command_id: str, wait: float = 0) -> dict[str, Any]:
    _, body = await daemon.request("GET", f"/api/commands/{command_id}?wait={wait}", daemon.admin)
    return dict(body["command"])


async def until_status(daemon: Harness, command_id: str, *statuses: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while (command := await command_of(daemon, command_id))["status"] not in statuses:
            await asyncio.sleep(0.01)
    return command


async def post(daemon: Harness, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, reply = await daemon.request("POST", path, daemon.admin, json=body or {})
    assert status in (200, 202), reply
    return dict(reply)
