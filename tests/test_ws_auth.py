"""/ws authentication: the first message must be `authenticate {token}` within the auth timeout;
anything else gets an `unauthorized` error and close code 4401 (do not retry)."""

from __future__ import annotations

import json

import pytest

from signalosd import keys
from signalosd.auth import accounts
from signalosd.models import Role
from tests.stream_client import Stream, open_stream, start_daemon

CLOSE_AUTH_FAILED = 4401


async def refusal(stream: Stream) -> tuple[dict, int | None]:
    """The error message the server sends before closing, and the close code."""
    code, messages = await stream.close_code()
    (error,) = messages
    return error, code


async def test_authenticate_replies_with_account_role_token_id_and_last_seq(daemon):
    made = await daemon.db.write(
        lambda tx: accounts.create_token(
            tx, "default", Role.VIEWER, "wall screen", accounts.local_actor()
        )
    )
    last_seq = await daemon.db.read(lambda tx: tx.head_seq())
    async with open_stream(daemon) as stream:
        reply = await stream.authenticate(made["token"])

    assert reply == {
        "account": "default",
        "role": "viewer",
        "token_id": made["id"],
        "last_seq": last_seq,
    }


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
async def test_viewer_operator_and_admin_tokens_may_open_the_stream(daemon, role):
    token = await daemon.token(role, account="desk")
    async with open_stream(daemon) as stream:
        reply = await stream.authenticate(token)
        assert reply["role"] == role and reply["account"] == "desk"
        assert await stream.sync() == []  # and the connection is usable


async def test_no_authenticate_within_the_timeout_closes_with_4401(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_auth_timeout_s=0.2)
    async with open_stream(daemon) as stream:
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert error["type"] == "error" and error["data"]["code"] == "unauthorized"
    assert "0.2 s" in error["data"]["message"]


async def test_a_bad_token_gets_an_error_then_close_4401(daemon):
    async with open_stream(daemon) as stream:
        await stream.send("authenticate", {"token": "sos_not-a-real-token"})
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert error["data"]["code"] == "unauthorized"
    assert "invalid token" in error["data"]["message"]


async def test_a_revoked_token_is_refused_with_4401(daemon):
    made = await daemon.db.write(
        lambda tx: accounts.create_token(
            tx, "default", Role.VIEWER, "old laptop", accounts.local_actor()
        )
    )
    await daemon.db.write(lambda tx: accounts.revoke_token(tx, made["id"], accounts.local_actor()))
    async with open_stream(daemon) as stream:
        await stream.send("authenticate", {"token": made["token"]})
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert "revoked" in error["data"]["message"]


async def test_an_agent_token_is_refused_on_the_event_stream(daemon):
    agent = await daemon.token("agent")
    async with open_stream(daemon) as stream:
        await stream.send("authenticate", {"token": agent})
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert "/ws/agent" in error["data"]["message"]


FIRST_MESSAGES = {
    "ping": json.dumps({"type": "ping", "data": {"timestamp": 1}}),
    "subscribe": json.dumps({"type": "subscribe", "data": {"since": 0}}),
    "not JSON": "authenticate please",
    "a JSON array": json.dumps([{"type": "authenticate"}]),
    "no token": json.dumps({"type": "authenticate", "data": {}}),
    "a token that is not a string": json.dumps({"type": "authenticate", "data": {"token": 42}}),
    "data that is not an object": json.dumps({"type": "authenticate", "data": "sos_x"}),
}


@pytest.mark.parametrize("first", list(FIRST_MESSAGES.values()), ids=list(FIRST_MESSAGES))
async def test_a_first_message_that_is_not_authenticate_closes_with_4401(daemon, first):
    async with open_stream(daemon) as stream:
        await stream.ws.send_str(first)
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert error["data"]["code"] == "unauthorized"


async def test_a_binary_first_message_closes_with_4401(daemon):
    async with open_stream(daemon) as stream:
        await stream.ws.send_bytes(
            json.dumps({"type": "authenticate", "data": {"token": daemon.admin}}).encode()
        )
        error, code = await refusal(stream)

    assert code == CLOSE_AUTH_FAILED
    assert error["data"]["code"] == "unauthorized"


async def test_a_refused_connection_never_joins_the_bus(daemon):
    bus = daemon.app[keys.BUS]
    async with open_stream(daemon) as stream:
        await stream.send("subscribe", {"since": 0})
        await refusal(stream)
        assert len(bus) == 0
    async with open_stream(daemon, daemon.admin) as stream:  # the daemon still serves others
        await stream.subscribe()
        await stream.sync()
        assert len(bus) == 1


async def test_a_client_that_leaves_before_authenticating_is_not_an_error(daemon):
    ws = await daemon.client.ws_connect("/ws")
    await ws.close()
    assert ws.close_code == 1000
    async with open_stream(daemon, daemon.admin) as stream:
        assert await stream.sync() == []


async def test_the_token_is_not_taken_from_the_url(daemon):
    ws = await daemon.client.ws_connect("/ws", params={"token": daemon.admin})
    try:
        stream = Stream(ws)
        await stream.send("subscribe", {"since": 0})
        error, code = await refusal(stream)
    finally:
        await ws.close()

    assert code == CLOSE_AUTH_FAILED
    assert error["data"]["code"] == "unauthorized"


async def test_revoking_a_token_closes_its_open_streams_with_4401(daemon):
    from signalosd.auth import accounts
    from tests.stream_client import open_stream

    token = await daemon.token("viewer", label="to revoke")
    async with open_stream(daemon, daemon.admin) as other, open_stream(daemon, token) as doomed:
        await doomed.subscribe()
        await doomed.sync()
        rows = await daemon.db.read(lambda tx: tx.list_tokens())
        token_id = next(r["id"] for r in rows if r["label"] == "to revoke")
        await daemon.db.write(
            lambda tx: accounts.revoke_token(tx, token_id, accounts.local_actor())
        )
        code, _ = await doomed.close_code()
        assert code == 4401
        assert await other.sync() == []  # others are untouched
