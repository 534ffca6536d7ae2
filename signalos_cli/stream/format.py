"""How `signalos tail` prints an event to `out`, one line each:

- human (`format_event`): `<timestamp> <seq> <account|-> <type> <k=v summary of data>` (ANSI
  colour only when `color` is true; control characters from event data are always escaped);
- `as_json` (`format_json`): the event message exactly as the daemon sent it, one JSON object
  per line (`id, type, seq, data, timestamp, account, actor`). A `reset` is printed too, as its
  own JSON line with `"type": "reset"`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["format_event", "format_json"]

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_GREEN, _YELLOW, _CYAN, _BOLD_RED = "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[1;31m"
_SUMMARY_MAX = 120


def _clean(text: str) -> str:
    """Escape what a terminal would interpret (ESC, C1 controls, newlines)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _value(v: Any) -> str:
    if isinstance(v, str):
        if v and v.isprintable() and not any(c in v for c in ' ="'):
            return v
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)


def _summary(data: Any) -> str:
    if isinstance(data, dict):
        text = " ".join(f"{k}={_value(v)}" for k, v in data.items())
    else:
        text = _value(data)
    text = _clean(text)
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def _type_colour(kind: str) -> str:
    if kind == "emergency_stop" or kind.endswith(("_failed", "_error")):
        return _BOLD_RED
    if kind.endswith(("_paused", "_skipped", "_cancelled", "_expired", "_disconnected")):
        return _YELLOW
    if kind.endswith(("_resumed", "_succeeded", "_connected", "_created")):
        return _GREEN
    return _CYAN


def format_event(msg: dict[str, Any], color: bool = False) -> str:
    """One human line: `<timestamp> <seq> <account|-> <type> <summary>` (no newline)."""
    ts = _clean(str(msg.get("timestamp", "")))
    seq = str(msg.get("seq", ""))
    account = msg.get("account")
    acc = "-" if account is None else _clean(str(account))
    kind = _clean(str(msg.get("type", "")))
    summary = _summary(msg.get("data"))
    if color:
        line = f"{_DIM}{ts}{_RESET} {seq} {acc} {_type_colour(kind)}{kind}{_RESET}"
    else:
        line = f"{ts} {seq} {acc} {kind}"
    return f"{line} {summary}" if summary else line


def format_json(text: str, parsed: dict[str, Any]) -> str:
    """One JSON line (no newline): the message as sent (`text`), re-serialised from `parsed`
    only when the daemon's text spans several lines."""
    return text if "\n" not in text else json.dumps(parsed)
