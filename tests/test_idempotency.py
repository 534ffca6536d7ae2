"""Idempotency-Key: a repeated request returns the first reply and acts only once."""

from __future__ import annotations


async def test_a_repeat_returns_the_first_reply_byte_for_byte(daemon):
    trade_id = await daemon.add_trade()
    headers = {"Authorization": f"Bearer {daemon.admin}", "Idempotency-Key": "close-1"}
    first = await daemon.client.post(f"/api/trades/{trade_id}/close", headers=headers)
    again = await daemon.client.post(f"/api/trades/{trade_id}/close", headers=headers)
    assert first.status == again.status == 202
    assert await first.read() == await again.read()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    queued = [e for e in await daemon.events() if e["type"] == "command_queued"]
    assert len(queued) == 1  # acted once


async def test_a_key_reused_for_another_request_is_refused(daemon):
    headers = {"Authorization": f"Bearer {daemon.admin}", "Idempotency-Key": "k-42"}
    first = await daemon.client.post("/api/trading/pause", headers=headers, json={"reason": "a"})
    assert first.status == 202
    other = await daemon.client.post("/api/trading/pause", headers=headers, json={"reason": "b"})
    assert other.status == 422
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"


async def test_keys_are_per_account(daemon):
    other = await daemon.token("operator", account="desk-2")
    for token in (daemon.admin, other):
        resp = await daemon.client.post(
            "/api/trading/pause",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
        )
        assert resp.status == 202
        assert "Idempotent-Replayed" not in resp.headers


async def test_a_refused_request_is_not_remembered(daemon):
    await daemon.request("POST", "/api/trading/emergency-stop", daemon.admin)
    headers = {"Authorization": f"Bearer {daemon.admin}", "Idempotency-Key": "resume-1"}
    refused = await daemon.client.post("/api/trading/resume", headers=headers, json={})
    assert refused.status == 409
    # The same key may be used once the request is right; nothing was stored for it.
    retry = await daemon.client.post("/api/trading/resume", headers=headers, json={})
    assert retry.status == 409
    assert "Idempotent-Replayed" not in retry.headers


async def test_concurrent_repeats_act_once(daemon):
    import asyncio

    trade_id = await daemon.add_trade()
    headers = {"Authorization": f"Bearer {daemon.admin}", "Idempotency-Key": "race"}
    replies = await asyncio.gather(
        *(daemon.client.post(f"/api/trades/{trade_id}/close", headers=headers) for _ in range(10))
    )
    bodies = {await r.read() for r in replies}
    assert {r.status for r in replies} == {202} and len(bodies) == 1
    queued = [e for e in await daemon.events() if e["type"] == "command_queued"]
    assert len(queued) == 1
