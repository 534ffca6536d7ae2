"""Shared fixtures: a real daemon app on a real loopback socket over a real SQLite file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from signalosd import keys
from signalosd.app import create_app
from signalosd.auth import accounts
from signalosd.clock import ManualClock
from signalosd.config import Settings
from signalosd.models import Role

_TICKETS = itertools.count(500_001)


class Harness:
    """A running daemon plus helpers to make tokens and trade-mirror rows for a test."""

    def __init__(self, client: TestClient, app: web.Application, clock: ManualClock) -> None:
        self.client = client
        self.app = app
        self.clock = clock
        self.settings: Settings = app[keys.SETTINGS]
        self.admin = self.settings.admin_token_path.read_text().strip()

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.app[keys.DB]

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def token(
        self, role: Role | str = Role.OPERATOR, account: str = "default", label: str = "test"
    ) -> str:
        made = await self.db.write(
            lambda tx: accounts.create_token(tx, account, Role(role), label, accounts.local_actor())
        )
        return str(made["token"])

    async def account_id(self, account: str = "default") -> int:
        row = await self.db.read(lambda tx: tx.account_by_name(account))
        assert row is not None, account
        return int(row["id"])

    async def add_trade(self, account: str = "default", **fields: Any) -> int:
        """A row in the trade mirror, as the agent would report it."""
        row = {
            "ticket": next(_TICKETS),
            "symbol": "EURUSD",
            "side": "buy",
            "volume": 0.10,
            "open_price": 1.1000,
            "current_price": 1.1010,
            "sl": None,
            "tp": None,
            "status": "open",
            "opened_at": "2026-01-05T09:00:00.000Z",
        }
        row.update(fields)
        account_id = await self.account_id(account)
        return int(await self.db.write(lambda tx: tx.insert_trade(account_id, row)))

    async def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = await self.client.request(method, path, headers=headers, **kwargs)
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body

    async def events(self, token: str | None = None, since: int = 0, **query: Any) -> list[dict]:
        status, body = await self.request(
            "GET",
            "/api/events",
            token or self.admin,
            params={"since": since, "limit": 1000, **query},
        )
        assert status == 200, body
        return list(body["events"])


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "port": 0,
        "token_touch_interval_s": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def daemon(aiohttp_client, settings: Settings, clock: ManualClock) -> Harness:  # type: ignore[no-untyped-def]
    app = create_app(settings, clock)
    client = await aiohttp_client(app)
    return Harness(client, app, clock)


# ---- the CLI's tests: a live daemon in a thread, and `signalos` pointed at it -----------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Any]:
    from tests.cli_harness import live_daemon

    with live_daemon(tmp_path) as daemon:
        yield daemon


@pytest.fixture
def run(live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.cli_harness import Cli

    return Cli(live.url, live.token("operator"), tmp_path, monkeypatch)
