"""The emergency stop is a fence (issue 9 §1, DESIGN §3.9): the real daemon, the real agent and
the paper broker, over real loopback sockets.

Table-driven over the state the entry was in when the stop committed. Each case runs the
sequence of the bug report (pause, resume, a signal, then an emergency stop with close_all)
and proves the outcome by order: a `force_sync` queued after the stop succeeds only once
everything before it was dealt with, so "nothing opened" is checked after it, not after a sleep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from signalosd.models import Mode
from tests.conftest import Harness
from tests.fault_injection import (
    GatedBroker,
    StallProxy,
    agent_journal,
    command_of,
    post,
    real_agent,
    until_status,
)

ENTRY = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
BLOCKER = {"symbol": "GBPUSD", "side": "buy", "volume": 0.1}


@dataclass
class Setup:
    """What a case leaves behind for the common checks."""

    entry: str  # the entry under test (its command id)
    resume: str  # the resume issued before the stop
    finish: Callable[[], Awaitable[None]]  # let the agent go on (release the gate, the stall…)


async def _sequence(daemon: Harness) -> tuple[str, str]:
    """pause → resume → signal: (resume id, entry id)."""
    await post(daemon, "/api/trading/pause", {"reason": "news"})
    resume = (await post(daemon, "/api/trading/resume"))["command"]["id"]
    entry = (await post(daemon, "/api/signals", ENTRY))["command"]["id"]
    return resume, entry


async def queued(daemon: Harness, broker: GatedBroker, state: Path, stack: Any) -> Setup:
    """The agent is offline: the stop finds the entry and the resume still queued."""
    async with real_agent(daemon, broker, state):
        pass  # it connected once, and went away
    resume, entry = await _sequence(daemon)
    assert (await command_of(daemon, entry))["status"] == "queued"

    async def finish() -> None:
        await stack.enter_async_context(real_agent(daemon, broker, state))

    return Setup(entry, resume, finish)


async def sent(daemon: Harness, broker: GatedBroker, state: Path, stack: Any) -> Setup:
    """A network stall: the daemon sent the entry and the resume, the agent read neither."""
    proxy = await StallProxy(daemon.client.port).start()
    stack.push_async_callback(proxy.close)
    await stack.enter_async_context(
        real_agent(daemon, broker, state, url=f"http://127.0.0.1:{proxy.port}/")
    )
    proxy.stall()
    resume, entry = await _sequence(daemon)
    await until_status(daemon, entry, "sent")
    await until_status(daemon, resume, "sent")

    async def finish() -> None:
        proxy.flow()

    return Setup(entry, resume, finish)


async def acked(daemon: Harness, broker: GatedBroker, state: Path, stack: Any) -> Setup:
    """The agent is busy (a slow broker call): it has acked the entry and the resume and
    holds them in its queue."""
    await stack.enter_async_context(real_agent(daemon, broker, state))
    broker.hold(BLOCKER["symbol"])
    blocker = (await post(daemon, "/api/signals", BLOCKER))["command"]["id"]
    await broker.wait_entered()
    resume, entry = await _sequence(daemon)
    await until_status(daemon, entry, "acked")
    await until_status(daemon, resume, "acked")
    assert (await command_of(daemon, blocker))["status"] == "acked"

    async def finish() -> None:
        broker.release()

    return Setup(entry, resume, finish)


async def executing(daemon: Harness, broker: GatedBroker, state: Path, stack: Any) -> Setup:
    """The agent is executing the entry itself (inside its pre-trade broker calls) when the
    stop commits; the resume from before is acked behind it."""
    await stack.enter_async_context(real_agent(daemon, broker, state))
    await post(daemon, "/api/trading/pause", {"reason": "news"})
    resume = (await post(daemon, "/api/trading/resume"))["command"]["id"]
    await until_status(daemon, resume, "succeeded")
    broker.hold(ENTRY["symbol"])
    entry = (await post(daemon, "/api/signals", ENTRY))["command"]["id"]
    await broker.wait_entered()
    # Another pause/resume pair behind it, so a stale resume is waiting too.
    await post(daemon, "/api/trading/pause", {"reason": "news"})
    resume = (await post(daemon, "/api/trading/resume"))["command"]["id"]
    await until_status(daemon, resume, "acked")

    async def finish() -> None:
        broker.release()

    return Setup(entry, resume, finish)


CASES = {"queued": queued, "sent": sent, "acked": acked, "executing": executing}


@pytest.mark.parametrize("state_at_stop", list(CASES))
async def test_no_position_opens_after_an_emergency_stop_whatever_state_the_entry_was_in(
    daemon: Harness, tmp_path: Path, state_at_stop: str
) -> None:
    broker = GatedBroker()
    state = tmp_path / "agent"
    async with AsyncExitStack() as stack:
        try:
            setup = await CASES[state_at_stop](daemon, broker, state, stack)
            stop = await post(daemon, "/api/trading/emergency-stop", {"close_all": True})
            right_after = {
                command_id: (await command_of(daemon, command_id))["status"]
                for command_id in (setup.entry, setup.resume)
            }
            sync = (await post(daemon, "/api/firebridge/force-sync"))["command"]["id"]
            await setup.finish()
            assert (await command_of(daemon, stop["command"]["id"], 10))["status"] == "succeeded"
            assert (await command_of(daemon, sync, 10))["status"] == "succeeded"
            _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
        finally:
            broker.release()
    assert "open" not in broker.calls, broker.calls  # no order ever reached the broker
    assert broker.positions() == []
    journal = agent_journal(state)
    try:
        assert journal.mode is Mode.HALTED
        assert journal.halt_gen == stop["halt_gen"] == 1
        for command_id in (setup.entry, setup.resume):
            done = journal.executed(command_id)  # never delivered (queued), or refused
            assert done is None or (done.result is not None and not done.result["ok"]), done
            if done is not None:
                assert "emergency stop" in done.result["error"] or "halted" in done.result["error"]
    finally:
        journal.close()
    # The stop cancelled the entry and the resume as it committed, whatever their state, and
    # a refusal the agent reported later did not change that.
    assert right_after == {setup.entry: "cancelled", setup.resume: "cancelled"}
    assert (await command_of(daemon, setup.entry))["status"] == "cancelled"
    assert health["mode"] == "halted"
    assert health["agent"]["mode"] == "halted" and health["agent"]["halt_gen"] == 1
    assert health["agent"]["mode_mismatch"] is False


async def test_after_resuming_from_the_halt_entries_open_again(
    daemon: Harness, tmp_path: Path
) -> None:
    """The fence stops what came before the stop, not what comes after the resume."""
    broker = GatedBroker()
    async with real_agent(daemon, broker, tmp_path):
        await post(daemon, "/api/trading/emergency-stop")
        resume = await post(daemon, "/api/trading/resume", {"confirm_halt": True})
        assert (await command_of(daemon, resume["command"]["id"], 10))["status"] == "succeeded"
        entry = (await post(daemon, "/api/signals", ENTRY))["command"]
        assert entry["halt_gen"] == 1
        assert (await command_of(daemon, entry["id"], 10))["status"] == "succeeded"
    assert broker.calls == ["open"]


async def test_an_agent_that_missed_the_stop_takes_the_halt_from_welcome(
    daemon: Harness, tmp_path: Path
) -> None:
    """A new install of the agent (a fresh state dir) while the desk is halted: nothing is left
    to redeliver, and `welcome` alone brings the agent to the daemon's mode."""
    broker = GatedBroker()
    async with real_agent(daemon, broker, tmp_path / "old"):
        stop = await post(daemon, "/api/trading/emergency-stop")
        assert (await command_of(daemon, stop["command"]["id"], 10))["status"] == "succeeded"
    async with real_agent(daemon, broker, tmp_path / "new"):
        sync = (await post(daemon, "/api/firebridge/force-sync"))["command"]["id"]
        assert (await command_of(daemon, sync, 10))["status"] == "succeeded"
        _, health = await daemon.request("GET", "/api/system/health", daemon.admin)
    journal = agent_journal(tmp_path / "new")
    try:
        assert (journal.mode, journal.halt_gen) == (Mode.HALTED, 1)
    finally:
        journal.close()
    assert health["agent"]["mode"] == "halted" and health["agent"]["mode_mismatch"] is False
    assert "agent_mode_mismatch" not in [e["type"] for e in await daemon.events()]
