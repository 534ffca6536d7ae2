"""`signalos tail`: follow the daemon's event log over `/ws`, like `journalctl -f`.

`tail(url, token, …)` connects to `ws(s)://HOST/ws` (an http(s) url is mapped to ws(s); the
token goes in the `authenticate` message, never in the url), subscribes `{since, types}` and
prints every event, one line each, to `out`:

- human: `<timestamp> <seq> <account|-> <type> <k=v summary of data>` (ANSI colour only when
  `color` is true; control characters from event data are always escaped);
- `as_json`: the event message exactly as the daemon sent it, one JSON object per line
  (`id, type, seq, data, timestamp, account, actor`). A `reset` is printed too, as its own
  JSON line with `"type": "reset"`.

Connection states go to `err` as `tail: connecting … (attempt N)`, `tail: connected …`,
`tail: disconnected: …`, `tail: error: …`. A lost connection (server close, network error, no
pong to our heartbeat ping within `heartbeat_s * 1.5`: 30 s by default) is retried with
exponential backoff and jitter (1 s → 30 s; the attempt count starts afresh after a connection
that lasted `stable_after_s`), and the stream resumes after the last seq it consumed, so no
event is missed or printed twice across reconnects and daemon restarts (the daemon's
invariant 5; an event at or below the cursor is never printed).

Where the stream starts (first connection; later ones resume from the cursor). `since` and
`last` exclude each other and override a cursor file (which is still updated):

- `since=S`: the events after seq S, then follow.
- `last=N`: the last N events this token sees that match `types`, as of the head announced in
  `authenticated.last_seq` (fewer if the log holds fewer), then follow. The start is found
  with `GET /api/events` (same visibility and type filter as the stream), scanning back from
  the head in growing windows, so a filter on a rare type stays exact. Pruned history counts
  as absent.
- neither, but `cursor_file` holds a seq: resume after it.
- otherwise: follow from the head at connect time (nothing old), or with `follow=False` the
  whole log.

`follow=False`: print what exists up to the head announced on the first connection, then exit
0 (events past it are not printed). The end is found with an app-level `ping`: the daemon
answers it only after the replay, so the pong means "everything up to the head was sent".

`cursor_file`: after events are printed, `out` is flushed and then the last seq consumed is
written to the file (temp file + rename, every `flush_interval_s` and on exit), so the file
never gets ahead of the output: a crash can repeat the last ~0.1 s of events on the next run,
never skip any. A `reset` moves the cursor to the reset's `last_seq`; a `follow=False` run
moves it to the head it read up to, even when its filter matched nothing there.

`reset` (the log no longer holds the next event, or the cursor is past the head): a warning on
`err`, then the stream continues after `reset.last_seq`.

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
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

__all__ = [
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "TailOptions",
    "api_base",
    "format_event",
    "stream_url",
    "tail",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_TERMINATED = 143

CLOSE_SLOW_CONSUMER = 4008
CLOSE_AUTH_FAILED = 4401
MAX_MESSAGE = 64 * 1024 * 1024  # a reset carries a snapshot of every live trade
PAGE = 1000  # GET /api/events page size (the daemon's maximum)


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
    """Delay before reconnect attempt `attempt` (1, 2, …): exponential, half of it jitter."""
    ceiling = min(options.backoff_max_s, options.backoff_initial_s * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + options.random() * ceiling / 2


# ---- urls -------------------------------------------------------------------------------------


def stream_url(url: str) -> str:
    """http(s)://host:port[/prefix] (or ws(s)://…) → ws(s)://host:port[/prefix]/ws."""
    u = URL(url)
    scheme = {"http": "ws", "https": "wss"}.get(u.scheme, u.scheme)
    if scheme not in ("ws", "wss") or not u.host:
        raise ValueError(f"unsupported url {url!r} (use http://HOST:PORT or https://…)")
    path = u.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return str(u.with_scheme(scheme).with_path(path).with_query(None).with_fragment(None))


def api_base(url: str) -> str:
    """The daemon's http(s) base url (no trailing slash) for the REST calls."""
    u = URL(stream_url(url))
    scheme = "https" if u.scheme == "wss" else "http"
    return str(u.with_scheme(scheme).with_path(u.path[: -len("/ws")] or "/")).rstrip("/")


# ---- output -----------------------------------------------------------------------------------

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


# ---- the engine -------------------------------------------------------------------------------


class _Closed(Exception):
    """The connection ended; reconnect (unless the code says otherwise)."""

    def __init__(self, why: str, code: int | None = None) -> None:
        super().__init__(why)
        self.code = code


class _Fatal(Exception):
    """Stop with this exit code (the message goes to `err`)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _close_text(code: int | None, reason: str) -> str:
    names = {
        1000: "normal closure",
        1001: "the daemon is shutting down",
        1006: "connection lost",
        1009: "message too big",
        1011: "internal error",
        CLOSE_SLOW_CONSUMER: "slow consumer",
        CLOSE_AUTH_FAILED: "authentication failed",
    }
    text = f"closed with code {code}"
    if code in names:
        text += f" ({names[code]})"
    return text + (f": {reason}" if reason else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"websocket upgrade refused (HTTP {exc.status})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def read_cursor(path: Path) -> int | None:
    """The seq stored in a cursor file (None when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Fatal(EXIT_ERROR, f"cannot read the cursor file {path}: {exc.strerror}") from exc
    if not text.isdigit():
        raise _Fatal(EXIT_ERROR, f"the cursor file {path} does not hold a seq: {text[:40]!r}")
    return int(text)


def write_cursor(path: Path, seq: int) -> None:
    """Replace the cursor file atomically (write a temp file beside it, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{seq}\n", encoding="utf-8")
    os.replace(tmp, path)


class _Tail:
    def __init__(
        self,
        url: str,
        token: str,
        *,
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
        self.since_arg = since
        self.last = last
        self.types = list(types)
        self.follow = follow
        self.cursor_file = cursor_file
        self.as_json = as_json
        self.color = color
        self.out = out
        self.err = err
        self.options = options
        self.ws_url = ""
        self.api = ""
        self.cursor: int | None = None  # last seq consumed (printed, or skipped by a reset)
        self.saved: int | None = None  # what the cursor file holds
        self.file_cursor: int | None = None
        self.target: int | None = None  # follow=False: the head at the first connect
        self.ever_connected = False
        self.connected_at: float | None = None
        self.conn_head = 0
        self.ping_stamp = ""

    # ---- reporting ----

    def _say(self, line: str) -> None:
        print(f"tail: {line}", file=self.err, flush=True)

    def _state(self, line: str) -> None:
        if self.options.show_state:
            self._say(line)

    def flush(self) -> None:
        """Flush the output, then record the cursor (never ahead of what was written)."""
        self.out.flush()
        if self.cursor_file is None or self.cursor is None or self.cursor == self.saved:
            return
        seq = self.cursor
        try:
            write_cursor(self.cursor_file, seq)
        except OSError as exc:
            raise _Fatal(
                EXIT_ERROR, f"cannot write the cursor file {self.cursor_file}: {exc.strerror}"
            ) from exc
        self.saved = seq

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.options.flush_interval_s)
            self.flush()

    # ---- run ----

    def _check(self) -> None:
        if self.since_arg is not None and self.last is not None:
            raise _Fatal(EXIT_USAGE, "give either a since seq or a number of last events, not both")
        if self.since_arg is not None and self.since_arg < 0:
            raise _Fatal(EXIT_USAGE, "since must be a seq >= 0")
        if self.last is not None and self.last < 0:
            raise _Fatal(EXIT_USAGE, "the number of last events must be >= 0")
        try:
            self.ws_url = stream_url(self.url)
            self.api = api_base(self.url)
        except ValueError as exc:
            raise _Fatal(EXIT_USAGE, str(exc)) from exc
        if self.cursor_file is not None:
            parent = self.cursor_file.parent
            if not parent.is_dir():
                raise _Fatal(EXIT_ERROR, f"the cursor file's directory {parent} does not exist")
            self.file_cursor = self.saved = read_cursor(self.cursor_file)

    async def run(self) -> int:
        try:
            try:
                self._check()
                timeout = aiohttp.ClientTimeout(
                    total=None,
                    connect=self.options.connect_timeout_s,
                    sock_connect=self.options.connect_timeout_s,
                )
                async with aiohttp.ClientSession(timeout=timeout) as http:
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
        except _Fatal as exc:
            self._say(f"error: {exc}")
            return exc.code
        except BrokenPipeError:
            _quiet_stdout(self.out)
            return EXIT_BROKEN_PIPE

    async def _connect_loop(self, http: aiohttp.ClientSession) -> int:
        attempt = 0
        while True:
            attempt += 1
            self.connected_at = None
            self._state(f"connecting to {self.ws_url} (attempt {attempt})")
            try:
                return await self._connection(http)
            except BrokenPipeError:
                raise  # the output went away, not the daemon
            except _Closed as exc:
                if exc.code == CLOSE_AUTH_FAILED:
                    raise _Fatal(EXIT_AUTH, f"the daemon refused the token ({exc})") from None
                self._state(f"disconnected: {exc}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if not self.ever_connected and not self.follow:
                    raise _Fatal(
                        EXIT_UNREACHABLE,
                        f"cannot reach the daemon at {self.ws_url}: {_describe(exc)}",
                    ) from None
                if self._uptime() is None:
                    self._state(f"error: {_describe(exc)} (attempt {attempt})")
                else:
                    self._state(f"disconnected: {_describe(exc)}")
            uptime = self._uptime()
            if uptime is not None and uptime >= self.options.stable_after_s:
                attempt = 0  # a stable connection: start the backoff afresh
            delay = backoff(max(attempt, 1), self.options)
            where = "" if self.cursor is None else f", resuming after seq {self.cursor}"
            self._state(f"reconnecting in {delay:.1f} s{where}")
            await self.options.sleep(delay)

    def _uptime(self) -> float | None:
        """How long the last connection was up (None: it never got to `authenticated`)."""
        return None if self.connected_at is None else time.monotonic() - self.connected_at

    async def _connection(self, http: aiohttp.ClientSession) -> int:
        async with http.ws_connect(
            self.ws_url,
            heartbeat=self.options.heartbeat_s,
            max_msg_size=MAX_MESSAGE,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
        ) as ws:
            await ws.send_str(json.dumps({"type": "authenticate", "data": {"token": self.token}}))
            hello = await self._authenticated(ws)
            self.connected_at = time.monotonic()
            self.ever_connected = True
            self.conn_head = head = int(hello.get("last_seq", 0))
            since = await self._since(http, head)
            who = f"account {hello.get('account')}, role {hello.get('role')}"
            self._state(f"connected ({who}, head seq {head}); streaming after seq {since}")
            sub: dict[str, Any] = {"since": since}
            if self.types:
                sub["types"] = self.types
            await ws.send_str(json.dumps({"type": "subscribe", "data": sub}))
            if not self.follow:
                self.ping_stamp = f"tail-end-{os.getpid()}-{time.monotonic_ns()}"
                await ws.send_str(
                    json.dumps({"type": "ping", "data": {"timestamp": self.ping_stamp}})
                )
            return await self._read(ws)

    async def _authenticated(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        async with asyncio.timeout(self.options.connect_timeout_s):
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
                        raise _Fatal(EXIT_ERROR, f"the daemon answered: {data.get('message')}")
                    continue
                self._closed(ws, msg)

    def _closed(self, ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage) -> None:
        """Raise _Closed for a close/error message (return for anything else)."""
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            reason = msg.extra if msg.type is WSMsgType.CLOSE and msg.extra else ""
            code = ws.close_code
            raise _Closed(_close_text(code, reason), code)
        if msg.type is WSMsgType.ERROR:
            exc = ws.exception() or msg.data
            if isinstance(exc, aiohttp.ServerTimeoutError):
                raise _Closed(f"no answer to the heartbeat ping ({exc})")
            raise _Closed(f"connection error: {exc}")

    async def _since(self, http: aiohttp.ClientSession, head: int) -> int:
        """The seq to subscribe after: the cursor on a reconnect, else from the arguments."""
        if self.cursor is not None:
            return self.cursor
        if self.since_arg is not None:
            since = self.since_arg
        elif self.last is not None:
            since = await self._last_n_since(http, head, self.last)
        elif self.file_cursor is not None:
            since = self.file_cursor
        elif self.follow:
            since = head
        else:
            since = 0
        if not self.follow:
            self.target = head
        self.cursor = since
        return since

    # ---- -n: find where the last N visible, matching events start ----

    async def _last_n_since(self, http: aiohttp.ClientSession, head: int, n: int) -> int:
        if n == 0:
            return head
        found: list[int] = []  # seqs of matching events in (lo, head], ascending
        lo, window = head, n
        while True:
            new_lo = max(0, lo - window)
            seqs, floor = await self._seqs_between(http, new_lo, lo)
            found = seqs + found
            lo = max(new_lo, floor)
            if len(found) >= n:
                return found[-n] - 1
            if lo == 0 or floor > new_lo:  # the beginning of the (retained) log
                return lo
            window *= 4

    async def _seqs_between(
        self, http: aiohttp.ClientSession, after: int, upto: int
    ) -> tuple[list[int], int]:
        """Seqs of the visible, matching events in (after, upto], and the start actually read
        (raised to the pruned boundary when the log no longer holds `after + 1`)."""
        seqs: list[int] = []
        start = cursor = after
        while cursor < upto:
            params: list[tuple[str, str]] = [("since", str(cursor)), ("limit", str(PAGE))]
            params += [("type", t) for t in self.types]
            async with http.get(
                f"{self.api}/api/events",
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                status = resp.status
                try:
                    body = json.loads(await resp.text())
                except ValueError:
                    body = {}
            if status == 409 and _error_code(body) == "events_reset":
                details = body["error"].get("details") or {}
                pruned = int(details.get("pruned_through") or 0)
                if pruned <= cursor:  # a cursor past the head: nothing older to show
                    return seqs, upto
                start = cursor = min(pruned, upto)
                continue
            if status in (401, 403):
                raise _Fatal(EXIT_AUTH, f"the daemon refused the token: {_error_message(body)}")
            if status == 400:
                raise _Fatal(EXIT_USAGE, f"the daemon refused the filter: {_error_message(body)}")
            if status >= 500:
                raise _Closed(f"GET /api/events answered HTTP {status}")
            if status != 200:
                raise _Fatal(EXIT_ERROR, f"GET /api/events: HTTP {status}: {_error_message(body)}")
            events = body.get("events") or []
            seqs.extend(e["seq"] for e in events if e["seq"] <= upto)
            nxt = int(body.get("last_seq", cursor))
            if nxt <= cursor:
                break
            cursor = nxt
        return seqs, start

    # ---- the stream ----

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> int:
        out, as_json, color = self.out, self.as_json, self.color
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                self._closed(ws, msg)
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
                    out.write((text if "\n" not in text else json.dumps(parsed)) + "\n")
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
                    raise _Fatal(EXIT_USAGE, f"the daemon refused the subscription: {message}")
                self._say(f"warning: the daemon sent an error: {code}: {message}")

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
        self._say(
            f"warning: reset: {why}; events may be missing: continuing after seq {last} "
            "(the reset's snapshot holds the current state)"
        )
        if self.as_json:
            self.out.write((text if "\n" not in text else json.dumps(parsed)) + "\n")
        self.cursor = last

    def _done(self) -> int:
        """follow=False: everything up to the target was printed."""
        assert self.target is not None and self.cursor is not None
        self.cursor = max(self.cursor, min(self.target, self.conn_head))
        return EXIT_OK


def _loads(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _error_code(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def _error_message(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", err))
    return str(body)[:200]


def _quiet_stdout(out: TextIO) -> None:
    """After a broken pipe, keep the interpreter's final flush of stdout from failing again."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


# ---- signals ----------------------------------------------------------------------------------


async def run_until_stopped(
    work: Coroutine[Any, Any, int],
    *,
    stop: asyncio.Event | None,
    handle_signals: bool,
    on_stopped: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run `work` to its exit code; SIGINT (or `stop`) ends it with 130, SIGTERM with 143.

    `work` is cancelled on a stop, so its `finally` blocks run (the tail flushes its cursor)."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    code = EXIT_INTERRUPTED
    installed: list[signal.Signals] = []

    def on_signal(exit_code: int) -> None:
        nonlocal code
        code = exit_code
        stopped.set()

    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig, exit_code in (
            (signal.SIGINT, EXIT_INTERRUPTED),
            (signal.SIGTERM, EXIT_TERMINATED),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, exit_code)
                installed.append(sig)
    task = asyncio.ensure_future(work)
    waiters = [asyncio.ensure_future(stopped.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            result = await task
            return result  # it finished by itself while being cancelled
        if on_stopped is not None:
            await on_stopped()
        return code
    finally:
        for w in waiters:
            w.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in installed:
            loop.remove_signal_handler(sig)


# ---- entry point ------------------------------------------------------------------------------


async def tail(
    url: str,
    token: str,
    *,
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
    """
    opts = options or TailOptions()
    engine = _Tail(
        url,
        token,
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
