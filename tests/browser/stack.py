"""The dashboard as a trader meets it: a real `signalosd` process, a real paper agent process,
and Debian's Chromium driven by Playwright's async API (the sync API cannot run inside the
pytest-asyncio loop). This module holds no tests.

`Stack` is the daemon + agent pair of one test module (kill -9 and restart included), `Dash`
one signed-in (or not yet) browser page. Every page collects console errors, uncaught
exceptions and CSP violations (`securitypolicyviolation`, reported by an init script); a test
fails on any it did not declare with `Dash.allow` (a 401 it provoked, a refused WebSocket while
the daemon is down). Waits are on the DOM (`expect`), never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.importorskip("playwright.async_api", reason="needs playwright: pip install -e '.[test]'")

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
)

from tests.daemon_process import Daemon, call, clean_env
from tests.test_e2e_process import make_agent_token, start_agent, stop_agent, token_create_argv

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_S = 15.0  # upper bound of every wait; a passing test is far quicker
expect.set_options(timeout=WAIT_S * 1000)

# Reported by Chromium itself, not by the page: allowed only where a test provokes them.
NETWORK_401 = r"status of 401"
NETWORK_422 = r"status of 422"
DAEMON_DOWN = (
    r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE"
    r"|WebSocket connection to .* failed"
)

_INIT_SCRIPT = """
window.__dash = { csp: [] };
document.addEventListener("securitypolicyviolation", (e) => {
  const what = `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ` +
    `${e.sourceFile || "?"}:${e.lineNumber || "?"}`;
  window.__dash.csp.push(what);
  console.error("CSP violation: " + what);
});
"""


# ---- processes ----------------------------------------------------------------------------


def create_token(state: Path, role: str, label: str) -> subprocess.Popen[str]:
    """`signalosd token create` as an operator types it (started; `.communicate()` for it)."""
    return subprocess.Popen(
        token_create_argv(state, role, label),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )


class Stack:
    """`signalosd` and a paper `signalos agent` as processes, with an operator and a viewer
    token made by `signalosd token create`; the daemon can be killed and restarted on its port."""

    def __init__(self, tmp: Path, *daemon_args: str) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.daemon_args = daemon_args
        self.daemon: Daemon | None = None
        self.agent: subprocess.Popen[str] | None = None
        self.tokens: dict[str, str] = {}
        self.session: aiohttp.ClientSession | None = None
        self._agent_log = tmp / "agent.log"

    @property
    def url(self) -> str:
        assert self.daemon is not None
        return self.daemon.url

    @property
    def admin(self) -> str:
        assert self.daemon is not None
        return self.daemon.admin

    async def start(self) -> Stack:
        await asyncio.to_thread(self._start)
        self.session = aiohttp.ClientSession()
        await self.until(self._agent_connected, "the paper agent to connect")
        return self

    def _start(self) -> None:
        self.daemon = Daemon(self.state, *self.daemon_args).start().wait_listening()
        makers = {
            role: create_token(self.state, role, f"browser-{role}")
            for role in ("operator", "viewer")
        }
        agent_token = make_agent_token(self.state, self.tmp / "agent.token")
        for role, proc in makers.items():
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, f"token create --role {role}: {err}"
            self.tokens[role] = out.strip()
        with self._agent_log.open("w") as log:
            self.agent = start_agent(self.url, agent_token, self.tmp / "agent", stderr=log)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.agent is not None and self.agent.poll() is None:
            await asyncio.to_thread(stop_agent, self.agent)
        if self.daemon is not None:
            await asyncio.to_thread(self.daemon.kill)

    def revoke(self, role: str) -> None:
        """`signalosd token revoke` of the token made for `role`, as an admin on the host does."""

        def cli(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "signalosd", "token", "--state-dir", str(self.state), *args],
                capture_output=True,
                text=True,
                timeout=30,
                env=clean_env(),
            )
            assert done.returncode == 0, f"signalosd token {' '.join(args)}: {done.stderr}"
            return done.stdout

        made = [t for t in json.loads(cli("list", "--json")) if t["label"] == f"browser-{role}"]
        assert len(made) == 1, made
        cli("revoke", made[0]["id"])

    def kill_daemon(self) -> None:
        """kill -9, as a power cut or the OOM killer does it."""
        assert self.daemon is not None and self.daemon.proc is not None
        self.daemon.proc.kill()
        self.daemon.proc.wait(10)

    async def restart_daemon(self) -> None:
        """A new daemon on the same state dir and port (the page reconnects to its origin)."""
        assert self.daemon is not None
        old, port = self.daemon, self.daemon.port
        old.kill()
        self.daemon = await asyncio.to_thread(
            lambda: Daemon(self.state, *self.daemon_args, port=port).start().wait_listening()
        )

    # ---- the API, as a script would check what the page shows ----

    async def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """The JSON reply of a request that must succeed (any 2xx)."""
        status, body = await self.call(method, path, token, **kw)
        assert 200 <= status < 300, f"{method} {path}: {status} {body}"
        return body

    async def call(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> tuple[int, Any]:
        assert self.session is not None
        return await call(self.session, method, self.url + path, token or self.admin, **kw)

    async def trade(self, trade_id: int) -> dict[str, Any]:
        return dict(await self.api("GET", f"/api/trades/{trade_id}"))

    async def events(self, token: str, since: int = 0, **query: Any) -> list[dict[str, Any]]:
        """Every event after `since` the token may see (following `last_seq` to the head)."""
        out: list[dict[str, Any]] = []
        while True:
            body = await self.api(
                "GET", "/api/events", token, params={"since": since, "limit": 1000, **query}
            )
            out += body["events"]
            if body["last_seq"] <= since:
                return out
            since = body["last_seq"]

    async def until(self, check: Any, what: str, within: float = WAIT_S) -> Any:
        deadline = time.monotonic() + within
        while not (value := await check()):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {within:g} s waiting for {what}")
            await asyncio.sleep(0.1)
        return value

    async def trade_open(self, trade_id: int) -> dict[str, Any]:
        async def is_open() -> dict[str, Any] | None:
            trade = await self.trade(trade_id)
            return trade if trade["status"] == "open" else None

        return dict(await self.until(is_open, f"trade {trade_id} to be open"))

    async def _agent_connected(self) -> bool:
        health = await self.api("GET", "/api/system/health")
        return bool(health["agent"]["connected"])

    @property
    def agent_log(self) -> str:
        return self._agent_log.read_text() if self._agent_log.exists() else ""


# ---- the page -----------------------------------------------------------------------------


class Dash:
    """One browser context (fresh profile, so fresh sessionStorage) and its page."""

    def __init__(self, context: BrowserContext, page: Page, stack: Stack, name: str) -> None:
        self.context, self.page, self.stack, self.name = context, page, stack, name
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught exception: {exc}"))

    @classmethod
    async def open(cls, browser: Browser, stack: Stack, name: str, **context_options: Any) -> Dash:
        context = await browser.new_context(**context_options)
        await context.add_init_script(_INIT_SCRIPT)
        return cls(context, await context.new_page(), stack, name)

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        where = msg.location.get("url", "") if msg.location else ""
        text = f"console error: {msg.text} ({where})"
        if not any(p.search(text) for p in self._allowed):
            self.errors.append(text)

    @contextmanager
    def allow(self, *patterns: str) -> Iterator[None]:
        """Console errors matching one of `patterns` are expected inside the block."""
        compiled = [re.compile(p) for p in patterns]
        self._allowed += compiled
        try:
            yield
        finally:
            for p in compiled:
                self._allowed.remove(p)

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    async def close(self) -> None:
        await self.context.close()

    async def recover(self) -> None:
        """After a failed test: load the page again (a signed-in page keeps its token in
        sessionStorage and connects again), so that what the failure left behind (an open
        dialog, a type filter) cannot fail the module's next tests too."""
        await self.page.reload()
        with contextlib.suppress(AssertionError):  # a page that never signed in stays out
            await expect(self.status).to_contain_text("connected", timeout=10_000)

    # ---- navigation ----

    async def goto(self) -> Response:
        response = await self.page.goto(self.stack.url + "/")
        assert response is not None
        return response

    async def sign_in(self, token: str) -> None:
        await self.page.get_by_label("Token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()

    async def signed_in(self, token: str) -> None:
        """Sign in and wait until the stream is live and the mode is shown."""
        await self.sign_in(token)
        await expect(self.status).to_contain_text("connected")
        await expect(self.status).not_to_contain_text(re.compile("connecting|disconnected"))
        await expect(self.mode).to_have_text(re.compile(r"^(running|paused|halted)$"))

    async def shot(self, name: str, **kw: Any) -> Path:
        """A screenshot saved as a test artifact (test-artifacts/dashboard/, gitignored)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), **kw)
        return path

    # ---- what the contract names ----

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    @property
    def mode(self) -> Locator:
        return self.page.get_by_test_id("mode")

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    @property
    def dialog(self) -> Locator:
        return self.page.get_by_role("dialog")

    @property
    def trades(self) -> Locator:
        return self.page.get_by_role("table", name="Live trades", exact=True)

    def row(self, trade_id: int) -> Locator:
        return self.trades.locator(f'tr[data-trade-id="{trade_id}"]')

    def cell(self, trade_id: int, col: str) -> Locator:
        return self.row(trade_id).locator(f'td[data-col="{col}"]')

    @property
    def event_log(self) -> Locator:
        return self.page.get_by_role("table", name="Event log", exact=True)

    async def logged_seqs(self) -> list[int]:
        """The seqs of the event log's rows, in page order."""
        raw = await self.event_log.locator("tr[data-seq]").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.seq))"
        )
        return [int(s) for s in raw]

    async def focused(self) -> dict[str, Any]:
        """What has the keyboard focus: its tag, accessible-ish name and whether it sits in a
        dialog."""
        return dict(
            await self.page.evaluate(
                """() => { const e = document.activeElement;
                  return { tag: e ? e.tagName : null,
                           name: e ? (e.getAttribute("aria-label") || e.textContent || "").trim()
                                   : "",
                           inDialog: !!(e && e.closest('[role="dialog"]')) }; }"""
            )
        )
