"""/ws message handling (DESIGN invariant 7): a bad message gets an `error {code, message}` and
the connection survives; and the connection itself is set up as section 7 asks (heartbeat on,
compression off, 1 MiB message limit)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import WSCloseCode, WSMsgType

from signalosd import keys
from tests.stream_client import (
    TIMEOUT,
    Stream,
    append_events,
    kinds,
    open_stream,
    seqs,
    start_daemon,
    until,
)

MIB = 1024 * 1024

MALFORMED = {
    "not JSON": ("{", "invalid_json"),
    "a JSON array": ("[1, 2]", "bad_message"),
    "a JSON string": ('"ping"', "bad_message"),
    "no type": ('{"data": {}}', "bad_message"),
    "a type that is not a string": ('{"type": 5}', "bad_message"),
    "an unknown type": ('{"type": "subscribe_all"}', "unknown_type"),
    "data that is not an object": ('{"type": "ping", "data": [1]}', "bad_message"),
    "a binary frame": (b'{"type": "ping", "data": {}}', "bad_message"),
    "subscribe since < 0": ('{"type": "subscribe", "data": {"since": -1}}', "validation_error"),
    "subscribe since as text": (
        '{"type": "subscribe", "data": {"since": "5"}}',
        "validation_error",
    ),
    "subscribe since a float": (
        '{"type": "subscribe", "data": {"since": 1.5}}',
        "validation_error",
    ),
    "subscribe since a bool": (
        '{"type": "subscribe", "data": {"since": true}}',
        "validation_error",
    ),
    "subscribe types not a list": (
        '{"type": "subscribe", "data": {"types": "command_*"}}',
        "validation_error",
    ),
    "subscribe types not strings": (
        '{"type": "subscribe", "data": {"types": [1]}}',
        "validation_error",
    ),
    "subscribe 65 types": (
        json.dumps({"type": "subscribe", "data": {"types": [f"t{i}" for i in range(65)]}}),
        "validation_error",
    ),
    "subscribe unknown field": ('{"type": "subscribe", "data": {"from": 3}}', "validation_error"),
    "data a list": ('{"type": "subscribe", "data": []}', "bad_message"),
    "data false": ('{"type": "ping", "data": false}', "bad_message"),
}


@pytest.mark.parametrize("raw,code", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_message_gets_an_error_and_the_connection_lives(daemon, raw, code):
    async with open_stream(daemon, daemon.admin) as stream:
        if isinstance(raw, bytes):
            await stream.ws.send_bytes(raw)
        else:
            await stream.ws.send_str(raw)
        (error,) = await stream.sync()  # the pong after it proves the connection is alive

    assert error["type"] == "error"
    assert error["data"]["code"] == code
    assert isinstance(error["data"]["message"], str) and error["data"]["message"]


async def test_an_error_uses_the_seed_envelope(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.send("fly")
        (error,) = await stream.sync()

    assert set(error) == {"id", "type", "data", "timestamp"}
    assert error["id"].startswith("msg_")
    assert error["timestamp"] == "2026-01-05T09:00:00.000Z"
    assert "'fly'" in error["data"]["message"]


async def test_a_rejected_subscribe_leaves_the_connection_free_to_subscribe(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since="0")
        (error,) = await stream.sync()
        await stream.subscribe(since=0)
        replay = await stream.sync()

    assert error["data"]["code"] == "validation_error"
    assert "since" in error["data"]["message"]
    assert seqs(replay) == [1, 2]


async def test_a_second_subscribe_is_refused_and_the_first_stays_in_force(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(types=["trading_*"])
        await stream.sync()
        await stream.subscribe(since=0)
        (error,) = await stream.sync()
        status, _ = await daemon.request("POST", "/api/trading/pause", daemon.admin)
        assert status == 202
        live = await stream.sync()

    assert error["data"]["code"] == "already_subscribed"
    assert kinds(live) == ["trading_paused"]


async def test_a_second_authenticate_is_an_error_and_the_connection_lives(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.send("authenticate", {"token": daemon.admin})
        (error,) = await stream.sync()

    assert error["data"]["code"] == "already_authenticated"


async def test_ping_gets_a_pong_echoing_its_timestamp(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.send("ping", {"timestamp": 1767603600123})
        pong = await stream.recv()

    assert pong["type"] == "pong"
    assert pong["data"] == {"timestamp": 1767603600123, "server_time": "2026-01-05T09:00:00.000Z"}


async def test_an_ack_is_accepted_silently(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.send("ack", {"messageId": "evt_1"})
        assert await stream.sync() == []


async def test_malformed_messages_change_nothing_in_the_event_log(daemon):
    before = await daemon.db.read(lambda tx: tx.head_seq())
    async with open_stream(daemon, daemon.admin) as stream:
        for raw, _ in MALFORMED.values():
            if isinstance(raw, bytes):
                await stream.ws.send_bytes(raw)
            else:
                await stream.ws.send_str(raw)
        errors = await stream.sync()

    assert kinds(errors) == ["error"] * len(MALFORMED)
    assert await daemon.db.read(lambda tx: tx.head_seq()) == before


# ---- the connection's settings -----------------------------------------------------------


async def test_permessage_deflate_is_never_negotiated(daemon):
    ws = await daemon.client.ws_connect("/ws", compress=15)
    try:
        assert ws.compress == 0
    finally:
        await ws.close()


async def test_the_server_sends_heartbeat_pings(aiohttp_client, tmp_path, clock):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_heartbeat_s=0.05)
    ws = await daemon.client.ws_connect("/ws", autoping=False)
    try:
        await Stream(ws).authenticate(daemon.admin)
        msg = await ws.receive(timeout=TIMEOUT)
        assert msg.type is WSMsgType.PING
        await ws.pong(msg.data)
    finally:
        await ws.close()


async def test_a_client_that_stops_answering_heartbeats_is_dropped_from_the_bus(
    aiohttp_client, tmp_path, clock
):
    daemon = await start_daemon(aiohttp_client, tmp_path, clock, ws_heartbeat_s=0.05)
    bus = daemon.app[keys.BUS]
    ws = await daemon.client.ws_connect("/ws", autoping=False)
    try:
        stream = Stream(ws)
        await stream.authenticate(daemon.admin)
        await stream.subscribe()
        assert await stream.sync() == []
        assert len(bus) == 1
        await until(lambda: len(bus) == 0)  # pings go unanswered: the server gives up
    finally:
        await ws.close()


async def test_a_message_just_under_1_mib_is_accepted(daemon):
    big = json.dumps({"type": "ping", "data": {"timestamp": ""}})
    padding = "x" * (MIB - 64 - len(big))
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.send("ping", {"timestamp": padding})
        (pong,) = await stream.sync()

    assert pong["type"] == "pong" and pong["data"]["timestamp"] == padding


async def test_a_message_over_1_mib_closes_with_1009_and_others_are_still_served(daemon):
    async with (
        open_stream(daemon, daemon.admin) as other,
        open_stream(daemon, daemon.admin) as stream,
    ):
        await other.subscribe()
        await other.sync()
        await stream.send("ping", {"timestamp": "x" * (MIB + 1)})
        code, messages = await stream.close_code()
        committed = await append_events(daemon, 1)
        live = await other.sync()

    assert code == WSCloseCode.MESSAGE_TOO_BIG
    assert messages == []
    assert seqs(live) == committed


async def test_on_shutdown_every_client_is_closed_with_1001_going_away(daemon):
    async with (
        open_stream(daemon, daemon.admin) as idle,
        open_stream(daemon, daemon.admin) as subscribed,
    ):
        await subscribed.subscribe(since=0)
        await subscribed.sync()
        shutdown = asyncio.create_task(daemon.client.server.close())
        codes = [(await stream.close_code())[0] for stream in (idle, subscribed)]
        await shutdown

    assert codes == [WSCloseCode.GOING_AWAY, WSCloseCode.GOING_AWAY]
