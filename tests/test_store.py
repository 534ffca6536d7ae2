"""The store: whole transactions on one writer, publish after commit, in commit order."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from signalosd.clock import ManualClock
from signalosd.store import EventRecord, StoreError
from signalosd.store.open import open_store, sync_transaction
from signalosd.store.sqlite.migrations import MIGRATIONS
from tests.conftest import make_settings

SYSTEM = {"kind": "system"}


@pytest.fixture
async def db(tmp_path):
    database = open_store(make_settings(tmp_path), ManualClock())
    published: list[EventRecord] = []
    database.on_commit = published.extend
    await database.open()
    await database.write(lambda tx: tx.create_account("default", SYSTEM))
    database.published = published  # type: ignore[attr-defined]
    yield database
    await database.close()


async def test_writer_connection_is_wal_with_full_sync(db):
    mode = await db.write(lambda tx: tx.conn.execute("PRAGMA journal_mode").fetchone()[0])
    sync = await db.write(lambda tx: tx.conn.execute("PRAGMA synchronous").fetchone()[0])
    assert (mode, sync) == ("wal", 2)  # 2 = FULL


async def test_migrations_are_recorded_and_not_applied_twice(tmp_path):
    settings = make_settings(tmp_path)
    for _ in range(2):
        database = open_store(settings, ManualClock())
        await database.open()
        await database.close()
    names = [
        r[0] for r in sqlite3.connect(settings.db_path).execute("SELECT name FROM _migrations")
    ]
    assert names == [name for name, _ in MIGRATIONS]


async def test_a_failed_transaction_changes_nothing_and_publishes_nothing(db):
    before = list(db.published)

    def fails(tx):
        tx.append_event(1, "half_done", {}, SYSTEM)
        tx.set_mode(1, "halted", "x")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await db.write(fails)
    assert db.published == before
    state = await db.read(lambda tx: tx.get_state(1))
    assert state["mode"] == "running"
    assert await db.read(lambda tx: tx.head_seq()) == before[-1].seq


async def test_concurrent_writes_publish_in_seq_order_without_gaps(db):
    start = db.published[-1].seq

    async def writer(n):
        for _ in range(n):
            await db.write(lambda tx: tx.append_event(1, "tick", {}, SYSTEM))

    await asyncio.gather(*(writer(25) for _ in range(8)))
    seqs = [e.seq for e in db.published if e.seq > start]
    assert seqs == list(range(start + 1, start + 201))


async def test_events_of_another_process_are_published_in_order_even_after_a_failed_write(
    db, tmp_path
):
    with sync_transaction(make_settings(tmp_path), ManualClock()) as tx:
        outside = tx.append_event(1, "from_cli", {}, SYSTEM).seq

    def fails(tx):
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await db.write(fails)  # it saw the outside event, then rolled back
    await db.write(lambda tx: tx.append_event(1, "mine", {}, SYSTEM))
    tail = [(e.seq, e.type) for e in db.published[-2:]]
    assert tail == [(outside, "from_cli"), (outside + 1, "mine")]


async def test_seq_is_never_reused_after_pruning_everything(db):
    last = await db.write(lambda tx: tx.append_event(1, "old", {}, SYSTEM).seq)
    await db.write(lambda tx: tx.prune_events_through(tx.newest_event_before("9999"), 1000))
    assert await db.read(lambda tx: tx.pruned_through()) == last
    new = await db.write(lambda tx: tx.append_event(1, "new", {}, SYSTEM).seq)
    assert new == last + 1


async def test_cached_trade_rows_match_the_database_exactly(db):
    def work(tx):
        trade_id = tx.insert_trade(
            1, {"ticket": 9, "symbol": "EURUSD", "side": "buy", "volume": 1, "status": "open"}
        )
        tx.trade_by_ticket(1, 9)  # now cached
        tx.update_trade(trade_id, {"volume": 2, "profit": 3, "sl": 1.05})
        cached = tx.trade_by_ticket(1, 9)
        tx._rows.clear()
        fresh = tx.trade_by_ticket(1, 9)
        return cached, fresh

    cached, fresh = await db.write(work)
    assert cached == fresh
    assert [type(v) for v in cached.values()] == [type(v) for v in fresh.values()]


async def test_a_rolled_back_savepoint_leaves_no_stale_cached_row(db):
    def work(tx):
        trade_id = tx.insert_trade(
            1, {"ticket": 10, "symbol": "EURUSD", "side": "buy", "volume": 1.0, "status": "open"}
        )
        tx.trade_by_ticket(1, 10)
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.update_trade(trade_id, {"status": "closed"})
            raise RuntimeError("undo")
        return tx.trade_by_ticket(1, 10)["status"]

    assert await db.write(work) == "open"


async def test_a_failing_publisher_never_leaves_a_committed_write_unanswered(db):
    def broken(events):
        raise RuntimeError("subscriber bug")

    db.on_commit = broken
    seq = await asyncio.wait_for(db.write(lambda tx: tx.append_event(1, "x", {}, SYSTEM).seq), 5)
    assert await db.read(lambda tx: tx.head_seq()) == seq


async def test_cached_trade_rows_keep_every_real_column_a_float(db):
    """Which columns come back as floats is read from the schema, not kept by hand: every
    REAL column of trades, set from an int, reads back from the cache as SQLite returns it."""

    def work(tx):
        real = sorted(tx.schema.real["trades"])
        trade_id = tx.insert_trade(
            1, {"ticket": 11, "symbol": "EURUSD", "side": "buy", "volume": 1, "status": "open"}
        )
        tx.trade_by_ticket(1, 11)
        tx.update_trade(trade_id, dict.fromkeys(real, 2))
        cached = tx.trade_by_ticket(1, 11)
        tx._rows.clear()
        return real, cached, tx.trade_by_ticket(1, 11)

    real, cached, fresh = await db.write(work)
    assert {"volume", "open_price", "sl", "tp", "trailing", "volume_step"} <= set(real)
    assert cached == fresh
    assert all(type(cached[name]) is float for name in real)


@pytest.mark.parametrize(
    "write",
    [
        lambda tx: tx.insert_trade(1, {"symbol": "EURUSD", "side": "buy", "volume": 1, "x": 1}),
        lambda tx: tx.update_trade(1, {"status = 'closed', sl": 1}),
        lambda tx: tx.insert_signal(1, {"symbol": "EURUSD", "bogus": 1}),
        lambda tx: tx.update_signal(1, {"status": "x", "id = 0 --": 1}),
        lambda tx: tx.save_agent_status(1, {"connected": 1, "evil)": 1}),
    ],
)
async def test_column_names_outside_the_schema_are_refused_and_change_nothing(db, write):
    head = await db.read(lambda tx: tx.head_seq())

    def attempt(tx):
        tx.append_event(1, "before_the_bad_write", {}, SYSTEM)
        write(tx)

    with pytest.raises(ValueError, match="has no column"):
        await db.write(attempt)
    assert await db.read(lambda tx: tx.head_seq()) == head


async def test_storage_failures_are_store_errors_that_read_as_sqlite_s(db):
    def duplicate(tx):
        tx.insert_token("t1", 1, "viewer", "", "hash")
        tx.insert_token("t2", 1, "viewer", "", "hash")  # the hash is UNIQUE

    with pytest.raises(StoreError) as caught:
        await db.write(duplicate)
    cause = caught.value.__cause__
    assert isinstance(cause, sqlite3.IntegrityError)
    assert (str(caught.value), repr(caught.value)) == (str(cause), repr(cause))


async def test_a_store_that_cannot_be_opened_raises_a_store_error(tmp_path):
    settings = make_settings(tmp_path)
    settings.db_path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(StoreError, match="unable to open database file"):
        await open_store(settings, ManualClock()).open()
    with (
        pytest.raises(StoreError, match="unable to open database file"),
        sync_transaction(settings, ManualClock()),
    ):
        pass
