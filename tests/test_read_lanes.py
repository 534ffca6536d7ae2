"""Reads that no client can use to delay anyone (DESIGN invariant 11): token checks and the
emergency stop never wait behind a long read, one token runs at most `heavy_reads_per_token`
long reads at once, and every event read examines at most `scan_max_rows` seqs, while a client
that follows the cursors still gets every matching event exactly once, in order."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from signalosd.auth import accounts
from signalosd.models import Role
from signalosd.store import Database
from signalosd.store.sqlite.db import SCAN_THREADS
from tests.conftest import Harness
from tests.stream_client import append_events, open_stream, seqs, start_daemon, until

TIMEOUT = 5.0


async def token_with_id(daemon: Harness, role: str, account: str = "default") -> tuple[str, str]:
    made = await daemon.db.write(
        lambda tx: accounts.create_token(tx, account, Role(role), "test", accounts.local_actor())
    )
    return str(made["token"]), str(made["id"])


@asynccontextmanager
async def long_reads(db: Database, owners: list[str]) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Long reads, one per owner, that hold their reader thread until the block exits (as a
    scan of a huge log would): running once this yields."""
    release, started = threading.Event(), threading.Semaphore(0)

    def hold(tx: Any) -> bool:
        started.release()
        return release.wait(30)

    tasks = [asyncio.create_task(db.scan(hold, owner=owner)) for owner in owners]
    try:
        for _ in owners:
            assert await asyncio.to_thread(started.acquire, timeout=TIMEOUT)
        yield tasks
    finally:
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.timeout(30)
async def test_token_checks_and_an_emergency_stop_do_not_wait_behind_long_reads(daemon):
    viewer = await daemon.token("viewer")
    other = await daemon.token("operator", account="other")
    owners = [f"hog{i}" for i in range(SCAN_THREADS)]  # every long-read thread taken
    async with long_reads(daemon.db, owners):
        # A long read of the viewer's, queued first, waits for a free reader thread...
        page = asyncio.create_task(daemon.request("GET", "/api/events", viewer))
        await until(lambda: daemon.db.scans_pending == SCAN_THREADS + 1)
        # ...while token checks, another account's emergency stop and /ws authentication
        # (all queued after it) go through.
        async with asyncio.timeout(TIMEOUT):
            status, state = await daemon.request("GET", "/api/trading/state", viewer)
            assert status == 200, state
            status, body = await daemon.request(
                "POST", "/api/trading/emergency-stop", other, json={"reason": "test"}
            )
            assert status == 202, body
            status, state = await daemon.request("GET", "/api/trading/state", other)
            assert (status, state["mode"]) == (200, "halted")
            async with open_stream(daemon, viewer) as stream:
                await stream.sync()
        assert not page.done()
    async with asyncio.timeout(TIMEOUT):  # its turn comes once a reader is free
        status, body = await page
    assert status == 200, body


async def test_a_token_runs_at_most_heavy_reads_per_token_long_reads_at_once(
    aiohttp_client, tmp_path, clock
):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, heavy_reads_per_token=1)
    busy, busy_id = await token_with_id(daemon, "viewer")
    calm = await daemon.token("viewer")
    async with long_reads(daemon.db, [busy_id]):
        held = asyncio.create_task(daemon.request("GET", "/api/events", busy))
        await until(lambda: daemon.db.scans_waiting == 1)  # waiting for its token's turn
        async with asyncio.timeout(TIMEOUT):  # another token is served meanwhile
            status, _ = await daemon.request("GET", "/api/events", calm)
        assert status == 200
        assert not held.done()  # ordered after the other token's whole request
    async with asyncio.timeout(TIMEOUT):
        status, body = await held
    assert status == 200, body
    assert daemon.db.scans_waiting == 0


async def test_an_abandoned_long_read_keeps_its_turn_until_it_has_finished(
    aiohttp_client, tmp_path, clock
):
    """Giving up on a request must not free its token's slot while its read still runs:
    else cancelling and retrying would pile up long reads past the cap."""
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, heavy_reads_per_token=1)
    db = daemon.db
    release, started = threading.Event(), threading.Event()

    def hold(tx: Any) -> bool:
        started.set()
        return release.wait(30)

    running = asyncio.create_task(db.scan(hold, owner="tok"))
    assert await asyncio.to_thread(started.wait, TIMEOUT)
    running.cancel()  # the caller gives up; the read goes on on its thread
    second = asyncio.create_task(db.scan(lambda tx: tx.head_seq(), owner="tok"))
    await until(lambda: db.scans_waiting == 1)
    third = await db.scan(lambda tx: "other owner", owner="another")  # ordered later event
    assert third == "other owner" and not second.done()
    release.set()
    async with asyncio.timeout(TIMEOUT):
        assert await second == await db.read(lambda tx: tx.head_seq())


# ---- bounded scans, followed by a client: every matching event once, in order -------------


@dataclass(frozen=True)
class Follow:
    scan: int  # scan_max_rows
    limit: int  # ?limit=
    types: list[str] | None
    viewer_of: str | None  # None: the admin (every account)


# The log (after the 2 bootstrap events and the accounts'): runs of events of two accounts,
# system events and several types, so filters leave long stretches with nothing to return.
FOLLOWS = {
    "admin, no filter, scan < limit": Follow(7, 100, None, None),
    "admin, no filter, limit < scan": Follow(50, 7, None, None),
    "admin, a rare type": Follow(7, 100, ["rare_event"], None),
    "admin, a glob": Follow(5, 3, ["alpha_*", "*_system"], None),
    "viewer: own and system events": Follow(6, 100, None, "alpha"),
    "viewer, a rare type of its own": Follow(4, 2, ["rare_*"], "beta"),
    "viewer, a type it never sees": Follow(9, 100, ["gamma_event"], "alpha"),
    "scan of 1": Follow(1, 1000, ["*e*t*"], "beta"),
}


async def build_log(daemon: Harness) -> None:
    await daemon.token("viewer", account="alpha")
    await daemon.token("viewer", account="beta")
    for _ in range(3):
        await append_events(daemon, 9, account="alpha", type_="alpha_event")
        await append_events(daemon, 1, account="beta", type_="rare_event")
        await append_events(daemon, 11, account="beta", type_="beta_event")
        await append_events(daemon, 2, account=None, type_="tick_system")
        await append_events(daemon, 1, account="alpha", type_="rare_event")


def glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern))


async def expected_seqs(daemon: Harness, case: Follow) -> list[int]:
    """From the table itself, independently of the code under test."""
    rows = await daemon.db.read(
        lambda tx: tx.conn.execute(
            "SELECT e.seq, a.name, e.type FROM events e LEFT JOIN accounts a "
            "ON a.id = e.account_id ORDER BY e.seq"
        ).fetchall()
    )
    return [
        seq
        for seq, account, type_ in rows
        if (case.viewer_of is None or account in (None, case.viewer_of))
        and (case.types is None or any(glob(t).fullmatch(type_) for t in case.types))
    ]


async def token_for(daemon: Harness, case: Follow) -> str:
    if case.viewer_of is None:
        return daemon.admin
    return await daemon.token("viewer", account=case.viewer_of)


@pytest.mark.parametrize("case", list(FOLLOWS.values()), ids=list(FOLLOWS))
async def test_following_rest_cursors_returns_every_match_once_with_bounded_scans(
    case: Follow, aiohttp_client, tmp_path, clock
):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, scan_max_rows=case.scan)
    await build_log(daemon)
    token = await token_for(daemon, case)
    head = int(await daemon.db.read(lambda tx: tx.head_seq()))
    got: list[int] = []
    since = 0
    for _ in range(10 * head):
        params: list[tuple[str, Any]] = [("since", since), ("limit", case.limit)]
        params += [("type", t) for t in case.types or []]
        status, body = await daemon.request("GET", "/api/events", token, params=params)
        assert status == 200, body
        page = [e["seq"] for e in body["events"]]
        assert len(page) <= case.limit
        assert since < body["last_seq"] <= since + case.scan or body["last_seq"] == since == head
        assert all(since < s <= body["last_seq"] for s in page)
        got += page
        if body["last_seq"] == since:
            break  # caught up: the cursor no longer moves
        since = body["last_seq"]
    assert since == head
    assert got == await expected_seqs(daemon, case)


@pytest.mark.parametrize("case", list(FOLLOWS.values()), ids=list(FOLLOWS))
async def test_a_replay_with_bounded_scans_is_gapless_then_live(
    case: Follow, aiohttp_client, tmp_path, clock
):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, scan_max_rows=case.scan)
    await build_log(daemon)
    token = await token_for(daemon, case)
    subscribe: dict[str, Any] = {"since": 0}
    if case.types is not None:
        subscribe["types"] = case.types
    async with open_stream(daemon, token) as stream:
        await stream.subscribe(**subscribe)
        replay = await stream.sync()
        head = int(await daemon.db.read(lambda tx: tx.head_seq()))
        await build_log(daemon)  # the same again, live
        live = await stream.sync()
    expected = await expected_seqs(daemon, case)
    assert "reset" not in [m["type"] for m in replay]
    assert seqs(replay) == [s for s in expected if s <= head]
    assert seqs(live) == [s for s in expected if s > head]
