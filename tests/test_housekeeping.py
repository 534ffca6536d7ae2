"""Housekeeping off the emergency stop's path: no COMMIT ever pays for a WAL checkpoint (they
run in the background, PASSIVE, on their own connection), and retention prunes in bounded
chunks, each its own short transaction, with every other write free to commit in between."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from signalosd.clock import ManualClock
from signalosd.ops import maintenance
from signalosd.store import Database
from signalosd.store.sqlite.db import SqliteDatabase
from tests.stream_client import append_events, head_seq, start_daemon, until
from tests.test_maintenance import Rows, exists, no_foreign_key_violations

SYSTEM = {"kind": "system"}
AUTO_CHECKPOINT_PAGES = 1000  # SQLite's default wal_autocheckpoint


def wal_frames(db_path: Path) -> int:
    """Frames the WAL file has room for (it is reused from the start after a complete
    checkpoint, never shrunk): how far the log grew since the last restart."""
    wal = db_path.with_name(db_path.name + "-wal")
    page_size = sqlite3.connect(db_path).execute("PRAGMA page_size").fetchone()[0]
    return max(0, (wal.stat().st_size - 32) // (page_size + 24))


def copied_everything(db_path: Path) -> bool:
    conn = sqlite3.connect(db_path)
    try:
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy == 0 and frames == copied
    finally:
        conn.close()


async def write_pages(db: Database, pages: int) -> None:
    """About `pages` WAL pages, in transactions of 100 events of a page each."""

    def hundred(tx: Any) -> None:
        for _ in range(100):
            tx.append_event(None, "bulk", {"pad": "x" * 3500}, SYSTEM)

    for _ in range(pages // 100):
        await db.write(hundred)


@pytest.fixture
async def db(tmp_path):
    database = SqliteDatabase(tmp_path / "s.db", ManualClock())
    await database.open()
    yield database
    await database.close()


async def test_no_commit_checkpoints_the_wal_itself(db):
    """With SQLite's default, the COMMIT that crosses 1,000 WAL pages (an emergency stop's,
    maybe) copies them all into the database file before it returns; here the log just
    grows until the background checkpoint."""
    await write_pages(db, 1600)
    assert wal_frames(db.path) > AUTO_CHECKPOINT_PAGES + 400


async def test_a_background_checkpoint_copies_the_wal_and_lets_it_be_reused(db):
    await write_pages(db, 1200)
    grown = wal_frames(db.path)
    assert await db.checkpoint() is True
    assert copied_everything(db.path)
    assert await db.checkpoint() is False  # nothing committed since: nothing to do
    await write_pages(db, 300)
    assert wal_frames(db.path) == grown  # the WAL started over, it did not grow


async def test_the_daemon_checkpoints_in_the_background(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, wal_checkpoint_interval_s=0.02)
    await write_pages(daemon.db, 500)
    grown = wal_frames(daemon.db.path)
    await until(lambda: not daemon.db.wal_dirty)  # a checkpoint covered every commit so far
    await write_pages(daemon.db, 200)
    assert wal_frames(daemon.db.path) == grown  # so the WAL started over instead of growing


async def test_other_writes_commit_between_the_chunks_of_a_prune(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, maintenance_chunk_rows=50)
    await append_events(daemon, 1000)
    old = await head_seq(daemon)
    clock.advance(daemon.settings.event_retention_days * 86_400 + 60)
    pruning = asyncio.create_task(maintenance.run_once(daemon.db, daemon.settings))
    seen: list[int] = []  # pruned_through as our own writes saw it, while the prune ran
    while not pruning.done():
        seen.append(await daemon.db.write(lambda tx: tx.pruned_through()))
    done = await pruning

    assert any(0 < through < old for through in seen), seen  # a write between two chunks
    assert done["events_pruned"] == old
    assert await daemon.db.read(lambda tx: tx.pruned_through()) == old
    events = await daemon.events(since=old)
    assert [e["type"] for e in events] == ["events_pruned"]
    assert events[0]["data"]["count"] == old and events[0]["data"]["through_seq"] == old


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    # Chunks of 2 and search windows of 3 keys: every rule crosses chunk and window edges.
    return make_settings(
        tmp_path,
        command_retention_days=30,
        trade_retention_days=365,
        maintenance_chunk_rows=2,
        scan_max_rows=3,
    )


async def test_pruning_in_small_chunks_keeps_every_reference_rule(daemon):
    rows = Rows(daemon)
    made: list[tuple[str, object, bool]] = []  # (table, key, kept)
    plan = (
        [("old finished command", False)] * 7
        + [("old queued command naming a closed trade", True)] * 2
        + [("young finished command", True)] * 2
        + [("old closed trade", False)] * 6
        + [("old open trade of an old signal", True)] * 2
        + [("old skipped signal", False)] * 5
    )
    random.Random(7).shuffle(plan)  # interleave the kinds across keys, chunks and windows
    for kind, kept in plan:
        if kind == "old finished command":
            made.append(("commands", await rows.command("succeeded", 100), kept))
        elif kind == "young finished command":
            made.append(("commands", await rows.command("failed", 10), kept))
        elif kind == "old queued command naming a closed trade":
            trade_id = await rows.trade("closed", 400)
            made.append(("trades", trade_id, True))
            made.append(("commands", await rows.command("queued", 400, trade_id), kept))
        elif kind == "old closed trade":
            made.append(("trades", await rows.trade("closed", 400), kept))
        elif kind == "old open trade of an old signal":
            signal_id = await rows.signal("accepted", 400)
            made.append(("signals", signal_id, True))
            made.append(("trades", await rows.trade("open", 400, signal_id), kept))
        else:
            made.append(("signals", await rows.signal("skipped", 400), kept))

    done = await maintenance.run_once(daemon.db, daemon.settings)

    for table, key, kept in made:
        assert await exists(daemon, table, "id", key) is kept, (table, key)
    assert (done["commands_pruned"], done["trades_pruned"], done["signals_pruned"]) == (7, 6, 5)
    await no_foreign_key_violations(daemon)
