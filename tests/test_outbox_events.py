"""What the outbox writes to the log keeps its stored shape: the daemon's own actors are the
same JSON text, key for key, and a long-poll wakes on a command event whatever form its type
arrives in (an EventType from this process, plain text read back from the store)."""

from __future__ import annotations

import asyncio
import json

from signalosd import keys
from signalosd.models import CommandStatus, CommandType
from signalosd.outbox import deadlines
from signalosd.outbox.enqueue import enqueue
from signalosd.store import EventRecord
from tests.conftest import Harness
from tests.fake_agent import command_status, connect_agent, until

SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}


async def _stored(daemon: Harness, type_: str) -> list[EventRecord]:
    records = await daemon.db.read(lambda tx: tx.read_events(0, 1000, None))
    return [r for r in records if r.type == type_]


async def test_delivery_is_stored_as_the_system_actor_it_always_was(daemon: Harness) -> None:
    agent = await connect_agent(daemon, await daemon.token("agent"))
    _, paused = await daemon.request("POST", "/api/trading/pause", daemon.admin)
    command_id = paused["command"]["id"]
    assert (await agent.command())["id"] == command_id

    async def sent() -> bool:
        return await command_status(daemon, command_id) == "sent"

    await until(sent)
    (event,) = await _stored(daemon, "command_sent")
    assert event.actor_json == '{"kind":"system","id":null,"label":"delivery"}'


async def test_expiry_is_stored_as_the_system_actor_it_always_was(daemon: Harness) -> None:
    _, reply = await daemon.request("POST", "/api/signals", daemon.admin, json=SIGNAL)
    daemon.clock.advance(daemon.settings.open_trade_ttl_s)
    expired = await deadlines.expire_commands(daemon.db, daemon.app[keys.POLICY])
    assert expired == [reply["command"]["id"]]

    (event,) = await _stored(daemon, "command_expired")
    assert event.actor_json == '{"kind":"system","id":null,"label":"expiry"}'
    assert json.loads(event.data_json)["reason"].startswith("not delivered before it expired at")


async def test_a_long_poll_wakes_on_a_command_event_whose_type_is_plain_text(
    daemon: Harness,
) -> None:
    account_id, policy = await daemon.account_id(), daemon.app[keys.POLICY]
    waiters = daemon.app[keys.WAITERS]
    command = await daemon.db.write(
        lambda tx: enqueue(tx, policy, account_id, CommandType.FORCE_SYNC, {}, {"kind": "system"})
    )
    waiting = asyncio.create_task(waiters.wait(account_id, command["id"], 20))

    async def registered() -> bool:
        return waiters.waiting(command["id"]) == 1

    await until(registered)
    # Finished without an event of this process (as by another one): only the event read back
    # from the store, its type plain text, tells the waiter.
    await daemon.db.write(
        lambda tx: tx.finish_command(account_id, command["id"], CommandStatus.SUCCEEDED.value, {})
    )
    data = json.dumps({"command_id": command["id"]})
    waiters.on_event(EventRecord(1, account_id, "default", "command_succeeded", data, "", "{}"))

    done = await asyncio.wait_for(waiting, 5)
    assert done is not None and done["status"] == "succeeded"
