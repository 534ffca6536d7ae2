"""Delivery of alerts to a real receiver on 127.0.0.1: durable and at least once, in seq order,
signed, exactly the matching events; retried, then given up as `webhook_failed`; never in the
way of an emergency stop; and the event log keeps what a webhook has yet to be sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from signalosd.alerts import signing
from signalosd.app import create_app
from signalosd.clock import ManualClock
from signalosd.config import Settings
from signalosd.models import Role
from signalosd.models.type_filter import TypeFilter
from signalosd.ops import maintenance
from tests.conftest import Harness, make_settings
from tests.fake_agent import connect_agent, until
from tests.webhook_receiver import Receiver

SECRET = "receiver-shared-secret"
FAST = {"webhook_retry_first_s": 0.01, "webhook_retry_max_s": 0.05}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, **FAST)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.close()


async def _hook(daemon: Harness, url: str, **body: Any) -> int:
    status, reply = await daemon.request(
        "POST", "/api/webhooks", daemon.admin, json={"url": url, "secret": SECRET} | body
    )
    assert status == 201, reply
    return int(reply["webhook"]["id"])


async def _post(daemon: Harness, path: str, body: dict[str, Any] | None = None) -> int:
    status, reply = await daemon.request("POST", path, daemon.admin, json=body or {})
    assert status in (200, 202), reply
    return status


async def _listed(daemon: Harness, webhook_id: int) -> dict[str, Any]:
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    return next(h for h in listed["webhooks"] if h["id"] == webhook_id)


def _matching(events: list[dict[str, Any]], patterns: list[str], after: int) -> list[int]:
    wanted = TypeFilter(patterns)
    return [e["seq"] for e in events if e["seq"] > after and wanted(e["type"])]


async def test_alerts_arrive_in_order_signed_and_matching_across_failures_and_a_restart(
    aiohttp_client: Any, settings: Settings, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.fail_first = 3
    patterns = ["trading_*", "emergency_stop"]
    client: TestClient = await aiohttp_client(create_app(settings, clock))
    daemon = Harness(client, client.server.app, clock)
    webhook_id = await _hook(daemon, receiver.url(), events=patterns)
    start = (await _listed(daemon, webhook_id))["delivered_seq"]
    await _post(daemon, "/api/trading/pause", {"reason": "news"})
    await _post(daemon, "/api/trading/stealth-toggle")  # stealth_changed: not matching
    await _post(daemon, "/api/trading/resume")
    # Mid-way: the receiver has refused the first alert at least twice, nothing is accepted.
    await receiver.until(lambda: len(receiver.hits) >= 2)
    assert receiver.accepted == []
    await client.close()  # the daemon stops, with alerts undelivered

    client = await aiohttp_client(create_app(settings, clock))  # same database file
    daemon = Harness(client, client.server.app, clock)
    await _post(daemon, "/api/trading/emergency-stop", {"reason": "drawdown"})
    expected = _matching(await daemon.events(), patterns, start)
    assert len(expected) == 3
    await receiver.until(lambda: {h.seq for h in receiver.accepted} >= set(expected))

    seqs = [h.seq for h in receiver.hits]
    assert seqs == sorted(seqs), "an alert overtook an earlier one"
    assert sorted(set(seqs)) == expected, "only the matching events, each of them"
    accepted = [h.seq for h in receiver.accepted]
    assert accepted == expected, "each alert accepted once (none was in flight at the stop)"
    for hit in receiver.hits:
        assert signing.verify(SECRET, hit.body, hit.headers["X-SignalOS-Signature"])
        doc = hit.doc
        assert doc["seq"] == hit.seq and hit.headers["X-SignalOS-Event"] == doc["type"]
        assert set(doc) == {"seq", "type", "account", "data", "ts", "actor", "text"}
    last = receiver.accepted[-1].doc
    assert last["type"] == "emergency_stop" and last["account"] == "default"
    assert last["text"] == f"EMERGENCY STOP on account default: reason drawdown (seq {last['seq']})"
    await until(lambda: _caught_up(daemon, webhook_id))


async def _caught_up(daemon: Harness, webhook_id: int) -> bool:
    hook = await _listed(daemon, webhook_id)
    return bool(hook["pending"] == 0 and hook["failures"] == 0)


@pytest.fixture
def stuck_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_timeout_s=120.0, **FAST)


async def test_a_receiver_that_never_answers_does_not_delay_an_emergency_stop(
    aiohttp_client: Any, stuck_settings: Settings, clock: ManualClock
) -> None:
    receiver = await Receiver(hang=True).start()
    try:
        client = await aiohttp_client(create_app(stuck_settings, clock))
        daemon = Harness(client, client.server.app, clock)
        agent = await connect_agent(daemon, await daemon.token(Role.AGENT))
        webhook_id = await _hook(daemon, receiver.url(), events=["trading_paused"])
        await _post(daemon, "/api/trading/pause")
        await receiver.until(lambda: len(receiver.hits) == 1)  # the attempt is in flight

        status, reply = await daemon.request(
            "POST", "/api/trading/emergency-stop", daemon.admin, json={"reason": "now"}
        )
        assert status == 202 and reply["mode"] == "halted", reply
        while (command := await agent.command())["type"] != "emergency_stop":
            await agent.result(command["id"], ok=True)
        # Ordered proof: the stop committed and reached the agent after the alert's attempt
        # began, and that attempt is still unanswered (its cursor has not moved).
        pause = next(e for e in await daemon.events() if e["type"] == "trading_paused")
        assert reply["command"]["id"] == command["id"]
        hook = await _listed(daemon, webhook_id)
        assert hook["delivered_seq"] < pause["seq"] and hook["pending"] == 1
        assert len(receiver.hits) == 1 and receiver.hits[0].status == 0
        await agent.close()
        await client.close()  # shutdown cancels the stuck attempt: it must not hang
    finally:
        await receiver.close()


@pytest.fixture
def give_up_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_retry_for_s=30.0, **FAST)


async def test_after_the_retry_window_webhook_failed_is_appended_and_later_alerts_go_on(
    aiohttp_client: Any, give_up_settings: Settings, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.fail_first = 10**6
    client = await aiohttp_client(create_app(give_up_settings, clock))
    daemon = Harness(client, client.server.app, clock)
    webhook_id = await _hook(daemon, receiver.url(), events=["*"])
    await _post(daemon, "/api/trading/pause")
    await receiver.until(lambda: len(receiver.hits) >= 2)
    first = receiver.hits[0].seq

    async def failing() -> bool:
        return bool((await _listed(daemon, webhook_id))["failures"] >= 2)

    await until(failing)
    hook = await _listed(daemon, webhook_id)
    assert hook["last_error"].startswith("HTTP 500") and hook["last_attempt_at"]
    clock.advance(31)  # past webhook_retry_for_s, by the daemon's clock

    async def gave_up() -> list[dict[str, Any]]:
        return [e for e in await daemon.events() if e["type"] == "webhook_failed"]

    await until(lambda: _truthy(gave_up()))
    failed = (await gave_up())[0]
    assert failed["data"]["webhook_id"] == webhook_id and failed["data"]["seq"] == first
    assert failed["data"]["type"] == receiver.hits[0].doc["type"]
    assert failed["data"]["attempts"] >= 3 and "HTTP 500" in failed["data"]["error"]
    assert failed["actor"]["kind"] == "system"

    receiver.fail_first = 0  # the receiver is back
    await _post(daemon, "/api/trading/resume")
    resumed = next(e for e in await daemon.events() if e["type"] == "trading_resumed")
    await receiver.until(lambda: resumed["seq"] in {h.seq for h in receiver.accepted})
    # events=["*"], yet it was never sent the webhook_failed about itself
    assert failed["seq"] not in {h.seq for h in receiver.hits}
    seqs = [h.seq for h in receiver.hits]
    assert seqs == sorted(seqs)


async def _truthy(awaitable: Any) -> bool:
    return bool(await awaitable)


async def test_another_webhook_is_told_of_the_failure(
    aiohttp_client: Any, tmp_path: Path, clock: ManualClock, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, webhook_retry_for_s=0.0, **FAST)
    client = await aiohttp_client(create_app(settings, clock))
    daemon = Harness(client, client.server.app, clock)
    dead = await _hook(daemon, "http://127.0.0.1:9/refused", events=["trading_paused"])
    await _hook(daemon, receiver.url("/ops"), events=["webhook_failed"], format="slack")
    await _post(daemon, "/api/trading/pause")
    await receiver.until(lambda: bool(receiver.accepted))
    hit = receiver.accepted[0]
    assert hit.headers["X-SignalOS-Event"] == "webhook_failed" and set(hit.doc) == {"text"}
    assert hit.doc["text"].startswith(f"Webhook {dead} gave up on trading_paused")
    assert "refused" not in hit.doc["text"]  # the URL's path is never shown


async def test_an_account_limited_webhook_gets_only_that_accounts_alerts(
    daemon: Harness, receiver: Receiver
) -> None:
    other = await daemon.token(Role.OPERATOR, account="prop-2")
    await _hook(daemon, receiver.url(), events=["trading_*"], account="prop-2")
    await _post(daemon, "/api/trading/pause")  # the default account's
    status, _ = await daemon.request("POST", "/api/trading/pause", other)
    assert status == 202
    await receiver.until(lambda: bool(receiver.accepted))
    assert [h.doc["account"] for h in receiver.hits] == ["prop-2"]


FORMATS = ["json", "slack", "discord", "telegram", "ntfy"]


async def test_each_format_has_its_receivers_shape(daemon: Harness, receiver: Receiver) -> None:
    for fmt in FORMATS:
        path = f"/{fmt}?chat_id=-100123" if fmt == "telegram" else f"/{fmt}"
        await _hook(daemon, receiver.url(path), events=["emergency_stop"], format=fmt)
    await _post(daemon, "/api/trading/emergency-stop", {"reason": "limit", "close_all": True})
    await receiver.until(lambda: len(receiver.accepted) == len(FORMATS))
    by_path = {h.path: h for h in receiver.accepted}
    line = by_path["/json"].doc["text"]
    assert line.startswith("EMERGENCY STOP on account default: reason limit")
    assert by_path["/slack"].doc == {"text": line}
    assert by_path["/discord"].doc == {"content": line}
    assert by_path["/telegram"].doc == {"text": line, "chat_id": "-100123"}
    ntfy = by_path["/ntfy"]
    assert ntfy.body.decode() == line and ntfy.headers["Priority"] == "5"
    assert ntfy.headers["Title"] == "SignalOS emergency_stop on default"
    assert ntfy.headers["Tags"] == "rotating_light"
    for hit in receiver.accepted:
        assert hit.headers["X-SignalOS-Seq"] == str(by_path["/json"].doc["seq"])
        assert signing.verify(SECRET, hit.body, hit.headers["X-SignalOS-Signature"])


async def test_a_deleted_webhook_is_sent_nothing_more(daemon: Harness, receiver: Receiver) -> None:
    gone = await _hook(daemon, receiver.url("/gone"), events=["trading_*"])
    await _hook(daemon, receiver.url("/kept"), events=["trading_*"])
    assert (await daemon.request("DELETE", f"/api/webhooks/{gone}", daemon.admin))[0] == 200
    await _post(daemon, "/api/trading/pause")
    await receiver.until(lambda: bool(receiver.accepted))  # the kept one, ordered after
    assert [h.path for h in receiver.hits] == ["/kept"]


async def test_retention_keeps_the_events_a_webhook_has_yet_to_send(
    aiohttp_client: Any, stuck_settings: Settings, clock: ManualClock
) -> None:
    receiver = await Receiver(hang=True).start()
    try:
        client = await aiohttp_client(create_app(stuck_settings, clock))
        daemon = Harness(client, client.server.app, clock)
        await _post(daemon, "/api/trading/stealth-toggle")  # old and delivered to nobody
        webhook_id = await _hook(daemon, receiver.url(), events=["trading_paused"])
        await _post(daemon, "/api/trading/pause")
        await receiver.until(lambda: len(receiver.hits) == 1)
        cursor = (await _listed(daemon, webhook_id))["delivered_seq"]
        clock.advance(40 * 86400)  # past event_retention_days
        done = await maintenance.run_once(daemon.db, stuck_settings)
        assert done["events_pruned"] > 0
        status, reset = await daemon.request("GET", "/api/events?since=0", daemon.admin)
        assert status == 409, reset
        assert reset["error"]["details"]["pruned_through"] == cursor, "not past the cursor"
        kept = await daemon.events(since=cursor)
        assert receiver.hits[0].seq in [e["seq"] for e in kept]
        await client.close()
    finally:
        await receiver.close()


def test_the_signature_is_hmac_sha256_of_the_exact_body() -> None:
    import hashlib
    import hmac

    body = json.dumps({"seq": 1}).encode()
    expected = "sha256=" + hmac.new(b"k" * 16, body, hashlib.sha256).hexdigest()
    assert signing.signature("k" * 16, body) == expected
    assert signing.verify("k" * 16, body, expected)
    assert not signing.verify("k" * 16, body + b" ", expected)


@pytest.mark.parametrize(
    ("type_", "account", "data", "line"),
    [
        (
            "emergency_stop",
            "main",
            {"reason": "drawdown\nforged line", "close_all": True},
            "EMERGENCY STOP on account main: reason drawdown forged line "
            "(closing every position) (seq 7)",
        ),
        (
            "risk_limit_breached",
            "main",
            {"limit": "daily_loss_pct", "equity": 9480.0, "trip_below": 9500.0},
            "Risk limit daily_loss_pct breached on account main: equity 9480.00 below 9500.00 "
            "(seq 7)",
        ),
        (
            "command_failed",
            "main",
            {"type": "close_trade", "reason": "market closed", "retcode": 10018},
            "Command close_trade failed on account main: market closed (seq 7)",
        ),
        ("agent_disconnected", "main", {"reason": "heartbeat"}, None),
        ("trading_paused", None, {"message": "Trading paused"}, None),
    ],
)
def test_the_human_line_of_each_type(
    type_: str, account: str | None, data: dict[str, Any], line: str | None
) -> None:
    from signalosd.alerts import text

    got = text.line(7, type_, account, data)
    assert got.endswith("(seq 7)") and "\n" not in got
    if line is not None:
        assert got == line
    else:
        assert (account or "every account") in got
