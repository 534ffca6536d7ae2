"""Mode transitions, as a table: every change, every no-op and every refused transition."""

from __future__ import annotations

import pytest

from signalosd import keys
from signalosd.domain.rules import ModeAction, transition
from signalosd.errors import ApiError, ErrorCode
from signalosd.models import CommandType, Mode
from signalosd.outbox.enqueue import enqueue

ENDPOINT = {
    "pause": "/api/trading/pause",
    "resume": "/api/trading/resume",
    "emergency_stop": "/api/trading/emergency-stop",
}
# How to bring a fresh (running) account into each starting mode.
SETUP = {"running": [], "paused": [("pause", {})], "halted": [("emergency_stop", {})]}

# (start, action, body) -> (HTTP status, mode after, changed | error code)
TABLE = [
    ("running", "pause", {}, 202, "paused", True),
    ("running", "resume", {}, 200, "running", False),
    ("running", "resume", {"confirm_halt": True}, 200, "running", False),
    ("running", "emergency_stop", {}, 202, "halted", True),
    ("paused", "pause", {}, 200, "paused", False),
    ("paused", "resume", {}, 202, "running", True),
    ("paused", "emergency_stop", {}, 202, "halted", True),
    ("halted", "emergency_stop", {}, 202, "halted", False),
    ("halted", "resume", {"confirm_halt": True}, 202, "running", True),
    ("halted", "resume", {}, 409, "halted", "halt_confirmation_required"),
    ("halted", "resume", {"confirm_halt": False}, 409, "halted", "halt_confirmation_required"),
    ("halted", "pause", {}, 409, "halted", "mode_conflict"),
]


@pytest.mark.parametrize(("start", "action", "body", "status", "after", "outcome"), TABLE)
async def test_mode_transition_table(daemon, start, action, body, status, after, outcome):
    for step, step_body in SETUP[start]:
        code, _ = await daemon.request("POST", ENDPOINT[step], daemon.admin, json=step_body)
        assert code == 202
    before = await daemon.events()

    code, reply = await daemon.request("POST", ENDPOINT[action], daemon.admin, json=body)

    assert code == status, reply
    _, state = await daemon.request("GET", "/api/trading/state", daemon.admin)
    assert state["mode"] == after
    new_events = (await daemon.events())[len(before) :]
    if isinstance(outcome, str):  # refused: clear error, nothing changed, nothing logged
        assert reply["error"]["code"] == outcome
        assert "confirm_halt" in reply["error"]["message"]
        assert new_events == []
    else:
        assert reply["changed"] is outcome and reply["mode"] == after
        assert ("command" in reply) == (status == 202)
        if not outcome and action != "emergency_stop":
            assert new_events == []  # a no-op leaves no trace and queues nothing


@pytest.mark.parametrize("start", list(Mode))
def test_emergency_stop_is_accepted_from_every_mode(start):
    assert transition(start, ModeAction.EMERGENCY_STOP).after is Mode.HALTED


def test_pause_never_softens_a_halt():
    with pytest.raises(ApiError) as caught:
        transition(Mode.HALTED, ModeAction.PAUSE)
    assert caught.value.code is ErrorCode.MODE_CONFLICT


async def test_emergency_stop_when_already_halted_still_reaches_the_agent(daemon):
    await daemon.request("POST", ENDPOINT["emergency_stop"], daemon.admin, json={})
    code, reply = await daemon.request(
        "POST",
        ENDPOINT["emergency_stop"],
        daemon.admin,
        json={"close_all": True, "reason": "flatten now"},
    )
    assert code == 202
    assert reply["changed"] is False
    assert reply["command"]["type"] == "emergency_stop"
    assert reply["command"]["params"] == {"close_all": True, "reason": "flatten now"}
    assert reply["command"]["expires_at"] is None  # emergency stop never expires


async def test_mode_changes_are_events_naming_the_actor(daemon):
    token = await daemon.token("operator", label="night-shift")
    await daemon.request("POST", ENDPOINT["pause"], token, json={"reason": "NFP at 13:30"})
    paused = [e for e in await daemon.events() if e["type"] == "trading_paused"]
    assert len(paused) == 1
    assert paused[0]["data"]["reason"] == "NFP at 13:30"
    assert paused[0]["actor"]["label"] == "night-shift"
    assert paused[0]["actor"]["role"] == "operator"


async def test_stealth_toggle_accepts_the_seed_body_and_a_bare_toggle(daemon):
    url = "/api/trading/stealth-toggle"
    code, reply = await daemon.request("POST", url, daemon.admin)  # no body: toggle
    assert (code, reply["stealth"], reply["changed"]) == (202, True, True)
    code, reply = await daemon.request("POST", url, daemon.admin, json={"stealthMode": True})
    assert (code, reply["stealth"], reply["changed"]) == (200, True, False)
    code, reply = await daemon.request("POST", url, daemon.admin, json={"enabled": False})
    assert (code, reply["stealth"], reply["changed"]) == (202, False, True)
    assert reply["command"]["type"] == "set_stealth"


async def test_emergency_stop_cancels_queued_entries_only(daemon):
    account_id = await daemon.account_id()
    policy = daemon.app[keys.POLICY]

    def queue(tx, type_):
        return enqueue(tx, policy, account_id, type_, {"symbol": "EURUSD"}, {"kind": "system"})

    entry = await daemon.db.write(lambda tx: queue(tx, CommandType.OPEN_TRADE))
    sync = await daemon.db.write(lambda tx: queue(tx, CommandType.FORCE_SYNC))

    code, _reply = await daemon.request("POST", ENDPOINT["emergency_stop"], daemon.admin)
    assert code == 202

    _, got = await daemon.request("GET", f"/api/commands/{entry['id']}", daemon.admin)
    assert got["command"]["status"] == "cancelled"
    _, got = await daemon.request("GET", f"/api/commands/{sync['id']}", daemon.admin)
    assert got["command"]["status"] == "queued"
    cancelled = [e for e in await daemon.events() if e["type"] == "command_cancelled"]
    assert [e["data"]["command_id"] for e in cancelled] == [entry["id"]]


MESSAGES = [  # (start, action, body) -> the daemon's own words in the reply
    ("running", "pause", {}, "Trading paused: no new entries"),
    ("paused", "pause", {}, "Already paused: nothing changed"),
    ("paused", "resume", {}, "Trading resumed from the pause"),
    ("running", "resume", {}, "Already running: nothing changed"),
    ("halted", "resume", {"confirm_halt": True}, "Trading resumed from the halt"),
    ("running", "emergency_stop", {}, "Trading halted; 0 unfinished entries or resumes cancelled"),
    (
        "halted",
        "emergency_stop",
        {"close_all": True},
        "Already halted: the stop was sent again; 0 unfinished entries or resumes cancelled, "
        "closing every position",
    ),
]


@pytest.mark.parametrize(("start", "action", "body", "message"), MESSAGES)
async def test_control_replies_say_what_happened(daemon, start, action, body, message):
    for step, step_body in SETUP[start]:
        await daemon.request("POST", ENDPOINT[step], daemon.admin, json=step_body)
    _, reply = await daemon.request("POST", ENDPOINT[action], daemon.admin, json=body)
    assert reply["message"] == message


async def test_the_stop_reply_lists_the_entries_it_cancelled(daemon):
    """A dashboard whose stream is down still shows what the stop cancelled, from the reply."""
    code, signal = await daemon.request(
        "POST",
        "/api/signals",
        daemon.admin,
        json={"symbol": "EURUSD", "side": "buy", "volume": 0.1},
    )
    assert code == 202
    _, reply = await daemon.request("POST", ENDPOINT["emergency_stop"], daemon.admin, json={})
    assert reply["cancelled_commands"] == [signal["command"]["id"]]
    assert reply["message"] == "Trading halted; 1 unfinished entry or resume cancelled"


async def test_stealth_and_sync_replies_say_what_happened(daemon):
    url = "/api/trading/stealth-toggle"
    _, on = await daemon.request("POST", url, daemon.admin, json={"enabled": True})
    _, again = await daemon.request("POST", url, daemon.admin, json={"enabled": True})
    _, sync = await daemon.request("POST", "/api/firebridge/force-sync", daemon.admin)
    assert (on["message"], again["message"]) == (
        "Stealth on",
        "Stealth already on: nothing changed",
    )
    assert sync["message"].startswith("Sync requested")
