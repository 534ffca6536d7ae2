"""What the page does when the network fails it, in Chromium against a real daemon: a trading
action whose request got no answer is retried with its own Idempotency-Key (the daemon acts
once); after 10 failed attempts the page stops in `error` and offers Retry; the WebSocket
tester's frames sent meanwhile are queued (counted, at most 100, the oldest dropped), then go
out once it is connected again.

Its own module (own daemon, agent and page): the page's clock is Playwright's, so the backoff
of minutes (1 s, 2 s, … 30 s, with jitter) passes in a few fast-forwards, and the other
module's page is not left in a long backoff by the daemon going down here.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.browser.stack import DAEMON_DOWN, Dash, Stack, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAEMON_ARGS = ("--dev",)
ATTEMPTS = 10
QUEUE_MAX = 100


async def until_status(dash: Dash, word: str, step_ms: int) -> str:
    """Fast-forward the page's clock until the indicator shows `word`; each step fires the
    retry timer that is due, and the refused connection then fails on its own."""
    for _ in range(4 * ATTEMPTS):
        text = await dash.status.inner_text()
        if re.search(rf"\b{word}\b", text):
            return text
        await dash.page.clock.fast_forward(step_ms)
        await asyncio.sleep(0.1)  # the refused connect is a real (loopback) network event
    raise AssertionError(f"the status never showed {word!r}: {text!r}")


async def test_an_action_is_retried_after_no_answer_with_its_own_idempotency_key(
    pages: Any, stack: Stack
) -> None:
    """The first POST is lost on the way (the browser sees a network error, as when a reply
    never comes); the page retries with the same key, so the daemon acts exactly once."""
    dash: Dash = await pages.open("idempotency", viewport={"width": 1400, "height": 900})
    await dash.goto()
    await dash.signed_in(stack.tokens["operator"])
    await expect(dash.mode).to_have_text("running")
    sent: list[dict[str, str]] = []

    async def lose_the_first(route: Any) -> None:
        sent.append(await route.request.all_headers())
        await (route.abort("failed") if len(sent) == 1 else route.continue_())

    await dash.page.route("**/api/trading/pause", lose_the_first)
    before = max(e["seq"] for e in await stack.events(stack.tokens["operator"]))
    with dash.allow(r"ERR_FAILED"):
        await dash.button("Pause").click()
        await expect(dash.mode).to_have_text("paused")
    assert len(sent) == 2, sent
    keys = {h.get("idempotency-key") for h in sent}
    assert len(keys) == 1 and None not in keys, sent
    assert {h.get("x-signalos-source") for h in sent} == {"dashboard"}
    paused = [
        e
        for e in await stack.events(stack.tokens["operator"], since=before)
        if e["type"] == "trading_paused"
    ]
    assert len(paused) == 1 and paused[0]["actor"]["source"] == "dashboard", paused
    await dash.page.unroute("**/api/trading/pause")
    await dash.button("Resume").click()
    await expect(dash.mode).to_have_text("running")
    await dash.close()


async def test_ten_failed_attempts_stop_in_error_with_retry_and_offline_frames_queue(
    pages: Any, stack: Stack
) -> None:
    dash: Dash = await pages.open("retry", viewport={"width": 1400, "height": 900})
    await dash.page.clock.install()
    await dash.goto()
    await dash.signed_in(stack.tokens["operator"])
    tester = dash.page.get_by_role("region", name="WebSocket tester")
    await expect(tester.locator(".conn-ind")).to_contain_text("connected")  # not a role=status

    with dash.allow(DAEMON_DOWN):
        stack.kill_daemon()
        await expect(dash.status).to_contain_text("connecting")
        # a frame typed while the daemon is away is queued, not lost, and the count is shown
        await tester.get_by_label("Frame (JSON)").fill('{"type": "ping", "data": {}}')
        await tester.get_by_role("button", name="Send", exact=True).click()
        await expect(tester).to_contain_text("1 queued")
        send = tester.get_by_role("button", name="Send", exact=True)
        for _ in range(QUEUE_MAX):  # one more than the queue holds: the oldest is dropped
            await send.click()
        await expect(tester).to_contain_text(f"{QUEUE_MAX} queued")

        text = await until_status(dash, "error", 31_000)
        assert f"attempt {ATTEMPTS}/{ATTEMPTS}" in text, text
        retry = dash.page.get_by_role("banner").get_by_role("button", name="Retry")
        await expect(retry).to_be_visible()
        await dash.shot("11-gave-up-retry")
        # it has stopped: more time passing brings no new attempt
        await dash.page.clock.fast_forward(120_000)
        await expect(dash.status).to_contain_text(f"error · attempt {ATTEMPTS}/{ATTEMPTS}")

        await stack.restart_daemon()
        await retry.click()
        await expect(dash.status).to_contain_text("connected")
        await expect(dash.status).not_to_contain_text(re.compile("connecting|disconnected"))

        # the tester's own connection comes back too, and its queued ping goes out: a pong
        await until_status_in(tester, dash)
    await expect(tester).not_to_contain_text("queued")
    await expect(tester.get_by_role("list", name="Frames")).to_contain_text('"type":"pong"')


async def until_status_in(tester: Any, dash: Dash) -> None:
    """The tester's connection retries on its own schedule: fast-forward until it is back."""
    status = tester.locator(".conn-ind")
    for _ in range(4 * ATTEMPTS):
        text = await status.inner_text()
        if re.search(r"\bconnected\b", text) and "disconnected" not in text:
            return
        if re.search(r"\berror\b", text):
            await tester.get_by_role("button", name="Reconnect").click()
        await dash.page.clock.fast_forward(31_000)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the tester never reconnected: {text!r}")
