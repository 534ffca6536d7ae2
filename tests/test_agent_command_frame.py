"""The `command` frame an agent is sent, and the emergency stop that goes out straight from its
`command_queued` event (docs/agent.md): one frame whichever way the command comes."""

from __future__ import annotations

from typing import Any

import pytest

from signalosd import strict_json
from signalosd.models import CommandType, EventType
from signalosd.store import EventRecord
from signalosd.ws.agent_protocol import command_frame, queued_stop

TS = "2026-01-05T09:00:00.000Z"


def queued(type_: CommandType, params: dict[str, Any], expires_at: str | None) -> EventRecord:
    """A `command_queued` event as `outbox.enqueue.enqueue` appends it."""
    data = {
        "command_id": "c-1",
        "type": type_.value,
        "trade_id": None,
        "params": params,
        "halt_gen": 3,
        "expires_at": expires_at,
    }
    return EventRecord(
        7, 1, "default", EventType.COMMAND_QUEUED.value, strict_json.dumps(data), TS, "{}"
    )


def test_a_command_frame_carries_the_stored_command_and_its_attempt() -> None:
    row = {
        "id": "c-1",
        "type": "close_trade",
        "trade_id": 9,
        "params": {"volume": 0.1},
        "expires_at": "2026-01-05T09:05:00.000Z",
        "halt_gen": 2,
        "attempts": 1,
        "status": "sent",
    }
    assert command_frame(row, TS) == (
        '{"id":"c-1","type":"command","data":{"id":"c-1","type":"close_trade","trade_id":9,'
        '"params":{"volume":0.1},"expires_at":"2026-01-05T09:05:00.000Z","halt_gen":2,'
        '"attempt":2},"timestamp":"2026-01-05T09:00:00.000Z"}'
    )


def test_an_emergency_stop_is_sent_from_its_event_as_from_its_row() -> None:
    params = {"close_all": True, "reason": "desk"}
    stop = queued_stop(queued(CommandType.EMERGENCY_STOP, params, None))
    assert stop == {
        "id": "c-1",
        "type": "emergency_stop",
        "trade_id": None,
        "params": params,
        "expires_at": None,
        "halt_gen": 3,
        "attempts": 0,
    }
    assert '"attempt":1' in command_frame(stop, TS)


@pytest.mark.parametrize(
    ("type_", "params", "expires_at"),
    [
        (CommandType.OPEN_TRADE, {"symbol": "EURUSD"}, "2026-01-05T09:01:00.000Z"),
        # The stop's name in another command's data does not make it a stop.
        (CommandType.PAUSE, {"reason": "emergency_stop drill"}, "2026-01-05T09:01:00.000Z"),
        (CommandType.RESUME, {"reason": '"type":"emergency_stop"'}, "2026-01-05T09:01:00.000Z"),
    ],
)
def test_no_other_command_is_sent_from_its_event(
    type_: CommandType, params: dict[str, Any], expires_at: str
) -> None:
    assert queued_stop(queued(type_, params, expires_at)) is None
