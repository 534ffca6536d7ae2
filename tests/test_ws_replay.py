"""/ws replay-then-live (DESIGN invariant 5): a subscriber that resumes from seq s receives
exactly s+1, s+2, … in order, with no gap and no duplicate, or an explicit `reset`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from signalosd import keys
from signalosd.auth.accounts import write_secret
from signalosd.auth.tokens import issue_token
from signalosd.models import Role
from signalosd.ops import maintenance
from signalosd.store.open import sync_transaction
from tests.conftest import make_settings
from tests.stream_client import (
    append_events,
    head_seq,
    kinds,
    open_stream,
    seqs,
    start_daemon,
    until,
)

DAY = 86_400.0


def seed_database_without_events(settings, clock) -> None:  # type: ignore[no-untyped-def]
    """An account and an admin token, but not one event in the log yet."""
    with sync_transaction(settings, clock) as tx:
        account_id = tx.conn.execute(
            "INSERT INTO accounts (name, created_at) VALUES ('default', ?)", (tx.now,)
        ).lastrowid
        tx.conn.execute(
            "INSERT INTO trading_state (account_id, mode, stealth, since) "
            "VALUES (?, 'running', 0, ?)",
            (account_id, tx.now),
        )
        _, secret = issue_token(tx, account_id, Role.ADMIN, "test admin")
    write_secret(settings.admin_token_path, secret)


@dataclass(frozen=True)
class Replay:
    log: str  # "empty": no event; "six": seqs 1..6; "pruned": 1..6 pruned, 7 = events_pruned
    since: int | None  # None: subscribe without `since` (live only)
    replayed: list[int]
    live: list[int]  # the two events committed after the subscription is live
    reset: str | None = None
    reset_last_seq: int | None = None


REPLAYS = {
    "empty log since 0: nothing, then live": Replay("empty", 0, [], [1, 2]),
    "since 0: the whole log": Replay("six", 0, [1, 2, 3, 4, 5, 6], [7, 8]),
    "from the middle": Replay("six", 3, [4, 5, 6], [7, 8]),
    "at the head: nothing, then live": Replay("six", 6, [], [7, 8]),
    "future seq: reset to the head": Replay("six", 100, [], [7, 8], "future", 6),
    "pruned seq: reset with snapshot": Replay("pruned", 3, [], [8, 9], "pruned", 7),
    "since 0 of a pruned log: reset": Replay("pruned", 0, [], [8, 9], "pruned", 7),
    "the last pruned seq itself resumes": Replay("pruned", 6, [7], [8, 9]),
    "no since: live only": Replay("six", None, [], [7, 8]),
}


async def daemon_with_log(log: str, aiohttp_client, tmp_path, clock):  # type: ignore[no-untyped-def]
    if log == "empty":
        seed_database_without_events(make_settings(tmp_path), clock)
        daemon = await start_daemon(aiohttp_client, tmp_path, clock)
        assert await head_seq(daemon) == 0
        return daemon
    daemon = await start_daemon(aiohttp_client, tmp_path, clock)
    assert await append_events(daemon, 4) == [3, 4, 5, 6]  # after the bootstrap's 1 and 2
    if log == "pruned":
        clock.advance(daemon.settings.event_retention_days * DAY + DAY)
        done = await maintenance.run_once(daemon.db, daemon.settings)
        assert done["events_pruned"] == 6
        assert await daemon.db.read(lambda tx: tx.pruned_through()) == 6
        assert await head_seq(daemon) == 7
    return daemon


@pytest.mark.parametrize("case", list(REPLAYS.values()), ids=list(REPLAYS))
async def test_subscribe_replays_exactly_the_events_after_since_then_goes_live(
    case: Replay, aiohttp_client, tmp_path, clock
):
    daemon = await daemon_with_log(case.log, aiohttp_client, tmp_path, clock)
    subscribe = {} if case.since is None else {"since": case.since}
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(**subscribe)
        replay = await stream.sync()
        committed = await append_events(daemon, 2)
        live = await stream.sync()

    assert committed == case.live
    if case.reset is None:
        assert "reset" not in kinds(replay)
    else:
        assert kinds(replay)[0] == "reset"
        reset = replay[0]["data"]
        assert (reset["reason"], reset["last_seq"]) == (case.reset, case.reset_last_seq)
        assert [a["account"] for a in reset["snapshot"]["accounts"]] == ["default"]
    assert seqs(replay) == case.replayed
    assert seqs(live) == case.live
    assert kinds(live) == ["test_event", "test_event"]


async def test_a_reset_carries_a_snapshot_of_mode_and_live_trades(daemon):
    trade_id = await daemon.add_trade(symbol="XAUUSD")
    status, _ = await daemon.request(
        "POST", "/api/trading/pause", daemon.admin, json={"reason": "news"}
    )
    assert status == 202
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=10_000)
        replay = await stream.sync()

    (reset,) = [m["data"] for m in replay if m["type"] == "reset"]
    assert reset["last_seq"] == await head_seq(daemon)
    (account,) = reset["snapshot"]["accounts"]
    assert account["account"] == "default"
    assert account["trading"]["mode"] == "paused"
    assert [(t["id"], t["symbol"]) for t in account["trades"]] == [(trade_id, "XAUUSD")]


async def test_event_messages_have_the_seed_envelope_with_seq_account_and_actor(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe()
        await stream.sync()
        status, _ = await daemon.request("POST", "/api/trading/pause", daemon.admin)
        assert status == 202
        paused, queued = await stream.sync()

    assert paused["type"] == "trading_paused" and queued["type"] == "command_queued"
    assert queued["seq"] == paused["seq"] + 1
    assert paused["id"] == f"evt_{paused['seq']}"
    assert paused["account"] == "default"
    assert paused["actor"]["kind"] == "token" and paused["actor"]["role"] == "admin"
    assert paused["timestamp"] == "2026-01-05T09:00:00.000Z"
    assert isinstance(paused["data"], dict)


async def test_subscribing_from_the_authenticated_last_seq_misses_nothing(daemon):
    async with open_stream(daemon) as stream:
        last_seq = (await stream.authenticate(daemon.admin))["last_seq"]
        between = await append_events(daemon, 3)  # committed before the subscribe arrives
        await stream.subscribe(since=last_seq)
        replay = await stream.sync()

    assert between[0] == last_seq + 1
    assert seqs(replay) == between


async def follow(daemon, since: int, received: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Subscribe from `since` and record every event seq received, until cancelled."""
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=since)
        while True:
            msg = await stream.recv()
            assert msg["type"] != "reset", msg
            if "seq" in msg:
                received.append(msg["seq"])


async def test_replay_racing_continuous_commits_is_gapless_and_duplicate_free(daemon):
    """Subscribers go from replay to live while commits land without pause: each one gets
    exactly since+1 … head. Many subscribers switching over at different moments make the
    replay/live hand-over race likely to be hit in every run."""
    assert await append_events(daemon, 3000) == list(range(3, 3003))
    bus = daemon.app[keys.BUS]
    account_id = await daemon.account_id()
    commits = 0
    stop = asyncio.Event()

    async def keep_committing() -> None:
        nonlocal commits
        while not stop.is_set():
            await daemon.db.write(
                lambda tx: tx.append_event(account_id, "tick", {}, {"kind": "system"})
            )
            commits += 1

    committers = [asyncio.create_task(keep_committing()) for _ in range(3)]
    starts = [0, 1, 100, 999, 1000, 1001, 1500, 2000, 2500, 2999, 3000, 3002]
    received: dict[int, list[int]] = {since: [] for since in starts}
    followers = []
    try:
        for since in starts:
            followers.append(asyncio.create_task(follow(daemon, since, received[since])))
            await until(lambda n=commits + 5: commits >= n)
        await until(lambda: len(bus) == len(starts))  # every follower has gone live…
        await until(lambda n=commits + 50: commits >= n)  # …and stays live, commits landing
    finally:
        stop.set()
        await asyncio.gather(*committers)
    head = await head_seq(daemon)

    def all_caught_up() -> bool:
        for task in followers:
            if task.done():
                task.result()  # a follower stopped early: raise what stopped it
        return all(got and got[-1] >= head for got in received.values())

    try:
        await until(all_caught_up, within=10)
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)

    assert head > 3002 + 100
    for since, got in received.items():
        assert got == list(range(since + 1, head + 1)), f"subscriber since={since}"


async def test_types_filter_with_a_glob_applies_to_replay_and_live(daemon):
    status, _ = await daemon.request("POST", "/api/trading/pause", daemon.admin)
    assert status == 202
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=0, types=["command_*", "trading_resumed"])
        replay = await stream.sync()
        status, _ = await daemon.request("POST", "/api/trading/resume", daemon.admin)
        assert status == 202
        await append_events(daemon, 1, type_="commander")  # no underscore: not command_*
        live = await stream.sync()

    assert kinds(replay) == ["command_queued"]
    assert kinds(live) == ["trading_resumed", "command_queued"]


async def test_types_filter_sends_only_the_matching_events_of_replay_and_live(daemon):
    await append_events(daemon, 5, type_="noise")
    wanted = await append_events(daemon, 1, type_="signal_created")
    await append_events(daemon, 5, type_="noise")
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=0, types=["signal_*"])
        replay = await stream.sync()
        await append_events(daemon, 3, type_="noise")
        live_wanted = await append_events(daemon, 1, type_="signal_skipped")
        live = await stream.sync()

    assert seqs(replay) == wanted
    assert seqs(live) == live_wanted


async def test_an_event_committed_by_another_process_reaches_a_live_subscriber(daemon):
    account_id = await daemon.account_id()
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe()
        await stream.sync()
        with sync_transaction(daemon.settings, daemon.clock) as tx:
            external = tx.append_event(
                account_id, "external_event", {"by": "cli"}, {"kind": "local"}
            ).seq
        await daemon.db.poll_external()
        got = await stream.sync()

    assert [(m["seq"], m["type"], m["data"]) for m in got] == [
        (external, "external_event", {"by": "cli"})
    ]


async def test_the_daemons_next_commit_publishes_pending_external_events_first(daemon):
    account_id = await daemon.account_id()
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe()
        start = await head_seq(daemon)
        await stream.sync()
        with sync_transaction(daemon.settings, daemon.clock) as tx:
            for i in range(3):
                tx.append_event(account_id, "external_event", {"i": i}, {"kind": "local"})
        own = await append_events(daemon, 2)  # no poll in between: the write itself catches up
        got = await stream.sync()

    assert own == [start + 4, start + 5]
    assert seqs(got) == list(range(start + 1, start + 6))
    assert kinds(got) == ["external_event"] * 3 + ["test_event"] * 2


async def test_a_replay_includes_external_events_the_daemon_has_not_published_yet(daemon):
    account_id = await daemon.account_id()
    start = await head_seq(daemon)
    with sync_transaction(daemon.settings, daemon.clock) as tx:
        tx.append_event(account_id, "external_event", {}, {"kind": "local"})
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=start)
        replay = await stream.sync()
        await daemon.db.poll_external()  # publishing it now must not send it twice
        own = await append_events(daemon, 1)
        live = await stream.sync()

    assert seqs(replay) == [start + 1]
    assert seqs(live) == own == [start + 2]


async def test_replay_and_live_choose_the_same_events_for_star_patterns(daemon):
    """One TypeFilter decides for both (`?` and `[` cannot be sent: type_filter refuses
    them; in a stored type they are plain characters that `*` matches like any other)."""
    names = [
        "trading_paused",
        "trading?paused",
        "trading_resumed",
        "command_queued",
        "command_[q]ueued",
        "command_sent",
        "signal_created",
    ]
    patterns = ["trading*paused", "command_*ueued", "signal_*"]
    start = await head_seq(daemon)
    for name in names:
        await append_events(daemon, 1, type_=name)
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=start, types=patterns)
        replay = await stream.sync()
        for name in names:
            await append_events(daemon, 1, type_=name)
        live = await stream.sync()

    assert kinds(replay) == [
        "trading_paused",
        "trading?paused",
        "command_queued",
        "command_[q]ueued",
        "signal_created",
    ]
    assert kinds(live) == kinds(replay)
