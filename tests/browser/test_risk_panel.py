"""The dashboard's Risk panel (issue 12) in Debian's Chromium against a real daemon, with a
protocol-level agent (tests/fake_agent.py) whose account statuses move the equity: no limits
(the hint), a drawdown limit at warning, then tripped (latch, Reset risk trip), a viewer's
read-only view, a reset refused while the equity floor is still crossed (409), the reset once
equity is back within limits, and the data-stale notice.

The module has its own daemon and no paper agent (its statuses would move the equity too); the
tests run in file order, each leaving the account as the next expects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.browser.stack import Dash, Stack, expect
from tests.fake_agent import WireAgent, connect_agent, position
from tests.test_e2e_process import make_agent_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

STALE_AFTER_S = 2  # the daemon's risk_stale_after_s: no status for this long with a trade open
LIMITS = {
    "max_drawdown_pct": 10,
    "equity_floor": 8_900,
    "max_open_trades": 3,
    "max_trades_per_day": 20,
}
NETWORK_409 = r"status of 409"


class AgentlessStack(Stack):
    """The daemon and its tokens; the agent is the test's own (`agent` fixture)."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.daemon_env = {"SIGNALOS_RISK_STALE_AFTER_S": str(STALE_AFTER_S)}

    def _start(self) -> None:
        from tests.daemon_process import Daemon

        self.daemon = Daemon(self.state, env=self.daemon_env).start().wait_listening()
        for role in ("operator", "viewer"):
            from tests.browser.stack import create_token

            out, err = create_token(self.state, role, f"browser-{role}").communicate(timeout=30)
            assert out.strip(), f"token create --role {role}: {err}"
            self.tokens[role] = out.strip()
        self.tokens["agent"] = (
            make_agent_token(self.state, self.tmp / "agent.token").read_text().strip()
        )

    async def start(self) -> AgentlessStack:
        await asyncio.to_thread(self._start)
        self.session = aiohttp.ClientSession()
        return self


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> AsyncIterator[Stack]:
    started = AgentlessStack(tmp_path_factory.mktemp("risk_panel"))
    try:
        yield await started.start()
    except BaseException:
        if started.daemon is not None:
            print("signalosd output:\n" + started.daemon.output)
        raise
    finally:
        await started.stop()


class Agent:
    """A wire agent with one open position; a reader task answers the daemon's heartbeats and
    keeps the commands it is sent (the trip's emergency stop)."""

    def __init__(self, wire: WireAgent, session: aiohttp.ClientSession) -> None:
        self.wire, self.session, self.commands = wire, session, []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.wire.ws:
            if (
                msg.type == aiohttp.WSMsgType.TEXT
                and (m := json.loads(msg.data))["type"] == "command"
            ):
                self.commands.append(m["data"])

    async def status(self, equity: float, balance: float = 10_000.0) -> None:
        data = {
            "balance": balance,
            "equity": equity,
            "margin": 0.0,
            "margin_free": equity,
            "profit": round(equity - balance, 2),
        }
        await self.wire.send("mt5_status_update", data)

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader
        await self.wire.close()
        await self.session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(stack: Stack) -> AsyncIterator[Agent]:
    session = aiohttp.ClientSession(base_url=stack.url)
    wire = await connect_agent(
        SimpleNamespace(client=session), stack.tokens["agent"], snapshot=[position(1)]
    )
    made = Agent(wire, session)
    try:
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dash(pages: Any, stack: Stack) -> Dash:
    made = await pages.open("risk-operator", viewport={"width": 1400, "height": 1000})
    await made.goto()
    await made.signed_in(stack.tokens["operator"])
    return made


def panel(dash: Dash) -> Any:
    return dash.page.get_by_role("region", name="Risk", exact=True)


def gauge(dash: Dash, limit: str) -> Any:
    return panel(dash).locator(f'li[data-limit="{limit}"]')


async def risk(stack: Stack) -> dict[str, Any]:
    return dict(await stack.api("GET", "/api/risk"))


async def test_an_unguarded_account_shows_the_hint(dash: Dash, agent: Agent) -> None:
    await expect(panel(dash)).to_contain_text("No risk limits set — signalos risk set …")
    await expect(panel(dash).get_by_role("meter")).to_have_count(0)


async def test_a_limit_near_its_level_shows_warning(dash: Dash, stack: Stack, agent: Agent) -> None:
    await stack.api("PUT", "/api/risk/limits", stack.tokens["operator"], json=LIMITS)
    await agent.status(10_000)
    await stack.until(lambda: _anchored(stack), "the day's anchor")
    await agent.status(9_150)  # 850 of the 1,000 the drawdown may lose: past warn_at_pct (80)
    dd = gauge(dash, "max_drawdown_pct")
    await expect(dd.get_by_test_id("rk-state")).to_have_text("warning")
    meter = panel(dash).get_by_role("meter", name="Drawdown (pct): 85 % used", exact=True)
    await expect(meter).to_have_attribute("value", "85")
    await expect(meter).to_have_attribute("max", "100")
    await expect(dd).to_contain_text("limit 10 %")
    await expect(dd).to_contain_text("trips below 9,000.00")
    await expect(gauge(dash, "equity_floor").get_by_test_id("rk-state")).to_have_text("ok")
    await expect(panel(dash).get_by_test_id("rk-anchor")).to_contain_text("10,000.00")
    await expect(panel(dash).get_by_test_id("rk-open")).to_have_text("1 / 3")
    await expect(panel(dash).get_by_test_id("rk-today")).to_have_text("0 / 20")
    await expect(dash.button("Reset risk trip")).to_have_count(0)
    await dash.shot("risk-01-warning")


async def _anchored(stack: Stack) -> bool:
    day = (await risk(stack))["day"]
    return bool(day and day["anchor"] is not None)


async def test_a_trip_shows_the_latch_and_the_reset_button(
    dash: Dash, stack: Stack, agent: Agent
) -> None:
    await agent.status(8_950)  # 1,050 lost: past the 10 %
    await expect(gauge(dash, "max_drawdown_pct").get_by_test_id("rk-state")).to_have_text("tripped")
    await expect(panel(dash)).to_contain_text("Tripped: Drawdown (pct)")
    await expect(panel(dash)).to_contain_text("clears by a confirmed reset")
    await expect(dash.button("Reset risk trip")).to_be_enabled()
    await expect(dash.mode).to_have_text("halted")
    await dash.shot("risk-02-tripped")


async def test_a_viewer_sees_the_panel_but_cannot_reset(
    pages: Any, stack: Stack, agent: Agent
) -> None:
    viewer = await pages.open("risk-viewer", viewport={"width": 1400, "height": 1000})
    await viewer.goto()
    await viewer.signed_in(stack.tokens["viewer"])
    await expect(panel(viewer)).to_contain_text("Tripped: Drawdown (pct)")
    await expect(panel(viewer).get_by_role("meter")).to_have_count(2)
    await expect(viewer.button("Reset risk trip")).to_be_disabled()
    # described by the quick actions' own note, as their buttons are
    await expect(viewer.button("Reset risk trip")).to_have_accessible_description(
        "needs an operator token"
    )
    await viewer.close()
    pages.opened.remove(viewer)


async def test_a_reset_with_the_floor_still_crossed_shows_the_daemons_409(
    dash: Dash, stack: Stack, agent: Agent
) -> None:
    await agent.status(8_850)  # below the equity floor (8,900): a reset would trip again
    await expect(gauge(dash, "equity_floor").get_by_test_id("rk-state")).to_have_text("tripped")
    await dash.button("Reset risk trip").click()
    dialog = dash.dialog
    await expect(dialog).to_contain_text("measures the drawdown again from the equity now")
    with dash.allow(NETWORK_409):
        await dialog.get_by_role("button", name="Confirm reset").click()
        await expect(dialog.get_by_role("alert")).to_contain_text(
            "still below the equity_floor level"
        )
    await expect(dash.page.get_by_role("log")).to_contain_text("still below the equity_floor level")
    await dash.shot("risk-03-reset-refused")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    assert (await risk(stack))["latch"]["limit"] == "max_drawdown_pct"


async def test_a_reset_within_limits_clears_the_latch(
    dash: Dash, stack: Stack, agent: Agent
) -> None:
    # back above the floor; a new balance (a trade closed) makes the daemon keep this status now
    await agent.status(9_000, balance=9_500)
    await expect(gauge(dash, "equity_floor").get_by_test_id("rk-state")).not_to_have_text("tripped")
    await dash.button("Reset risk trip").click()
    await dash.dialog.get_by_role("button", name="Confirm reset").click()
    await expect(dash.page.get_by_role("log")).to_contain_text("Risk trip max_drawdown_pct reset")
    await expect(dash.dialog).to_have_count(0)
    await expect(dash.button("Reset risk trip")).to_have_count(0)
    # measured again from the equity now: nothing of the drawdown used
    await expect(panel(dash).get_by_role("meter", name="Drawdown (pct): 0 % used")).to_have_count(1)
    await expect(gauge(dash, "max_drawdown_pct").get_by_test_id("rk-state")).to_have_text("ok")
    assert (await risk(stack))["latch"] is None
    await expect(dash.mode).to_have_text("halted")  # leaving the halt is its own act
    await dash.shot("risk-04-reset")


async def test_no_status_for_a_while_shows_data_stale(
    dash: Dash, stack: Stack, agent: Agent
) -> None:
    stale = panel(dash).get_by_text("Data stale", exact=False)
    await expect(stale).to_be_visible(timeout=(STALE_AFTER_S + 10) * 1000)
    await agent.status(9_010, balance=9_500)
    await expect(stale).to_have_count(0)
