"""`signalos ws`: the seed's WebSocket tester, for the terminal.

`ws_tester(url, token, inp=…, out=…, err=…)` connects to the daemon's `/ws` (an http(s) url is
mapped to ws(s); a ws(s) url with a path, e.g. `ws://HOST:PORT/ws/agent`, is used as given),
or to `/ws` on the daemon's local control socket (`socket=PATH`), sends `authenticate {token}`
first unless `authenticate=False` (on the socket with `token=None`: `authenticate {}`, and the
daemon knows the user by uid), then at the same time

- prints every frame received to `out`, raw JSON, one per line (a binary frame is reported on
  `err` with its size);
- sends every line of `inp` as one text frame: each line must be a JSON value (normally
  `{"type": …, "data": {…}}`); a line that is not JSON gets a message on `err` naming the line
  number and is skipped; blank lines and lines starting with `#` are skipped.

At the end of `inp` it keeps printing until no frame arrived for `drain_s` (at most
`drain_max_s`), closes with 1000 and returns 0. If the server closes first, the close code and
reason go to `err` and it returns 0 too. Exit codes: 0 as above, 2 bad arguments, 3 the daemon
could not be reached, 130 interrupted (SIGINT or `stop`), 143 SIGTERM.

Example: `printf '%s\\n' '{"type":"subscribe","data":{"since":0}}' | signalos ws` replays the
log as raw frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

from signalos_cli.errors import ExitCode
from signalos_cli.stream.connect import (
    auth_data,
    client_session,
    stream_url,
    unencrypted,
    ws_connect,
)
from signalos_cli.stream.ending import run_until_stopped

__all__ = ["WsTesterOptions", "endpoint", "ws_tester"]


@dataclass(frozen=True)
class WsTesterOptions:
    drain_s: float = 0.5  # after the end of input: stop once no frame came for this long
    drain_max_s: float = 5.0  # … or after this long in any case
    connect_timeout_s: float = 10.0
    heartbeat_s: float = 20.0
    handle_signals: bool = True  # SIGINT → 130, SIGTERM → 143 (main thread only)
    stop: asyncio.Event | None = None  # set it to stop like Ctrl-C (exit 130)


def endpoint(url: str) -> str:
    """A ws(s) url with a path is used as given; anything else goes to its `/ws`."""
    u = URL(url)
    if u.scheme in ("ws", "wss") and u.path not in ("", "/"):
        return str(u)
    return stream_url(url)


def _feed_lines(
    inp: TextIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]
) -> None:
    """Thread body: put each line of `inp` on `queue`, then None at the end.

    A real file descriptor is read with os.read, not through the TextIO: a daemon thread left
    blocked inside a buffered reader would hold its lock at interpreter exit (a fatal error)."""

    def put(item: str | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    try:
        fd = inp.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        fd = -1
    try:
        if fd < 0:
            for line in iter(inp.readline, ""):
                put(line)
        else:
            pending = b""
            while chunk := os.read(fd, 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    put(raw.decode("utf-8", "replace"))
            if pending:
                put(pending.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass
    except RuntimeError:  # the loop is closed: nobody is listening any more
        return
    with contextlib.suppress(RuntimeError):
        put(None)


class _Tester:
    def __init__(
        self,
        url: str,
        token: str | None,
        inp: TextIO,
        out: TextIO,
        err: TextIO,
        authenticate: bool,
        options: WsTesterOptions,
        socket: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.socket = socket
        self.inp = inp
        self.out = out
        self.err = err
        self.authenticate = authenticate
        self.options = options
        self.last_frame = time.monotonic()

    def say(self, line: str) -> None:
        print(f"ws: {line}", file=self.err, flush=True)

    async def run(self) -> int:
        try:
            target = endpoint(self.url)
        except ValueError as exc:
            self.say(f"error: {exc}")
            return ExitCode.USAGE
        if self.authenticate and not self.token and self.socket is None:
            self.say("error: no token to authenticate with (or do not authenticate)")
            return ExitCode.USAGE
        where = target
        if self.socket is not None:  # no TLS on a unix socket, whatever the url says
            target = unencrypted(target)
            where = f"{target} on the control socket {self.socket}"
        async with client_session(self.socket, self.options.connect_timeout_s) as http:
            try:
                ws = await ws_connect(http, target, self.options.heartbeat_s)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                why = (
                    f"websocket upgrade refused (HTTP {exc.status})"
                    if isinstance(exc, aiohttp.WSServerHandshakeError)
                    else str(exc) or type(exc).__name__
                )
                self.say(f"error: cannot connect to {where}: {why}")
                return ExitCode.UNREACHABLE
            async with ws:
                self.say(f"connected to {where}")
                if self.authenticate:
                    auth = {"type": "authenticate", "data": auth_data(self.token)}
                    await ws.send_str(json.dumps(auth))
                return await self._session(ws)

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> int:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(
            target=_feed_lines, args=(self.inp, loop, lines), name="ws-input", daemon=True
        ).start()
        receiver = asyncio.create_task(self._receive(ws))
        sender = asyncio.create_task(self._send(ws, lines))
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done():  # the server closed (reported by _receive)
                return ExitCode.OK
            sender.result()
            await self._drain(receiver)
            if receiver.done():
                return ExitCode.OK
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            await ws.close()
            self.say("closed (end of input)")
            return ExitCode.OK
        finally:
            for task in (receiver, sender):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task

    async def _send(
        self, ws: aiohttp.ClientWebSocketResponse, lines: asyncio.Queue[str | None]
    ) -> None:
        number = 0
        while (line := await lines.get()) is not None:
            number += 1
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                json.loads(text)
            except ValueError as exc:
                self.say(f"input line {number} is not JSON ({exc}); not sent")
                continue
            await ws.send_str(text)

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            msg = await ws.receive()
            self.last_frame = time.monotonic()
            if msg.type is WSMsgType.TEXT:
                text: str = msg.data
                if "\n" in text:
                    text = _one_line(text)
                self.out.write(text + "\n")
                self.out.flush()
            elif msg.type is WSMsgType.BINARY:
                self.say(f"binary frame of {len(msg.data)} bytes (not shown)")
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                reason = msg.extra if msg.type is WSMsgType.CLOSE and msg.extra else ""
                self.say(
                    f"closed by the server: code {ws.close_code}"
                    + (f": {reason}" if reason else "")
                )
                return
            elif msg.type is WSMsgType.ERROR:
                self.say(f"connection error: {ws.exception() or msg.data}")
                return

    async def _drain(self, receiver: asyncio.Task[None]) -> None:
        """After the end of input: wait until frames stop coming for `drain_s`."""
        started = time.monotonic()
        self.last_frame = max(self.last_frame, started)
        while not receiver.done():
            now = time.monotonic()
            quiet = now - self.last_frame
            if quiet >= self.options.drain_s or now - started >= self.options.drain_max_s:
                return
            wait = min(self.options.drain_s - quiet, self.options.drain_max_s - (now - started))
            await asyncio.wait({receiver}, timeout=max(wait, 0.001))


def _one_line(text: str) -> str:
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return text.replace("\n", "\\n")
    return json.dumps(parsed, separators=(",", ":"))


async def ws_tester(
    url: str,
    token: str | None,
    *,
    inp: TextIO,
    out: TextIO,
    err: TextIO,
    authenticate: bool = True,
    options: WsTesterOptions | None = None,
    socket: str | None = None,
) -> int:
    """Talk to the daemon's /ws by hand (see the module docstring); return the exit code.

    `inp`: JSON lines to send; `out`: every frame received, one per line; `err`: states,
    input errors and the close code."""
    opts = options or WsTesterOptions()
    tester = _Tester(url, token, inp, out, err, authenticate, opts, socket)
    return await run_until_stopped(tester.run(), stop=opts.stop, handle_signals=opts.handle_signals)
