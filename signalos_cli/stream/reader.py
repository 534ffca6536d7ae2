"""What `signalos tail` reads from `/ws`: the `authenticated` answer, then events, resets and
the pong that ends a `follow=False` replay.

`Reader` prints each event at most once: an event at or below the cursor (the last seq
consumed) is never printed, so nothing repeats across reconnects, and with `follow=False`
events past the target (the head announced on the first connection) are skipped.

`reset` (the log no longer holds the next event, or the cursor is past the head): a warning on
`err`, then the stream continues after `reset.last_seq`.

A close or error frame raises `Closed`: the caller reconnects (except on 4401, the token refused).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TextIO

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from signalos_cli.errors import ExitCode
from signalos_cli.stream.ending import Fatal
from signalos_cli.stream.format import format_event, format_json
from signalosd.models import CloseCode

__all__ = ["Closed", "Reader", "authenticated", "raise_closed"]


class Closed(Exception):
    """The connection ended; reconnect (unless the code says otherwise)."""

    def __init__(self, why: str, code: int | None = None) -> None:
        super().__init__(why)
        self.code = code


def _close_text(code: int | None, reason: str) -> str:
    names: dict[int, str] = {
        WSCloseCode.OK: "normal closure",
        CloseCode.GOING_AWAY: "the daemon is shutting down",
        WSCloseCode.ABNORMAL_CLOSURE: "connection lost",
        WSCloseCode.MESSAGE_TOO_BIG: "message too big",
        WSCloseCode.INTERNAL_ERROR: "internal error",
        CloseCode.SLOW_CONSUMER: "slow consumer",
        CloseCode.AUTH_FAILED: "authentication failed",
    }
    text = f"closed with code {code}"
    if code in names:
        text += f" ({names[code]})"
    return text + (f": {reason}" if reason else "")


def raise_closed(ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage) -> None:
    """Raise Closed for a close/error message (return for anything else)."""
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
        reason = msg.extra if msg.type is WSMsgType.CLOSE and msg.extra else ""
        code = ws.close_code
        raise Closed(_close_text(code, reason), code)
    if msg.type is WSMsgType.ERROR:
        exc = ws.exception() or msg.data
        if isinstance(exc, aiohttp.ServerTimeoutError):
            raise Closed(f"no answer to the heartbeat ping ({exc})")
        raise Closed(f"connection error: {exc}")


def _loads(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def authenticated(ws: aiohttp.ClientWebSocketResponse, timeout_s: float) -> dict[str, Any]:
    """The `data` of the daemon's `authenticated` answer (waiting at most `timeout_s`)."""
    async with asyncio.timeout(timeout_s):
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                parsed = _loads(msg.data)
                kind = parsed.get("type")
                data = parsed.get("data")
                if kind == "authenticated" and isinstance(data, dict):
                    return data
                if kind == "error" and isinstance(data, dict):
                    code = data.get("code")
                    if code == "unauthorized":
                        continue  # the 4401 close that follows says it
                    raise Fatal(ExitCode.FAILED, f"the daemon answered: {data.get('message')}")
                continue
            raise_closed(ws, msg)


class Reader:
    """Prints the subscribed stream to `out` and keeps the cursor, across connections."""

    def __init__(
        self, out: TextIO, *, as_json: bool, color: bool, say: Callable[[str], None]
    ) -> None:
        self.out = out
        self.as_json = as_json
        self.color = color
        self.say = say  # a warning line to `err`
        self.cursor: int | None = None  # last seq consumed (printed, or skipped by a reset)
        self.target: int | None = None  # follow=False: the head at the first connect
        self.conn_head = 0  # the head this connection's `authenticated` announced
        self.ping_stamp = ""  # follow=False: the ping whose pong ends the replay

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> int:
        """Print until the stream ends: ExitCode.OK at the target, else Closed or Fatal."""
        out, as_json, color = self.out, self.as_json, self.color
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                raise_closed(ws, msg)
                continue
            text: str = msg.data
            parsed = _loads(text)
            seq = parsed.get("seq")
            if type(seq) is int:
                if self.cursor is not None and seq <= self.cursor:
                    continue  # never twice
                if self.target is not None and seq > self.target:
                    continue  # follow=False: only what existed at connect time
                if as_json:
                    out.write(format_json(text, parsed) + "\n")
                else:
                    out.write(format_event(parsed, color) + "\n")
                self.cursor = seq
                if seq == self.target:
                    return self._done()
                continue
            kind = parsed.get("type")
            data = parsed.get("data")
            data = data if isinstance(data, dict) else {}
            if kind == "reset":
                self._reset(text, parsed, data)
            elif kind == "pong" and self.ping_stamp and data.get("timestamp") == self.ping_stamp:
                return self._done()
            elif kind == "error":
                code, message = data.get("code"), data.get("message")
                if code == "validation_error":
                    raise Fatal(ExitCode.USAGE, f"the daemon refused the subscription: {message}")
                self.say(f"warning: the daemon sent an error: {code}: {message}")

    def _reset(self, text: str, parsed: dict[str, Any], data: dict[str, Any]) -> None:
        last = int(data.get("last_seq", 0))
        reason = data.get("reason", "")
        after = self.cursor
        if reason == "pruned":
            why = f"the events after seq {after} were pruned by retention"
        elif reason == "future":
            why = f"seq {after} is past the end of the log (restored or replaced database?)"
        else:
            why = f"the log cannot resume after seq {after} ({reason})"
        self.say(
            f"warning: reset: {why}; events may be missing: continuing after seq {last} "
            "(the reset's snapshot holds the current state)"
        )
        if self.as_json:
            self.out.write(format_json(text, parsed) + "\n")
        self.cursor = last

    def _done(self) -> int:
        """follow=False: everything up to the target was printed."""
        assert self.target is not None and self.cursor is not None
        self.cursor = max(self.cursor, min(self.target, self.conn_head))
        return ExitCode.OK
