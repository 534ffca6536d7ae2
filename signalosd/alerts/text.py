"""The short human line of an alert ("EMERGENCY STOP on account main: …"): what a chat
message shows and the `text` of a json alert. Built from the event's own fields; an event
type without a line of its own gets a plain one, so every event can be sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signalosd.models import EventType

_MAX = 1000  # chat services cut long messages; the event's data has the rest


def _num(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def _estop(where: str, d: dict[str, Any]) -> str:
    line = f"EMERGENCY STOP on {where}"
    if d.get("reason"):
        line += f": reason {d['reason']}"
    if d.get("close_all"):
        line += " (closing every position)"
    return line


def _breach(where: str, d: dict[str, Any]) -> str:
    line = f"Risk limit {d.get('limit', '?')} breached on {where}"
    if "equity" in d or "value" in d:
        below = d.get("trip_below", d.get("threshold"))
        line += f": equity {_num(d.get('equity', d.get('value')))} below {_num(below)}"
    return line


def _warning(where: str, d: dict[str, Any]) -> str:
    used = d.get("used_pct")
    line = f"Risk warning on {where}: {d.get('limit', '?')}"
    return line + (f" {_num(used)}% used" if used is not None else "")


def _disconnected(where: str, d: dict[str, Any]) -> str:
    reason = d.get("reason")
    return f"Agent disconnected from {where}" + (f": {reason}" if reason else "")


def _command_failed(where: str, d: dict[str, Any]) -> str:
    line = f"Command {d.get('type', '?')} failed on {where}"
    error = d.get("reason") or d.get("error")
    return line + (f": {error}" if error else "")


def _webhook_failed(where: str, d: dict[str, Any]) -> str:
    return (
        f"Webhook {d.get('webhook_id', '?')} gave up on {d.get('type', '?')} "
        f"(seq {d.get('seq', '?')}) after {d.get('attempts', '?')} attempts: {d.get('error')}"
    )


_LINES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    EventType.EMERGENCY_STOP: _estop,
    EventType.RISK_LIMIT_BREACHED: _breach,
    EventType.RISK_WARNING: _warning,
    EventType.AGENT_DISCONNECTED: _disconnected,
    EventType.COMMAND_FAILED: _command_failed,
    EventType.WEBHOOK_FAILED: _webhook_failed,
}


def line(seq: int, type_: str, account: str | None, data: dict[str, Any]) -> str:
    """One line for people, ending with the seq (to find the event in the log)."""
    where = f"account {account}" if account is not None else "every account"
    make = _LINES.get(type_)
    if make is not None:
        body = make(where, data)
    else:
        message = data.get("message")
        body = f"{type_} on {where}" + (f": {message}" if isinstance(message, str) else "")
    body = " ".join(body.split())  # no newline or tab from a client's reason
    if len(body) > _MAX:
        body = body[: _MAX - 1] + "…"
    return f"{body} (seq {seq})"
