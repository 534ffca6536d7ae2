"""The dashboard across a daemon's kill -9 and restart (issue 10): the status goes to
connecting with the attempt counter rising, comes back connected, and the event log on the page
is exactly `GET /api/events` for the same seqs, events made while it was away included (no gap,
no duplicate). The daemon runs with `--dev`, so the WebSocket tester is there.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.support import DAEMON_DOWN, Dash, Stack, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAEMON_ARGS = ("--dev",)
SIGNAL = {"symbol": "GBPUSD", "side": "sell", "volume": 0.2, "source": "browser-test"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dash(pages: Any, stack: Stack) -> Dash:
    page = await pages.open("operator", viewport={"width": 1400, "height": 900})
    await page.goto()
    await page.signed_in(stack.tokens["operator"])
    return page


async def newest_seq(stack: Stack, token: str) -> int:
    return max(e["seq"] for e in await stack.events(token))


async def test_dev_mode_shows_the_websocket_tester(dash: Dash) -> None:
    tester = dash.page.get_by_role("region", name="WebSocket tester")
    await expect(tester).to_be_visible()
    await dash.shot("08-ws-tester")


async def test_after_kill_9_and_a_restart_the_event_log_has_no_gap_and_no_duplicate(
    dash: Dash, stack: Stack
) -> None:
    token = stack.tokens["operator"]
    await stack.api("POST", "/api/signals", token, json=SIGNAL)
    seen = await newest_seq(stack, token)
    await expect(dash.event_log.locator(f'tr[data-seq="{seen}"]')).to_have_count(1)

    with dash.allow(DAEMON_DOWN):
        stack.kill_daemon()
        await expect(dash.status).to_contain_text("connecting")
        await expect(dash.status).to_contain_text(re.compile(r"attempt [1-9]\d*/10"))
        first = int(re.search(r"attempt (\d+)/10", await dash.status.inner_text()).group(1))  # type: ignore[union-attr]
        await expect(dash.status).to_contain_text(
            re.compile(rf"attempt ({'|'.join(str(n) for n in range(first + 1, 11))})/10")
        )
        await dash.shot("09-reconnecting")

        await stack.restart_daemon()
        # events the page is not there to see: it must catch up on them from its last seq
        await stack.api("POST", "/api/trading/pause", token, json={"reason": "while away"})
        await stack.api("POST", "/api/trading/resume", token, json={})
        missed = await newest_seq(stack, token)
        await expect(dash.status).to_contain_text("connected")
        await expect(dash.status).not_to_contain_text(re.compile("connecting|disconnected"))

    await expect(dash.event_log.locator(f'tr[data-seq="{missed}"]')).to_have_count(1)
    await expect(dash.mode).to_have_text("running")
    shown = await dash.logged_seqs()
    assert len(shown) == len(set(shown)), f"duplicate rows: {sorted(shown)}"
    low, high = min(shown), max(shown)
    api = [e["seq"] for e in await stack.events(token, since=low - 1) if e["seq"] <= high]
    assert sorted(shown) == api, (
        f"page {sorted(shown)[:5]}…{sorted(shown)[-5:]} vs api {api[:5]}…{api[-5:]}: "
        f"missing {sorted(set(api) - set(shown))}, extra {sorted(set(shown) - set(api))}"
    )
    assert low <= seen < missed <= high
    await dash.shot("10-reconnected")
