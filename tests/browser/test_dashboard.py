"""The dashboard in Debian's Chromium against a real daemon and a real paper agent (issue 10):
sign-in, live trades, row actions, the viewer's read-only view, the keyboard, the phone layout,
the daemon's kill -9 and restart (the event log on the page equal to `GET /api/events`, no gap,
no duplicate) and, last (it halts the account), the emergency stop and the resume from it.

One daemon (with `--dev`: the WebSocket tester is there), agent and browser serve the whole
module; the tests run in file order and each one leaves the account as the next expects it
(running, with the EURUSD buy of `trade_id` open, until the stop).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.stack import DAEMON_DOWN, NETWORK_401, NETWORK_422, Dash, Stack, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAEMON_ARGS = ("--dev",)
SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "source": "browser-test"}
SECOND = {"symbol": "XAUUSD", "side": "buy", "volume": 0.01, "source": "browser-test"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dash(pages: Any) -> Dash:
    """The operator's page, signed in by the first two tests and kept for the module."""
    return await pages.open("operator", viewport={"width": 1400, "height": 900})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trade_id(stack: Stack) -> int:
    """A buy the paper agent opens (posted over REST, as a signal source would)."""
    reply = await stack.api("POST", "/api/signals", stack.tokens["operator"], json=SIGNAL)
    return int(reply["command"]["trade_id"])


async def newest_seq(stack: Stack, token: str) -> int:
    return max(e["seq"] for e in await stack.events(token))


async def test_the_page_has_its_security_headers_and_refuses_a_bad_token(dash: Dash) -> None:
    response = await dash.goto()
    assert response.status == 200
    headers = await response.all_headers()
    assert headers.get("content-security-policy") == CSP
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"

    with dash.allow(NETWORK_401):
        await dash.sign_in("not-a-token-" + "x" * 40)
        alert = dash.page.get_by_role("alert")
        await expect(alert).to_contain_text("refused")
    await expect(dash.page.get_by_label("Token")).to_be_visible()
    assert await dash.page.evaluate("sessionStorage.getItem('signalos.token')") is None
    await dash.shot("01-sign-in-refused")


async def test_signing_in_shows_connection_mode_and_account(dash: Dash, stack: Stack) -> None:
    token = stack.tokens["operator"]
    await dash.signed_in(token)
    await expect(dash.mode).to_have_text("running")
    await expect(dash.page.get_by_test_id("stealth")).to_have_text(re.compile(r"^(on|off)$"))
    await expect(dash.page.get_by_test_id("agent")).to_have_text(re.compile(r"^connected"))
    await expect(dash.page.get_by_test_id("balance")).to_contain_text(re.compile(r"\d"))
    await expect(dash.button("Sign out")).to_be_visible()
    await expect(dash.page.get_by_role("region", name="WebSocket tester")).to_be_visible()
    # the token lives in sessionStorage only, and never in the address bar
    assert await dash.page.evaluate("sessionStorage.getItem('signalos.token')") == token
    assert await dash.page.evaluate("localStorage.length") == 0
    assert token not in dash.page.url


async def test_a_signal_makes_a_row_appear_and_its_pnl_moves_live(
    dash: Dash, stack: Stack, trade_id: int
) -> None:
    row = dash.row(trade_id)
    await expect(row).to_have_count(1)
    await expect(dash.cell(trade_id, "symbol")).to_have_text("EURUSD")
    await expect(dash.cell(trade_id, "status")).to_contain_text("open")
    profit = dash.cell(trade_id, "profit")
    await expect(profit).to_have_text(re.compile(r"\d"))
    first = await profit.inner_text()
    # the paper broker walks prices and the agent re-reports a move of 0.01 % (polled every
    # 0.5 s): the cell changes without a reload
    await expect(profit).not_to_have_text(first)
    await expect(profit).to_have_class(re.compile(r"pnl-(pos|neg)"))
    await expect(dash.page.get_by_role("table", name="Signals")).to_contain_text("EURUSD")
    await dash.shot("02-live-trade")


async def test_the_new_trade_form_opens_a_position(dash: Dash, stack: Stack) -> None:
    form = dash.page.get_by_role("form", name="New trade")
    await form.get_by_label("Symbol").fill("GBPUSD")
    await form.get_by_label("Side").select_option("sell")
    await form.get_by_label("Volume").fill("0.2")
    await expect(dash.button("Open trade")).to_be_enabled()
    await dash.button("Open trade").click()
    signals = dash.page.get_by_role("table", name="Signals")
    await expect(signals.locator("tr[data-signal-id]").first).to_contain_text("GBPUSD")

    async def accepted() -> dict[str, Any] | None:
        newest = (await stack.api("GET", "/api/signals", params={"limit": 1}))["signals"]
        return newest[0] if newest and newest[0]["symbol"] == "GBPUSD" else None

    signal = await stack.until(accepted, "the form's signal to reach the daemon")
    assert (signal["side"], signal["volume"], signal["status"]) == ("sell", 0.2, "accepted")
    await expect(dash.cell(signal["trade_id"], "side")).to_have_text("sell")
    await expect(dash.cell(signal["trade_id"], "status")).to_contain_text("open")


async def test_partial_close_halves_the_volume(dash: Dash, stack: Stack, trade_id: int) -> None:
    await stack.trade_open(trade_id)
    await dash.row(trade_id).get_by_role("button", name="Partial close", exact=True).click()
    dialog = dash.dialog
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Percent to close")).to_have_value(re.compile(r"^50(\.0*)?$"))
    await expect(dialog.get_by_label("Volume to close")).to_have_value(re.compile(r"^0\.050*$"))
    await dialog.get_by_role("button", name="Confirm partial close").click()
    await expect(dash.cell(trade_id, "command")).to_contain_text("succeeded")
    await expect(dash.cell(trade_id, "volume")).to_have_text(re.compile(r"^\s*0\.050*\s*$"))
    assert (await stack.trade(trade_id))["volume"] == pytest.approx(0.05)
    await expect(dialog).to_have_count(0)


async def test_modify_with_sl_on_the_wrong_side_shows_the_422_and_changes_nothing(
    dash: Dash, stack: Stack, trade_id: int
) -> None:
    before = await stack.trade_open(trade_id)
    last_seq = (await stack.api("GET", "/api/events", params={"limit": 1}))["last_seq"]
    wrong_sl = round(before["current_price"] + 0.05, 5)  # above the price of a buy
    await dash.row(trade_id).get_by_role("button", name="Modify", exact=True).click()
    dialog = dash.dialog
    await expect(dialog.get_by_label("Stop loss")).to_be_focused()
    await dialog.get_by_label("Stop loss").fill(str(wrong_sl))
    with dash.allow(NETWORK_422):
        await dialog.get_by_role("button", name="Save levels").click()
        alert = dialog.get_by_role("alert")
        await expect(alert).to_contain_text(
            re.compile(rf"stop loss {re.escape(str(wrong_sl))} must be below the current price")
        )
    await expect(dialog).to_be_visible()  # stays open to fix the level
    await dash.shot("03-modify-refused")
    await dialog.press("Escape")
    await expect(dialog).to_have_count(0)

    after = await stack.trade(trade_id)
    assert (after["sl"], after["tp"]) == (before["sl"], before["tp"])
    queued = await stack.events(stack.admin, since=last_seq, type="command_queued")
    assert [e for e in queued if e["data"]["type"] == "modify_trade"] == []


async def test_a_viewer_sees_everything_with_every_control_disabled_until_revoked(
    pages: Any, stack: Stack, trade_id: int
) -> None:
    viewer = await pages.open("viewer", viewport={"width": 1400, "height": 900})
    await viewer.goto()
    await viewer.signed_in(stack.tokens["viewer"])
    await expect(viewer.row(trade_id)).to_have_count(1)
    await expect(viewer.cell(trade_id, "volume")).to_have_text(re.compile(r"0\.05"))
    await expect(viewer.event_log.locator("tr[data-seq]").first).to_be_attached()
    controls = [
        viewer.button(name)
        for name in ("Emergency stop", "Pause", "Resume", "Stealth", "Sync", "Open trade")
    ] + [
        viewer.row(trade_id).get_by_role("button", name=name, exact=True)
        for name in ("Close", "Partial close", "Modify", "Trail")
    ]
    for control in controls:
        await expect(control).to_be_disabled()
        await expect(control).to_have_accessible_description(
            re.compile("needs an operator token", re.I)
        )
    await expect(viewer.page.get_by_text("needs an operator token").first).to_be_visible()
    await viewer.shot("04-viewer")

    # revoked while signed in: back to the sign-in screen, saying so
    with viewer.allow(NETWORK_401):
        await asyncio.to_thread(stack.revoke, "viewer")
        await expect(viewer.page.get_by_label("Token")).to_be_visible()
        await expect(viewer.page.get_by_role("alert")).to_contain_text("refused")
    assert await viewer.page.evaluate("sessionStorage.getItem('signalos.token')") is None
    await viewer.close()
    pages.opened.remove(viewer)


async def test_the_keyboard_alone_reaches_emergency_stop_and_escape_closes_it(
    dash: Dash, stack: Stack
) -> None:
    stop = dash.button("Emergency stop")
    await dash.page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(80):  # from the top of the page, Tab by Tab
        await dash.page.keyboard.press("Tab")
        if await stop.evaluate("e => e === document.activeElement"):
            break
    else:
        pytest.fail("80 presses of Tab never reached the Emergency stop button")
    await dash.page.keyboard.press("Enter")
    await expect(dash.dialog).to_be_visible()
    await expect(dash.dialog).to_have_accessible_name("Emergency stop")
    # the dialog moves the focus to its first field once it has rendered: wait for that
    await expect(dash.dialog.get_by_label("Close all positions")).to_be_focused()
    assert (await dash.focused())["inDialog"], await dash.focused()
    await dash.shot("05-emergency-stop-dialog")
    await dash.page.keyboard.press("Escape")
    await expect(dash.dialog).to_have_count(0)
    await expect(stop).to_be_focused()  # focus went back to the opener
    assert (await stack.api("GET", "/api/trading/state"))["mode"] == "running"


async def test_on_a_phone_the_layout_reflows_and_emergency_stop_stays_in_reach(
    pages: Any, stack: Stack, trade_id: int
) -> None:
    phone = await pages.open(
        "phone",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    await phone.goto()
    await phone.signed_in(stack.tokens["operator"])
    await expect(phone.button("Emergency stop")).to_be_in_viewport()
    width = await phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width}px wide)"
    await expect(phone.row(trade_id)).to_be_attached()
    await phone.shot("06-phone")
    await phone.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await expect(phone.button("Emergency stop")).to_be_in_viewport()
    await phone.shot("06-phone-scrolled")
    await phone.close()
    pages.opened.remove(phone)


async def test_trail_then_close_a_trade_from_its_row(dash: Dash, stack: Stack) -> None:
    trades = (await stack.api("GET", "/api/trades", params={"symbol": "GBPUSD"}))["trades"]
    assert len(trades) == 1, trades  # the New trade form's sell
    tid = trades[0]["id"]
    await dash.row(tid).get_by_role("button", name="Trail", exact=True).click()
    await dash.dialog.get_by_label("Distance").fill("0.005")
    await dash.dialog.get_by_role("button", name="Start trailing").click()
    await expect(dash.dialog).to_have_count(0)
    await expect(dash.cell(tid, "command")).to_contain_text("succeeded")
    await expect(dash.cell(tid, "trailing")).to_have_text(re.compile(r"0\.0050*"))

    await dash.row(tid).get_by_role("button", name="Close", exact=True).click()
    await dash.dialog.get_by_role("button", name="Confirm close").click()
    await expect(dash.row(tid)).to_have_count(0)
    assert (await stack.trade(tid))["status"] == "closed"


async def test_stealth_pause_and_resume_follow_the_daemon(dash: Dash, stack: Stack) -> None:
    stealth = dash.button("Stealth")
    await stealth.click()
    await expect(dash.page.get_by_test_id("stealth")).to_have_text("on")
    await expect(stealth).to_have_attribute("aria-pressed", "true")
    assert (await stack.api("GET", "/api/trading/state"))["stealth"] is True
    await stealth.click()
    await expect(dash.page.get_by_test_id("stealth")).to_have_text("off")

    await dash.button("Pause").click()
    await expect(dash.mode).to_have_text("paused")
    assert (await stack.api("GET", "/api/trading/state"))["mode"] == "paused"
    entry = dash.button("Open trade")
    await expect(entry).to_be_disabled()
    await expect(entry).to_have_accessible_description(re.compile("paused", re.I))
    await dash.button("Resume").click()  # from paused: no second question
    await expect(dash.mode).to_have_text("running")
    await expect(entry).to_be_enabled()
    assert (await stack.api("GET", "/api/trading/state"))["mode"] == "running"


async def test_the_event_log_filters_by_type_and_pauses_auto_scroll(dash: Dash) -> None:
    log = dash.event_log
    await dash.page.get_by_label("Filter by type").fill("command_*")
    types = log.locator("tr[data-seq] td:nth-child(3)")
    await expect(types.first).to_have_text(re.compile(r"^command_"))
    shown = await types.all_inner_texts()
    assert shown and all(t.startswith("command_") for t in shown), shown
    await dash.page.get_by_label("Filter by type").fill("")
    await expect(
        log.locator("tr[data-seq] td:nth-child(3)", has_text="trade_").first
    ).to_be_attached()
    toggle = dash.button("Pause auto-scroll")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")


async def test_after_kill_9_and_a_restart_the_event_log_has_no_gap_and_no_duplicate(
    dash: Dash, stack: Stack
) -> None:
    token = stack.tokens["operator"]
    await stack.api("POST", "/api/signals", token, json=SECOND)
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
        await dash.shot("07-reconnecting")

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
    await dash.shot("08-reconnected")


async def test_emergency_stop_halts_and_the_entry_control_says_why(
    dash: Dash, stack: Stack, trade_id: int
) -> None:
    await dash.button("Emergency stop").click()
    dialog = dash.dialog
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Close all positions").check()
    await dialog.get_by_role("button", name="Confirm stop").click()
    await expect(dash.mode).to_have_text("halted")
    assert (await stack.api("GET", "/api/trading/state"))["mode"] == "halted"
    # what happened, in the dialog: entries cancelled, the stop's result, positions closed
    await expect(dialog.get_by_test_id("stop-cancelled")).to_have_text(
        re.compile(r"Entries cancelled: \d+")
    )
    await expect(dialog.get_by_test_id("stop-command")).to_contain_text("succeeded")
    await expect(dialog.get_by_test_id("stop-closed")).to_contain_text(
        re.compile(r"Positions closed: [1-9]")
    )
    await expect(dialog.get_by_test_id("stop-failed")).to_contain_text("Positions failing: 0")
    await dash.shot("09-emergency-stop-result")
    await dialog.get_by_role("button", name="Close", exact=True).click()
    await expect(dialog).to_have_count(0)

    async def closed() -> bool:
        return (await stack.trade(trade_id))["status"] == "closed"

    await stack.until(closed, "close_all to close the open trade")
    await expect(dash.row(trade_id)).to_have_count(0)
    await dash.page.get_by_role("tab", name="Closed").click()
    closed_table = dash.page.get_by_role("table", name="Closed trades")
    await expect(closed_table.locator(f'tr[data-trade-id="{trade_id}"]')).to_have_count(1)
    await dash.page.get_by_role("tab", name="Open").click()

    entry = dash.button("Open trade")
    await expect(entry).to_be_disabled()
    await expect(entry).to_have_accessible_description(re.compile("halted", re.I))
    await expect(dash.button("Resume")).to_be_enabled()
    await dash.shot("10-halted")

    # leaving the halt asks again
    await dash.button("Resume").click()
    await expect(dash.dialog).to_be_visible()
    await dash.dialog.get_by_role("button", name="Confirm resume").click()
    await expect(dash.mode).to_have_text("running")
    assert (await stack.api("GET", "/api/trading/state"))["mode"] == "running"
    await expect(entry).to_be_enabled()
