"""The account history behind the equity chart: every applied account status is folded into
one row per account per interval (last values, lowest and highest equity), served downsampled
by `GET /api/account/history`, and pruned after its retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signalosd.clock import iso
from signalosd.config import Settings
from signalosd.domain import account_history
from signalosd.models import AccountHistory, Role
from signalosd.ops import maintenance
from tests.conftest import make_settings
from tests.fake_agent import WireAgent, connect_agent, until

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # where the ManualClock starts
STATUS = {"balance": 10000.0, "equity": 10000.0, "connected": True, "trade_allowed": True}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Every status is applied (no throttle) unless a test says otherwise.
    return make_settings(tmp_path, status_event_interval_s=0, account_history_interval_s=60)


async def statuses(daemon) -> int:  # type: ignore[no-untyped-def]
    return sum(e["type"] == "mt5_status_update" for e in await daemon.events())


async def applied(daemon, agent: WireAgent, kind: str, data: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Send a report and wait until the daemon has applied it (its event is in the log)."""
    before = await statuses(daemon)
    await agent.send(kind, data)

    async def done() -> bool:
        return await statuses(daemon) > before

    await until(done)


async def rows(daemon, account: str = "default") -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    account_id = await daemon.account_id(account)
    return await daemon.db.read(
        lambda tx: [
            dict(r)
            for r in tx.conn.execute(
                "SELECT ts, balance, equity, equity_min, equity_max FROM account_history "
                "WHERE account_id = ? ORDER BY ts",
                (account_id,),
            )
        ]
    )


async def history(daemon, token: str | None = None, **query: Any) -> tuple[int, Any]:  # type: ignore[no-untyped-def]
    return await daemon.request("GET", "/api/account/history", token or daemon.admin, params=query)


def move_clock(daemon, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Set the daemon's clock to `seconds` after T0."""
    target = T0 + timedelta(seconds=seconds)
    daemon.clock.advance((target - daemon.clock.now()).total_seconds())


async def sample(daemon, at: float, equity: float, balance: float = 10000.0, account="default"):  # type: ignore[no-untyped-def]
    """A status applied `at` seconds after T0, through the function the agent session uses."""
    move_clock(daemon, at)
    account_id = await daemon.account_id(account)
    status = {"balance": balance, "equity": equity}
    await daemon.db.write(lambda tx: account_history.record(tx, account_id, status, 60.0))


# ---- sampling --------------------------------------------------------------------------------


async def test_statuses_within_an_interval_make_one_row_with_the_last_values_and_the_range(
    daemon,
) -> None:
    agent = await connect_agent(daemon, await daemon.token(Role.AGENT))
    # The clock starts at 09:00:00; the interval is 60 s, aligned: 09:00:00-09:00:59.999.
    for step, equity in [(0, 10000.0), (10, 9950.0), (10, 10020.0), (10, 10010.0)]:
        daemon.clock.advance(step)
        await applied(daemon, agent, "mt5_status_update", STATUS | {"equity": equity})
    assert await rows(daemon) == [
        {
            "ts": "2026-01-05T09:00:30.000Z",
            "balance": 10000.0,
            "equity": 10010.0,
            "equity_min": 9950.0,
            "equity_max": 10020.0,
        }
    ]
    daemon.clock.advance(35)  # 09:01:05: the next interval
    await applied(daemon, agent, "mt5_status_update", STATUS | {"equity": 10005.0, "balance": 1})
    got = await rows(daemon)
    assert len(got) == 2
    assert got[1] == {
        "ts": "2026-01-05T09:01:05.000Z",
        "balance": 1.0,
        "equity": 10005.0,
        "equity_min": 10005.0,
        "equity_max": 10005.0,
    }


async def test_a_dip_the_status_throttle_kept_out_still_reaches_the_minimum(
    aiohttp_client, tmp_path: Path, clock
) -> None:
    from signalosd.app import create_app
    from tests.conftest import Harness

    app = create_app(make_settings(tmp_path, status_event_interval_s=5), clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    agent = await connect_agent(daemon, await daemon.token(Role.AGENT))
    await applied(daemon, agent, "mt5_status_update", STATUS | {"equity": 10000.0})
    # Within the throttle's 5 s: kept for health, no event, not stored on their own...
    await agent.send("mt5_status_update", STATUS | {"equity": 9000.0})
    await agent.send("mt5_status_update", STATUS | {"equity": 11000.0})
    await agent.send("ping", {"timestamp": 1})  # answered after both were received
    assert (await agent.recv())["type"] == "pong"
    assert await statuses(daemon) == 1
    clock.advance(6)
    await applied(daemon, agent, "mt5_status_update", STATUS | {"equity": 10002.0})
    # ...but their equity widened the range of the status applied next.
    (row,) = await rows(daemon)
    assert (row["equity"], row["equity_min"], row["equity_max"]) == (10002.0, 9000.0, 11000.0)


async def test_a_sync_snapshots_account_is_sampled_too(daemon) -> None:
    agent = await connect_agent(daemon, await daemon.token(Role.AGENT))
    await applied(daemon, agent, "sync_snapshot", {"positions": [], "account": STATUS})
    (row,) = await rows(daemon)
    assert row["equity"] == 10000.0 and row["ts"] == iso(daemon.clock.now())


def test_intervals_are_aligned_to_the_clock() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 5, 9, 0, 59, 999000, tzinfo=UTC)
    assert account_history.interval_start(at, 60) == "2026-01-05T09:00:00.000Z"
    assert account_history.interval_start(at, 3600) == "2026-01-05T09:00:00.000Z"
    assert account_history.interval_start(at + timedelta(milliseconds=1), 60) == (
        "2026-01-05T09:01:00.000Z"
    )


# ---- the endpoint ----------------------------------------------------------------------------


async def test_points_are_buckets_with_the_last_sample_and_the_range(daemon) -> None:
    # One sample a minute for an hour, equity = 1000 + minute; a dip in minute 20.
    for minute in range(60):
        await sample(daemon, minute * 60, 1000.0 + minute)
        if minute == 20:
            await sample(daemon, 20 * 60 + 30, 500.0)  # the same interval: its last and min
    start, end = T0, T0 + timedelta(hours=1)
    status, body = await history(daemon, **{"from": iso(start), "to": iso(end), "points": 4})
    assert status == 200, body
    AccountHistory.model_validate(body)
    assert body["account"] == "default" and body["bucket_s"] == 900.0
    assert body["from"] == iso(start) and body["to"] == iso(end)
    points = body["points"]
    assert [p["t"] for p in points] == [iso(start + timedelta(minutes=m)) for m in (14, 29, 44, 59)]
    assert [p["equity"] for p in points] == [1014.0, 1029.0, 1044.0, 1059.0]
    assert [(p["equity_min"], p["equity_max"]) for p in points] == [
        (1000.0, 1014.0),
        (500.0, 1029.0),  # the dip, between two samples of the series
        (1030.0, 1044.0),
        (1045.0, 1059.0),
    ]
    assert all(p["balance"] == 10000.0 for p in points)


async def test_empty_buckets_are_left_out_and_the_range_is_inclusive(daemon) -> None:
    await sample(daemon, 0, 1.0)
    await sample(daemon, 3000, 2.0)  # 50 minutes later
    start = T0
    query = {"from": iso(start), "to": iso(start + timedelta(seconds=3000)), "points": 10}
    _, body = await history(daemon, **query)
    assert [p["equity"] for p in body["points"]] == [1.0, 2.0]  # the last bucket holds `to`
    _, body = await history(daemon, **(query | {"from": iso(start + timedelta(seconds=1))}))
    assert [p["equity"] for p in body["points"]] == [2.0]


async def test_defaults_are_the_last_24_hours_in_500_points(daemon) -> None:
    await sample(daemon, 0, 1.0)  # 25 h before "now", below
    await sample(daemon, 3600, 2.0)
    move_clock(daemon, 25 * 3600)
    status, body = await history(daemon)
    assert status == 200
    assert body["to"] == iso(daemon.clock.now())
    assert body["from"] == iso(daemon.clock.now() - timedelta(hours=24))
    assert body["bucket_s"] == 172.8
    assert [p["equity"] for p in body["points"]] == [2.0]


async def test_times_with_an_offset_or_none_are_read_as_such(daemon) -> None:
    await sample(daemon, 0, 1.0)  # 09:00:00Z
    _, body = await history(
        daemon, **{"from": "2026-01-05T10:59:00+02:00", "to": "2026-01-05T09:01:00"}
    )
    assert body["from"] == "2026-01-05T08:59:00.000Z" and body["to"] == "2026-01-05T09:01:00.000Z"
    assert [p["equity"] for p in body["points"]] == [1.0]


BAD = [
    ({"from": "2026-01-05T10:00:00Z", "to": "2026-01-05T09:00:00Z"}, "from"),
    ({"from": "2026-01-05T09:00:00Z", "to": "2026-01-05T09:00:00Z"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01T00:00:00Z"}, "to"),
    ({"to": "0001-01-01T00:00:00Z"}, "to"),
    ({"from": "1969-12-31T23:59:59Z"}, "from"),
    ({"points": "0"}, "points"),
    ({"points": "2001"}, "points"),
    ({"points": "many"}, "points"),
]


@pytest.mark.parametrize(("query", "field"), BAD, ids=[f"{f}={q}" for q, f in BAD])
async def test_bad_parameters_are_422_naming_the_field(daemon, query, field) -> None:
    status, body = await history(daemon, **query)
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert f"'{field}'" in body["error"]["message"]
    assert body["error"]["details"]["fields"][0]["field"] == field


async def test_a_viewer_reads_its_own_account_and_an_admin_any(daemon) -> None:
    await sample(daemon, 0, 1.0)
    viewer2 = await daemon.token(Role.VIEWER, account="desk2")  # creates desk2
    await sample(daemon, 60, 7.0, account="desk2")
    window = {"from": iso(T0 - timedelta(hours=1)), "to": iso(T0 + timedelta(hours=1))}
    viewer = await daemon.token(Role.VIEWER)
    status, mine = await history(daemon, viewer, **window)
    assert status == 200 and [p["equity"] for p in mine["points"]] == [1.0]
    status, theirs = await history(daemon, viewer2, **window)
    assert status == 200
    assert theirs["account"] == "desk2" and [p["equity"] for p in theirs["points"]] == [7.0]
    status, body = await history(daemon, daemon.admin, account="desk2", **window)
    assert status == 200 and body["account"] == "desk2"
    assert [p["equity"] for p in body["points"]] == [7.0]
    status, _ = await history(daemon, viewer, account="desk2", **window)
    assert status == 404


async def test_openapi_documents_the_reply(daemon) -> None:
    _, spec = await daemon.request("GET", "/openapi.json")
    op = spec["paths"]["/api/account/history"]["get"]
    assert op["x-required-role"] == "viewer"
    assert {p["name"] for p in op["parameters"]} == {"account", "from", "to", "points"}
    schema = spec["components"]["schemas"]["AccountHistory"]
    assert set(schema["properties"]) == {"account", "from", "to", "bucket_s", "points"}


# ---- retention and settings ------------------------------------------------------------------


async def test_maintenance_prunes_rows_past_retention_in_chunks(aiohttp_client, tmp_path, clock):
    from signalosd.app import create_app
    from tests.conftest import Harness

    settings = make_settings(tmp_path, account_history_retention_days=1, maintenance_chunk_rows=2)
    app = create_app(settings, clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    for minute in range(5):
        await sample(daemon, minute * 60, 1.0)  # these will be old
    await sample(daemon, 86400 + 3600, 2.0)  # kept
    move_clock(daemon, 86400 + 7200)
    done = await maintenance.run_once(daemon.db, settings)
    assert done["account_history_pruned"] == 5
    assert [r["equity"] for r in await rows(daemon)] == [2.0]


def test_history_settings_have_defaults_and_bounds() -> None:
    assert Settings().account_history_interval_s == 60
    assert Settings().account_history_retention_days == 90
    for bad in ({"account_history_interval_s": 0}, {"account_history_retention_days": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Settings(**bad)


async def test_it_is_a_long_read_paced_like_the_others(aiohttp_client, tmp_path, clock) -> None:
    from signalosd import keys
    from signalosd.app import create_app
    from tests.conftest import Harness

    app = create_app(make_settings(tmp_path, heavy_read_rate_per_token=2.0), clock)
    daemon = Harness(await aiohttp_client(app), app, clock)
    viewer = await daemon.token(Role.VIEWER)
    replies = await asyncio.gather(*(history(daemon, viewer) for _ in range(3)))
    assert [status for status, _ in replies] == [200, 200, 200]
    assert app[keys.PACER].waited == 1  # a burst of 2, then the third waited its turn
