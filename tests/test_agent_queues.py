"""The command queue (emergency stop jumps it), the worker, and the bounded report queue."""

from __future__ import annotations

import asyncio
import threading

from signalos_cli.agent.broker import Deal
from signalos_cli.agent.queues import CommandQueue, Kind, ReportQueue
from signalos_cli.agent.runner import Agent
from tests.counting_broker import CountingBroker, command, make_executor, open_params


def _types(queue: CommandQueue) -> list[str]:
    return [c["type"] for c in queue._items]


def test_emergency_stop_jumps_ahead_of_queued_commands_behind_earlier_stops():
    queue = CommandQueue()
    for c in (command("open_trade"), command("emergency_stop"), command("close_trade"),
              command("emergency_stop", id="second-stop")):  # fmt: skip
        queue.put(c)
    assert _types(queue) == ["emergency_stop", "emergency_stop", "open_trade", "close_trade"]
    assert queue._items[1]["id"] == "second-stop"


def test_a_command_already_queued_is_not_queued_twice():
    queue = CommandQueue()
    c = command("close_trade")
    assert queue.put(c) is True
    assert queue.put(dict(c)) is False
    assert len(queue) == 1 and c["id"] in queue


class Slow(CountingBroker):
    """The first open waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def open_position(self, *args, **kwargs) -> Deal:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(5)
        return super().open_position(*args, **kwargs)


async def _results(agent: Agent, count: int) -> list[dict]:
    for _ in range(500):
        results = [i.data for i in agent.report_queue.items() if i.kind is Kind.RESULT]
        if len(results) >= count:
            return results
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {agent.report_queue.items()}")


async def test_emergency_stop_runs_before_commands_queued_behind_the_running_one(tmp_path):
    broker = Slow()
    ex = make_executor(tmp_path, broker)
    agent = Agent(broker, ex.journal)
    worker = asyncio.create_task(agent.worker())
    try:
        first, second = command("open_trade", open_params()), command("open_trade", open_params())
        stop = command("emergency_stop", {"close_all": True})
        agent.commands.put(first)
        await asyncio.to_thread(broker.started.wait, 5)
        agent.commands.put(second)
        agent.commands.put(stop)
        broker.release.set()
        results = await _results(agent, 3)
    finally:
        worker.cancel()
        agent._thread.shutdown()

    assert [r["command_id"] for r in results] == [first["id"], stop["id"], second["id"]]
    assert results[1]["data"]["closed"] == [results[0]["data"]["ticket"]]  # flattened
    assert results[2]["error"] == "trading is halted on the agent"
    assert broker.positions() == []


async def test_open_trade_result_precedes_the_trade_update_of_its_position(tmp_path):
    ex = make_executor(tmp_path)
    agent = Agent(ex.broker, ex.journal)
    worker = asyncio.create_task(agent.worker())
    try:
        agent.commands.put(command("open_trade", open_params(), trade_id=9))
        (result,) = await _results(agent, 1)
        async with asyncio.timeout(5):  # the position's report follows its result
            while len(agent.report_queue) < 2:
                await asyncio.sleep(0.01)
    finally:
        worker.cancel()
        agent._thread.shutdown()

    kinds = [(i.type, i.data.get("ticket")) for i in agent.report_queue.items()]
    ticket = result["data"]["ticket"]
    assert kinds == [("command_result", None), ("trade_update", ticket)]
    assert agent.report_queue.items()[1].data["trade_id"] == 9


def test_report_queue_overflow_drops_the_oldest_trade_update_never_a_result():
    queue = ReportQueue(limit=3)
    queue.put(Kind.UPDATE, "trade_update", {"n": 1})
    queue.put(Kind.RESULT, "command_result", {"n": 2})
    queue.put(Kind.UPDATE, "trade_update", {"n": 3})
    queue.put(Kind.UPDATE, "trade_update", {"n": 4})  # drops n=1
    queue.put(Kind.RESULT, "command_result", {"n": 5})  # drops n=3
    assert [i.data["n"] for i in queue.items()] == [2, 4, 5]
    assert queue.dropped == 2


def test_report_queue_keeps_every_result_even_past_its_bound():
    queue = ReportQueue(limit=2)
    for n in range(4):
        queue.put(Kind.RESULT, "command_result", {"n": n})
    assert [i.data["n"] for i in queue.items()] == [0, 1, 2, 3]


async def test_report_queue_keeps_order_and_drops_connection_messages_when_it_ends():
    queue = ReportQueue()
    queue.put(Kind.CONNECTION, "ack", {"messageId": "a"})
    queue.put(Kind.UPDATE, "trade_update", {"n": 1})
    queue.put(Kind.RESULT, "command_result", {"n": 2})
    queue.end_connection()
    first = await queue.get()
    queue.push_front(first)  # a failed send goes first next time
    assert [(await queue.get()).data["n"] for _ in range(2)] == [1, 2]
