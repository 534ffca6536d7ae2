async def test_state_of_a_fresh_daemon_is_running(daemon):
    status, body = await daemon.request("GET", "/api/trading/state", daemon.admin)
    assert status == 200
    assert body["mode"] == "running" and body["stealth"] is False
