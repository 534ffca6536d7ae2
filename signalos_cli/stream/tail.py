"""`signalos tail`: follow the daemon's event log over `/ws`, like `journalctl -f`.

`tail(url, token, …)` connects to `ws(s)://HOST/ws` (an http(s) url is mapped to ws(s); the
token goes in the `authenticate` message, never in the url), or to `/ws` on the daemon's local
control socket (`socket=PATH`; with `token=None` the daemon knows the user by uid), subscribes
`{since, types}` and
prints every event, one line each, to `out`: human, or `as_json` the event message as the
daemon sent it (`format.py`). This module is the connection loop; the rest lives beside it:

- `start.py`: where the first subscription starts (`since`, `last`, a cursor file, head);
- `reader.py`: reading the stream (each event at most once, `reset`, the end of a replay);
- `cursor.py`: the cursor file, never ahead of the output;
- `ending.py`: `Fatal` (stop with an exit code), and SIGINT/SIGTERM;
- `connect.py`: the `/ws` and REST urls, the HTTP session, the WebSocket, `authenticate`.

Connection states go to `err` as `tail: connecting … (attempt N)`, `tail: connected …`,
`tail: disconnected: …`, `tail: error: …`. A lost connection (server close, network error, no
pong to our heartbeat ping within `heartbeat_s * 1.5`: 30 s by default) is retried with
exponential backoff and jitter (1 s → 30 s; the attempt count starts afresh after a connection
that lasted `stable_after_s`), and the stream resumes after the last seq it consumed, so no
event is missed or printed twice across reconnects and daemon restarts (the daemon's
invariant 5; an event at or below the cursor is never printed).

`follow=False`: print what exists up to the head announced on the first connection, then exit
0 (events past it are not printed). The end is found with an app-level `ping`: the daemon
answers it only after the replay, so the pong means "everything up to the head was sent".

Exit codes: 0 done (`follow=False`); 1 error (cursor file unusable, daemon answered with an
unexpected error); 2 bad arguments (including a filter the daemon rejects); 3 the daemon could
not be reached on the first attempt with `follow=False` (in follow mode it keeps retrying and
reports each state); 4 the token was refused (close 4401; not retried); 130 interrupted
(SIGINT or `options.stop`), 143 SIGTERM, 141 `out` was closed (broken pipe). The cursor is
flushed on every exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from signalos_cli.errors import ExitCode
from signalos_cli.reconnect import reconnect_delay
from signalos_cli.stream.connect import (
    api_base,
    auth_data,
    client_session,
    stream_url,
    unencrypted,
    ws_connect,
)
from signalos_cli.stream.cursor import CursorFile
from signalos_cli.stream.ending import Fatal, run_until_stopped
from signalos_cli.stream.format import format_event
from signalos_cli.stream.reader import Closed, Reader, authenticated
from signalos_cli.stream.start import EventLog, start_after
from signalosd.models import CloseCode

__all__ = [
    "TailOptions",
    "api_base",
    "format_event",
    "stream_url",
    "tail",
]


@dataclass(frozen=True)
class TailOptions:
    """Timings and hooks; the defaults are the production values, tests inject tiny ones."""

    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    stable_after_s: float = 30.0  # a connection this long resets the backoff
    heartbeat_s: float = 20.0  # ping after this much silence; no pong in half of it: dead
    connect_timeout_s: float = 10.0  # TCP + upgrade, and the wait for `authenticated`
    flush_interval_s: float = 0.1  # flush `out`, then write the cursor file
    show_state: bool = True  # connection states on `err`
    handle_signals: bool = True  # SIGINT → 130, SIGTERM → 143 (main thread only)
    stop: asyncio.Event | None = None  # set it to stop like Ctrl-C (exit 130)
    random: Callable[[], float] = random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # the backoff's wait


def backoff(attempt: int, options: TailOptions) -> float:
    """Delay before reconnect attempt `attempt` (1, 2, …), with tail's timings."""
    return reconnect_delay(
        attempt, options.backoff_initial_s, options.backoff_max_s, options.random
    )


# ---- the engine -------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        from signalos_cli.client import UNTRUSTED_HINT

        return f"{exc.certificate_error}; {UNTRUSTED_HINT}"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"websocket upgrade refused (HTTP {exc.status})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


class _Tail:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        socket: str | None,
        since: int | None,
        last: int | None,
        types: Sequence[str],
        follow: bool,
        cursor_file: Path | None,
        as_json: bool,
        color: bool,
        out: TextIO,
        err: TextIO,
        options: TailOptions,
    ) -> None:
        self.url = url
        self.token = token
        self.socket = socket
        self.since_arg = since
        self.last = last
        self.types = list(types)
        self.follow = follow
        self.cursor_file = None if cursor_file is None else CursorFile(cursor_file)
        self.out = out
        self.err = err
        self.options = options
        self.reader = Reader(out, as_json=as_json, color=color, say=self._say)
        self.ws_url = ""
        self.where = ""  # the ws url, or the control socket, for messages
        self.api = ""
        self.file_cursor: int | None = None
        self.ever_connected = False
        self.connected_at: float | None = None

    # ---- reporting ----

    def _say(self, line: str) -> None:
        print(f"tail: {line}", file=self.err, flush=True)

    def _state(self, line: str) -> None:
        if self.options.show_state:
            self._say(line)

    def flush(self) -> None:
        """Flush the output, then record the cursor (never ahead of what was written)."""
        self.out.flush()
        if self.cursor_file is not None and self.reader.cursor is not None:
            self.cursor_file.save(self.reader.cursor)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.options.flush_interval_s)
            self.flush()

    # ---- run ----

    def _check(self) -> None:
        if self.since_arg is not None and self.last is not None:
            raise Fatal(
                ExitCode.USAGE, "give either a since seq or a number of last events, not both"
            )
        if self.since_arg is not None and self.since_arg < 0:
            raise Fatal(ExitCode.USAGE, "since must be a seq >= 0")
        if self.last is not None and self.last < 0:
            raise Fatal(ExitCode.USAGE, "the number of last events must be >= 0")
        try:
            self.ws_url = stream_url(self.url)
            self.api = api_base(self.url)
            self.where = self.ws_url
            if self.socket is not None:  # no TLS on a unix socket, whatever the url says
                self.ws_url, self.api = unencrypted(self.ws_url), unencrypted(self.api)
                self.where = f"the control socket {self.socket}"
        except ValueError as exc:
            raise Fatal(ExitCode.USAGE, str(exc)) from exc
        if self.cursor_file is not None:
            self.file_cursor = self.cursor_file.load()

    async def run(self) -> int:
        try:
            try:
                self._check()
                connect_s = self.options.connect_timeout_s
                async with client_session(self.socket, connect_s) as http:
                    main = asyncio.create_task(self._connect_loop(http))
                    flusher = asyncio.create_task(self._flusher())
                    try:
                        await asyncio.wait({main, flusher}, return_when=asyncio.FIRST_COMPLETED)
                        if flusher.done():
                            flusher.result()  # raises: the output or the cursor file failed
                        return main.result()
                    finally:
                        for task in (main, flusher):
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
            finally:
                self.flush()
        except Fatal as exc:
            self._say(f"error: {exc}")
            return exc.code
        except BrokenPipeError:
            _quiet_stdout(self.out)
            return ExitCode.BROKEN_PIPE

    async def _connect_loop(self, http: aiohttp.ClientSession) -> int:
        attempt = 0
        while True:
            attempt += 1
            self.connected_at = None
            self._state(f"connecting to {self.where} (attempt {attempt})")
            try:
                return await self._connection(http)
            except BrokenPipeError:
                raise  # the output went away, not the daemon
            except Closed as exc:
                if exc.code == CloseCode.AUTH_FAILED:
                    who = "the token" if self.token is not None else "this user"
                    raise Fatal(
                        ExitCode.UNAUTHORIZED, f"the daemon refused {who} ({exc})"
                    ) from None
                self._state(f"disconnected: {exc}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if not self.ever_connected and not self.follow:
                    raise Fatal(
                        ExitCode.UNREACHABLE,
                        f"cannot reach the daemon at {self.where}: {_describe(exc)}",
                    ) from None
                if self._uptime() is None:
                    self._state(f"error: {_describe(exc)} (attempt {attempt})")
                else:
                    self._state(f"disconnected: {_describe(exc)}")
            uptime = self._uptime()
            if uptime is not None and uptime >= self.options.stable_after_s:
                attempt = 0  # a stable connection: start the backoff afresh
            delay = backoff(max(attempt, 1), self.options)
            cursor = self.reader.cursor
            where = "" if cursor is None else f", resuming after seq {cursor}"
            self._state(f"reconnecting in {delay:.1f} s{where}")
            await self.options.sleep(delay)

    def _uptime(self) -> float | None:
        """How long the last connection was up (None: it never got to `authenticated`)."""
        return None if self.connected_at is None else time.monotonic() - self.connected_at

    async def _connection(self, http: aiohttp.ClientSession) -> int:
        async with await ws_connect(http, self.ws_url, self.options.heartbeat_s) as ws:
            await ws.send_str(json.dumps({"type": "authenticate", "data": auth_data(self.token)}))
            hello = await authenticated(ws, self.options.connect_timeout_s)
            self.connected_at = time.monotonic()
            self.ever_connected = True
            self.reader.conn_head = head = int(hello.get("last_seq", 0))
            since = await self._since(http, head)
            who = f"account {hello.get('account')}, role {hello.get('role')}"
            self._state(f"connected ({who}, head seq {head}); streaming after seq {since}")
            sub: dict[str, Any] = {"since": since}
            if self.types:
                sub["types"] = self.types
            await ws.send_str(json.dumps({"type": "subscribe", "data": sub}))
            if not self.follow:
                self.reader.ping_stamp = stamp = f"tail-end-{os.getpid()}-{time.monotonic_ns()}"
                await ws.send_str(json.dumps({"type": "ping", "data": {"timestamp": stamp}}))
            return await self.reader.read(ws)

    async def _since(self, http: aiohttp.ClientSession, head: int) -> int:
        """The seq to subscribe after: the cursor on a reconnect, else from the arguments."""
        if self.reader.cursor is not None:
            return self.reader.cursor
        since = await start_after(
            EventLog(http, self.api, self.token, self.types),
            head,
            since=self.since_arg,
            last=self.last,
            file_cursor=self.file_cursor,
            follow=self.follow,
        )
        if not self.follow:
            self.reader.target = head
        self.reader.cursor = since
        return since


def _quiet_stdout(out: TextIO) -> None:
    """After a broken pipe, keep the interpreter's final flush of stdout from failing again."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


# ---- entry point ------------------------------------------------------------------------------


async def tail(
    url: str,
    token: str | None,
    *,
    socket: str | None = None,
    since: int | None = None,
    last: int | None = None,
    types: Sequence[str] = (),
    follow: bool = True,
    cursor_file: Path | None = None,
    as_json: bool = False,
    color: bool = False,
    out: TextIO,
    err: TextIO,
    options: TailOptions | None = None,
) -> int:
    """Print the daemon's events to `out` (see the module docstring); return the exit code.

    `url` is the daemon's base url (http(s)://HOST:PORT, or ws(s)://…/ws); `types` filters by
    event type (`*` is a wildcard, as the daemon supports); `since` and `last` are exclusive.
    `socket`: connect to the daemon's local control socket instead of the url's host.
    """
    opts = options or TailOptions()
    engine = _Tail(
        url,
        token,
        socket=socket,
        since=since,
        last=last,
        types=types,
        follow=follow,
        cursor_file=cursor_file,
        as_json=as_json,
        color=color,
        out=out,
        err=err,
        options=opts,
    )
    return await run_until_stopped(engine.run(), stop=opts.stop, handle_signals=opts.handle_signals)
