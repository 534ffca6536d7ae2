"""GET /api/events: pages of the gapless log, filtered, with explicit resets."""

from __future__ import annotations

import pytest

from signalosd.ops import maintenance


async def _seqs(daemon, **query) -> tuple[list[int], int]:
    status, body = await daemon.request("GET", "/api/events", daemon.admin, params=query)
    assert status == 200, body
    return [e["seq"] for e in body["events"]], body["last_seq"]


async def _make(daemon, pauses: int) -> None:
    for _ in range(pauses):
        await daemon.request("POST", "/api/trading/pause", daemon.admin)
        await daemon.request("POST", "/api/trading/resume", daemon.admin)


async def test_pages_follow_each_other_without_gap(daemon):
    await _make(daemon, 5)  # 2 bootstrap events + 20
    seen, cursor = [], 0
    while True:
        page, cursor = await _seqs(daemon, since=cursor, limit=7)
        if not page:
            break
        seen += page
    assert seen == list(range(1, 23))
    assert cursor == 22


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (0, list(range(1, 7))),
        (3, [4, 5, 6]),
        (6, []),
    ],
)
async def test_since_table(daemon, since, expected):
    await _make(daemon, 1)
    page, last = await _seqs(daemon, since=since)
    assert page == expected and last == 6


async def test_type_filter_with_wildcard_and_cursor_past_skipped_events(daemon):
    await _make(daemon, 2)
    _status, body = await daemon.request(
        "GET", "/api/events?type=trading_*&type=nothing", daemon.admin
    )
    assert [e["type"] for e in body["events"]] == [
        "trading_paused",
        "trading_resumed",
        "trading_paused",
        "trading_resumed",
    ]
    assert body["last_seq"] == 10  # the head, not the last match: nothing to rescan


async def test_a_pruned_cursor_gets_an_explicit_reset_not_a_gap(daemon):
    await _make(daemon, 2)
    daemon.clock.advance(daemon.settings.event_retention_days * 86400 + 1)
    await maintenance.run_once(daemon.db, daemon.settings)
    status, body = await daemon.request("GET", "/api/events?since=3", daemon.admin)
    assert status == 409
    assert body["error"]["code"] == "events_reset"
    assert body["error"]["details"]["reason"] == "pruned"
    page, _ = await _seqs(daemon, since=body["error"]["details"]["pruned_through"])
    assert [e for e in page] == [11]  # only the events_pruned event is left


async def test_events_carry_ts_and_actor(daemon):
    await daemon.request(
        "POST", "/api/trading/pause", daemon.admin, headers={"X-SignalOS-Source": "cron"}
    )
    events = await daemon.events()
    assert events[-2]["type"] == "trading_paused"
    assert events[-2]["actor"]["source"] == "cron"
    assert events[-2]["ts"].endswith("Z")
