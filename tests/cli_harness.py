"""Helpers for the CLI tests (this module holds no tests).

The CLI is synchronous, so the daemon cannot share the test's event loop: `LiveDaemon` serves
the real app (`create_app`, real SQLite file, real clock) on 127.0.0.1:0 from a background
thread with its own loop, and attaches the real agent (`run_agent`, paper broker) in that loop
when a test needs results. `Cli` runs the CLI in-process through click's CliRunner with a clean
environment (no SIGNALOS_*, NO_COLOR or user config leaking in), or as a real process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from signalos_cli import settings as cli_settings
from signalos_cli.agent.options import Options
from signalos_cli.agent.runner import run_agent
from signalos_cli.cli import cli
from signalosd import keys
from signalosd.app import create_app
from signalosd.auth import accounts
from signalosd.models import Role
from tests.conftest import make_settings
from tests.counting_broker import CountingBroker

T = TypeVar("T")
WAIT = 10.0  # upper bound only
FAST_AGENT = dict(poll_interval=0.05, status_interval=0.5, backoff_initial=0.05, backoff_max=0.1)
EURUSD_BUY = ["--symbol", "EURUSD", "--side", "buy", "--volume", "0.1"]


class LiveDaemon:
    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.tmp_path = tmp_path
        self.settings = make_settings(tmp_path, **overrides)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.app, self._runner, port = self.call(self._start())
        self.url = f"http://127.0.0.1:{port}"
        self.admin = self.settings.admin_token_path.read_text().strip()

    async def _start(self) -> tuple[web.Application, web.AppRunner, int]:
        app = create_app(self.settings)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return app, runner, int(runner.addresses[0][1])

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self._runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            self.loop.close()

    # ---- state --------------------------------------------------------------------------------

    def token(self, role: str = "operator", account: str = "default") -> str:
        db = self.app[keys.DB]
        made = self.call(
            db.write(
                lambda tx: accounts.create_token(
                    tx, account, Role(role), "t", accounts.local_actor()
                )
            )
        )
        return str(made["token"])

    def add_trade(self, **fields: Any) -> int:
        """An open trade in the mirror, as the agent would report it (no agent involved)."""
        row = {
            "ticket": 900_001,
            "symbol": "EURUSD",
            "side": "buy",
            "volume": 0.10,
            "open_price": 1.1000,
            "current_price": 1.1010,
            "status": "open",
            "opened_at": "2026-01-05T09:00:00.000Z",
        } | fields
        db = self.app[keys.DB]

        def insert(tx: Any) -> int:
            account_id = tx.account_by_name("default")["id"]
            return int(tx.insert_trade(account_id, row))

        return self.call(db.write(insert))

    def commands(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Every command in the outbox (optionally of one type), oldest first."""
        sql = "SELECT id, type, status, trade_id FROM commands ORDER BY created_at, rowid"
        rows = self.call(self.app[keys.DB].read(lambda tx: tx.conn.execute(sql).fetchall()))
        out = [dict(zip(("id", "type", "status", "trade_id"), r, strict=True)) for r in rows]
        return [c for c in out if type_ is None or c["type"] == type_]

    # ---- the real agent -----------------------------------------------------------------------

    @contextmanager
    def agent(self, broker: CountingBroker | None = None) -> Iterator[CountingBroker]:
        """The real agent on a paper broker, connected until the block ends."""
        broker = broker or CountingBroker()
        token = self.token("agent")
        stop = asyncio.Event()
        state = self.tmp_path / "agent"
        # The agent's state lines go to a list, not to sys.stderr: CliRunner swaps sys.stderr
        # while a command runs, and a line from this thread would land in the command's stderr.
        lines: list[str] = []
        options = Options(**FAST_AGENT, on_state=lines.append)
        task = self.call(
            self._spawn(run_agent(self.url, token, broker, state, options=options, stop=stop))
        )
        try:
            self.call(self._until_connected(True))
            self.call(_until(lambda: any(line.startswith("connected") for line in lines)))
            yield broker
        finally:
            self.loop.call_soon_threadsafe(stop.set)
            self.call(asyncio.wait_for(_wrap(task), WAIT))
            self.call(self._until_connected(False))

    async def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(coro)

    async def _until_connected(self, connected: bool) -> None:
        hub = self.app[keys.AGENTS]
        row = await self.app[keys.DB].read(lambda tx: tx.account_by_name("default"))
        async with asyncio.timeout(WAIT):
            while (hub.session(int(row["id"])) is not None) != connected:
                await asyncio.sleep(0.01)


async def _wrap(task: asyncio.Task[None]) -> None:
    await task


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.005)


@contextmanager
def live_daemon(tmp_path: Path, **overrides: Any) -> Iterator[LiveDaemon]:
    daemon = LiveDaemon(tmp_path, **overrides)
    try:
        yield daemon
    finally:
        daemon.close()


class Cli:
    """Runs `signalos` against a daemon with a clean environment, in `cwd`."""

    def __init__(self, url: str, token: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        self.token = token
        self.cwd = cwd
        for name in list(os.environ):
            if name.startswith("SIGNALOS_") or name in ("NO_COLOR", "XDG_CONFIG_HOME"):
                monkeypatch.delenv(name)
        self.config_home = cwd / "xdg"
        monkeypatch.setenv("XDG_CONFIG_HOME", str(self.config_home))
        monkeypatch.setattr(cli_settings, "SYSTEM_CONFIG", cwd / "etc-signalos-cli.toml")
        monkeypatch.chdir(cwd)

    def env(self, **extra: str) -> dict[str, str]:
        return {"SIGNALOS_URL": self.url, "SIGNALOS_TOKEN": self.token} | extra

    def __call__(
        self, *args: str, env: Mapping[str, str | None] | None = None, **kw: Any
    ) -> Result:
        """In-process (CliRunner): stdin and stdout are not terminals."""
        merged: dict[str, str | None] = dict(self.env())
        merged.update(env or {})
        return CliRunner().invoke(cli, list(args), env=merged, catch_exceptions=False, **kw)

    def process(
        self, *args: str, env: Mapping[str, str] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """As a real process: `python -m signalos_cli ARGS`."""
        full = {k: v for k, v in os.environ.items()} | self.env() | dict(env or {})
        return subprocess.run(
            [sys.executable, "-m", "signalos_cli", *args],
            env=full,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=WAIT * 3,
            **kw,
        )
