"""Pacing of one token's long REST reads (issue 9 §3): a client looping on event pages as fast
as the daemon answers is slowed to `heavy_read_rate_per_token`, nobody else is."""

from __future__ import annotations

import asyncio

import pytest

from signalosd import keys
from signalosd.http.pacing import Pacer
from tests.conftest import Harness, make_settings


def test_a_bucket_lets_a_burst_through_then_spaces_reads_at_the_rate():
    now = [100.0]
    pacer = Pacer(rate=10, burst=3, monotonic=lambda: now[0])
    assert [pacer.delay("tok") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.delay("tok") == pytest.approx(0.1)  # the 4th waits one interval
    assert pacer.delay("tok") == pytest.approx(0.2)  # reservations queue up in order
    assert pacer.delay("other") == 0.0  # each token has its own bucket
    now[0] += 10  # long idle: the bucket is full again (never more than the burst)
    assert [pacer.delay("tok") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.delay("tok") > 0


def test_a_pacer_needs_a_positive_rate_and_burst():
    with pytest.raises(ValueError):
        Pacer(rate=0, burst=1)
    with pytest.raises(ValueError):
        Pacer(rate=1, burst=0)


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, heavy_read_rate_per_token=2.0)


async def test_a_tokens_reads_beyond_its_rate_wait_and_another_token_does_not(daemon: Harness):
    pacer = daemon.app[keys.PACER]
    viewer = await daemon.token("viewer")

    async def read(token: str) -> int:
        status, _ = await daemon.request("GET", "/api/events?type=emergency_stop", token)
        return status

    assert await asyncio.gather(read(viewer), read(viewer), read(viewer)) == [200, 200, 200]
    assert pacer.waited == 1  # a burst of 2, then the third waited its turn (not refused)
    assert await read(daemon.admin) == 200
    assert pacer.waited == 1  # the admin's token has a bucket of its own


async def test_an_emergency_stop_is_never_paced(daemon: Harness):
    operator = await daemon.token("operator")
    pacer = daemon.app[keys.PACER]
    for _ in range(3):  # the operator's bucket is empty now
        await daemon.request("GET", "/api/trades", operator)
    waited = pacer.waited
    status, _ = await daemon.request("POST", "/api/trading/emergency-stop", operator)
    assert status == 202 and pacer.waited == waited
