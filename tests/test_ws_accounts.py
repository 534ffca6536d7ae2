"""/ws account isolation (DESIGN invariant 8): a token sees its own account's events and the
system-wide ones (account null); an admin sees every account."""

from __future__ import annotations

from signalosd.ops import maintenance
from tests.stream_client import append_events, open_stream

DAY = 86_400.0


async def activity_in_both_accounts(daemon) -> None:  # type: ignore[no-untyped-def]
    """Events of account default (via REST) and of account b, committed while subscribed."""
    status, _ = await daemon.request("POST", "/api/trading/pause", daemon.admin)
    assert status == 202
    await append_events(daemon, 2, account="b")
    status, _ = await daemon.request("POST", "/api/trading/resume", daemon.admin)
    assert status == 202


def accounts_of(messages) -> set[str | None]:  # type: ignore[no-untyped-def]
    return {m["account"] for m in messages if "seq" in m}


async def test_a_token_of_another_account_never_receives_default_events(daemon):
    viewer_b = await daemon.token("viewer", account="b")
    async with open_stream(daemon, viewer_b) as stream:
        await stream.subscribe(since=0)
        replay = await stream.sync()
        await activity_in_both_accounts(daemon)
        live = await stream.sync()

    assert [m["type"] for m in replay] == ["account_created", "token_created"]
    assert accounts_of(replay) == {"b"}
    assert [m["type"] for m in live] == ["test_event", "test_event"]
    assert accounts_of(live) == {"b"}


async def test_a_token_of_default_never_receives_events_of_account_b(daemon):
    await daemon.token("viewer", account="b")
    viewer = await daemon.token("viewer")
    async with open_stream(daemon, viewer) as stream:
        await stream.subscribe(since=0)
        replay = await stream.sync()
        await activity_in_both_accounts(daemon)
        live = await stream.sync()

    assert accounts_of(replay) == {"default"}
    assert accounts_of(live) == {"default"}
    assert [m["type"] for m in live] == [
        "trading_paused",
        "command_queued",
        "trading_resumed",
        "command_queued",
    ]


async def test_an_admin_receives_the_events_of_every_account(daemon):
    await daemon.token("viewer", account="b")
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=0)
        replay = await stream.sync()
        await activity_in_both_accounts(daemon)
        live = await stream.sync()

    assert accounts_of(replay) == {"default", "b"}
    assert [(m["account"], m["type"]) for m in live] == [
        ("default", "trading_paused"),
        ("default", "command_queued"),
        ("b", "test_event"),
        ("b", "test_event"),
        ("default", "trading_resumed"),
        ("default", "command_queued"),
    ]


async def test_system_events_reach_every_subscriber(daemon):
    viewer_b = await daemon.token("viewer", account="b")
    viewer = await daemon.token("viewer")
    async with (
        open_stream(daemon, viewer_b) as of_b,
        open_stream(daemon, viewer) as of_default,
        open_stream(daemon, daemon.admin) as admin,
    ):
        for stream in (of_b, of_default, admin):
            await stream.subscribe()
            await stream.sync()
        daemon.clock.advance(daemon.settings.event_retention_days * DAY + DAY)
        await maintenance.run_once(daemon.db, daemon.settings)
        got = [await stream.sync() for stream in (of_b, of_default, admin)]

    for messages in got:
        assert [(m["type"], m["account"]) for m in messages] == [("events_pruned", None)]


async def test_a_replay_of_another_account_includes_system_events(daemon):
    viewer_b = await daemon.token("viewer", account="b")
    system = await append_events(daemon, 1, account=None, type_="system_notice")
    await append_events(daemon, 1)  # account default
    async with open_stream(daemon, viewer_b) as stream:
        await stream.subscribe(since=system[0] - 1)
        replay = await stream.sync()

    assert [(m["seq"], m["account"]) for m in replay] == [(system[0], None)]


async def test_a_reset_snapshot_holds_only_the_accounts_the_token_may_see(daemon):
    viewer_b = await daemon.token("viewer", account="b")
    await daemon.add_trade(account="default", symbol="EURUSD")
    async with open_stream(daemon, viewer_b) as stream:
        await stream.subscribe(since=10_000)
        (reset,) = await stream.sync()

    assert reset["type"] == "reset"
    assert [a["account"] for a in reset["data"]["snapshot"]["accounts"]] == ["b"]
    assert reset["data"]["snapshot"]["accounts"][0]["trades"] == []
