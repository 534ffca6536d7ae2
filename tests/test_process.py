"""The daemon as an operator runs it: a real process, real sockets, real signals.

Every test starts `python -m signalosd --port 0` and reads the port from the
`event=listening url=http://127.0.0.1:PORT` log line. Every wait is bounded, and every process is
killed in the fixture's teardown whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from signalosd.clock import SystemClock
from signalosd.config import Settings
from signalosd.store.open import sync_transaction
from tests.uid_support import other_uid_python

START_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 10.0
_LISTENING = re.compile(r"event=listening url=(https?://127\.0\.0\.1:(\d+))")


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without stray SIGNALOS_* variables, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env | settings


def run_cli(
    cwd: Path,
    *args: str,
    uid: int | None = None,
    gid: int | None = None,
    stdin: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`signalos ARGS` as a process in `cwd` (its config files there too, not the user's), as
    the test's user or, through setpriv, as uid:gid with no supplementary groups. The other
    uid runs a copy of Python and of the project that it can read wherever the checkout is
    (tests/uid_support.py): a checkout under a 0700 directory is closed to it."""
    command = [sys.executable, "-m", "signalos_cli", *args]
    python_env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    if uid is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to run the CLI as another uid")
        as_other = [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        copy = other_uid_python(as_other)
        command = [*as_other, str(copy.python), "-m", "signalos_cli", *args]
        python_env = copy.env
    return subprocess.run(
        command,
        env=clean_env(XDG_CONFIG_HOME=str(cwd / "xdg"), **env) | python_env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


class ProcessOutput:
    """A subprocess's output (stderr merged into stdout), collected line by line by a thread so
    the pipe never fills, and waited on with a deadline."""

    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.name = name  # for failure messages
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = START_TIMEOUT_S
    ) -> re.Match[str]:
        """The first output line matching `pattern`; fails if the output ends first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self.lines)
                if not self._reader.is_alive():
                    pytest.fail(
                        f"{self.name} exited before logging {regex.pattern!r}:\n" + self.text
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {regex.pattern!r} within {timeout}s:\n" + self.text)
                self._changed.wait(min(left, 0.2))

    def finish(self, timeout: float = 5) -> None:
        """Wait for the last lines (the pipe closes once every process holding it is gone)."""
        self._reader.join(timeout)

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


class Daemon:
    """One `signalosd` subprocess whose output (stdout and stderr merged) is collected by a
    thread, so the pipe never fills and a test can wait for a line with a deadline."""

    def __init__(
        self, state_dir: Path, *args: str, env: dict[str, str] | None = None, port: int = 0
    ) -> None:
        self.state_dir = state_dir
        self.cmd = [
            sys.executable,
            "-m",
            "signalosd",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            *args,
        ]
        self.env = clean_env(**(env or {}))
        self.proc: subprocess.Popen[str] | None = None
        self._out: ProcessOutput | None = None
        self.url = ""
        self.port = 0

    # ---- process ------------------------------------------------------------------------

    def start(self) -> Daemon:
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )
        self._out = ProcessOutput(self.proc, "signalosd")
        return self

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = START_TIMEOUT_S
    ) -> re.Match[str]:
        """The first output line matching `pattern`; fails if the process exits first."""
        assert self._out is not None, "start() first"
        return self._out.wait_for_line(pattern, timeout)

    def wait_listening(self) -> Daemon:
        m = self.wait_for_line(_LISTENING)
        self.url, self.port = m.group(1), int(m.group(2))
        return self

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"signalosd did not exit within {timeout}s:\n" + self.output)
        if self._out is not None:
            self._out.finish()
        return code

    async def await_exit(self, within: float = EXIT_TIMEOUT_S) -> int:
        return await asyncio.to_thread(self.wait_exit, within)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """Teardown: SIGKILL if still running (by this process's own pid), then reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        finally:
            if self._out is not None:
                self._out.finish()

    @property
    def output(self) -> str:
        return "" if self._out is None else self._out.text

    # ---- state dir ----------------------------------------------------------------------

    @property
    def admin_token_path(self) -> Path:
        return self.state_dir / "admin.token"

    @property
    def admin(self) -> str:
        return self.admin_token_path.read_text().strip()

    @property
    def db_path(self) -> Path:
        return self.state_dir / "signalos.db"


@contextmanager
def daemon_pool() -> Iterator[Callable[..., Daemon]]:
    """Start daemons with `start(state_dir, *args, env=…)`; all are killed on leaving."""
    started: list[Daemon] = []

    def start(
        state_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        port: int = 0,
        wait: bool = True,
    ) -> Daemon:
        d = Daemon(state_dir, *args, env=env, port=port)
        started.append(d)
        d.start()
        return d.wait_listening() if wait else d

    try:
        yield start
    finally:
        for d in started:
            d.kill()


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    with daemon_pool() as start:
        yield start


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    timeout = kwargs.pop("timeout", aiohttp.ClientTimeout(total=10))
    async with session.request(method, url, headers=headers, timeout=timeout, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


class PendingRequest:
    """A GET on a raw connection, sent with `Expect: 100-continue`. The daemon (aiohttp) writes
    `100 Continue` once it has routed the request to its handler, so `send` returns when the
    request is in the daemon's hands: from outside the process, the proof that it is pending."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def send(cls, d: Daemon, target: str, token: str) -> PendingRequest:
        reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\n"
            f"Authorization: Bearer {token}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        return cls(reader, writer)

    async def reply(self, within: float) -> tuple[int, Any]:
        """The final answer: status and JSON body (the daemon closes the connection after it)."""
        try:
            raw = await asyncio.wait_for(self._reader.read(), within)
        finally:
            self._writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), json.loads(body)


async def events(session: aiohttp.ClientSession, d: Daemon, since: int = 0) -> list[dict]:
    status, body = await call(
        session, "GET", f"{d.url}/api/events", d.admin, params={"since": since, "limit": 1000}
    )
    assert status == 200, body
    seqs = [e["seq"] for e in body["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    return list(body["events"])


async def open_ws(
    session: aiohttp.ClientSession, d: Daemon, token: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict]:
    ws = await session.ws_connect(f"{d.url}/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5))
    await ws.send_json({"type": "authenticate", "data": {"token": token}})
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "authenticated", msg
    return ws, msg["data"]


def insert_open_trade(db_path: Path, account_id: int = 1, ticket: int = 5001) -> int:
    """A trade in the mirror as the agent would have reported it (written by another process
    while the daemon runs, exactly as the store allows)."""
    fields = {
        "ticket": ticket,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 0.1,
        "open_price": 1.1,
        "current_price": 1.101,
        "status": "open",
        "opened_at": "2026-01-05T09:00:00.000Z",
    }
    with sync_transaction(Settings(state_dir=db_path.parent), SystemClock()) as tx:
        return tx.insert_trade(account_id, fields)


# ---- first start -----------------------------------------------------------------------------


async def test_first_start_writes_a_private_admin_token_and_never_logs_it(
    tmp_path: Path, daemons: Any
) -> None:
    state = tmp_path / "state"  # does not exist yet: the daemon creates it
    d = daemons(state)
    path = d.admin_token_path
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The database holds token hashes and the trade history: private too.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("signalos.db", "signalos.db-wal"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    token = d.admin
    assert token.startswith("sos_") and len(token) > 30
    assert f"admin_token_file={path}" in d.output

    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{d.url}/api/trading/state", token)
        assert status == 200 and body["mode"] == "running"
        status, body = await call(s, "GET", f"{d.url}/api/trading/state")
        assert status == 401 and body["error"]["code"] == "unauthorized"

    d.signal(signal.SIGTERM)
    assert await d.await_exit() == 0
    assert token not in d.output
    assert "Traceback" not in d.output

    # A second start keeps the token: no new bootstrap, same file, same secret.
    again = daemons(state)
    assert again.admin == token
    assert "event=bootstrap" not in again.output
    again.signal(signal.SIGTERM)
    assert await again.await_exit() == 0
    assert token not in again.output


# ---- durability ------------------------------------------------------------------------------


async def test_kill_9_right_after_the_reply_loses_nothing(tmp_path: Path, daemons: Any) -> None:
    state = tmp_path / "state"
    d = daemons(state)
    admin = d.admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(
            s, "POST", f"{d.url}/api/trading/pause", admin, json={"reason": "kill -9 test"}
        )
        assert status == 202 and body["mode"] == "paused", body
        pause_command = body["command"]["id"]

        trade_id = insert_open_trade(d.db_path)
        status, body = await call(s, "POST", f"{d.url}/api/trades/{trade_id}/close", admin)
        assert status == 202, body
        close_command = body["command"]["id"]
        assert body["command"]["status"] == "queued"
        d.signal(signal.SIGKILL)  # right after the reply: nothing may be lost
    assert await d.await_exit() == -signal.SIGKILL

    d2 = daemons(state)
    assert d2.admin == admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{d2.url}/api/trading/state", admin)
        assert status == 200 and body["mode"] == "paused" and body["reason"] == "kill -9 test"

        for command_id, type_ in ((pause_command, "pause"), (close_command, "close_trade")):
            status, body = await call(s, "GET", f"{d2.url}/api/commands/{command_id}", admin)
            assert status == 200, body
            assert body["command"]["status"] == "queued"
            assert body["command"]["type"] == type_

        status, body = await call(s, "GET", f"{d2.url}/api/trades/{trade_id}", admin)
        assert status == 200 and body["status"] == "closing"

        log = await events(s, d2)
    kinds = [(e["type"], e["data"].get("command_id")) for e in log]
    assert ("trading_paused", None) in kinds
    assert ("command_queued", pause_command) in kinds
    assert ("command_queued", close_command) in kinds
    assert kinds.index(("trading_paused", None)) < kinds.index(("command_queued", close_command))
    closing = [e for e in log if e["type"] == "trade_update" and e["data"].get("id") == trade_id]
    assert closing and closing[-1]["data"]["status"] == "closing"


# ---- SIGTERM ---------------------------------------------------------------------------------


async def test_sigterm_closes_websockets_with_1001_and_exits_0(
    tmp_path: Path, daemons: Any
) -> None:
    d = daemons(tmp_path / "state")  # default shutdown_timeout_s (10 s)
    async with aiohttp.ClientSession() as s:
        ws, hello = await open_ws(s, d, d.admin)
        assert hello["role"] == "admin"
        await ws.send_json({"type": "subscribe", "data": {}})
        await ws.send_json({"type": "ping", "data": {"timestamp": 1}})
        assert (await ws.receive_json(timeout=5))["type"] == "pong"

        started = time.monotonic()
        d.signal(signal.SIGTERM)
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.CLOSE, msg
        assert msg.data == WSCloseCode.GOING_AWAY
        assert ws.close_code == WSCloseCode.GOING_AWAY
        assert await d.await_exit() == 0
        # An open WebSocket must not hold the exit for the HTTP shutdown timeout.
        assert time.monotonic() - started < 5, d.output
        await ws.close()

    out = d.output
    phases = [
        "event=shutdown_requested signal=SIGTERM",
        "event=shutdown phase=stop_accepting",
        "event=closing_websockets count=1",
        "event=database_closed",
        "event=shutdown phase=done",
    ]
    positions = [out.find(p) for p in phases]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    assert "Traceback" not in out


async def test_sigterm_answers_an_inflight_long_poll_and_does_not_wait_for_it(
    tmp_path: Path, daemons: Any
) -> None:
    # On shutdown a pending `?wait=` long-poll is answered at once with the command as it
    # stands, so neither the client (a clean 200, not a dropped connection) nor the exit waits
    # for the 30 s wait or for the shutdown timeout (5 s here; aiohttp would otherwise hold a
    # busy request for up to twice that before cutting it off).
    d = daemons(tmp_path / "state", env={"SIGNALOS_SHUTDOWN_TIMEOUT_S": "5"})
    admin = d.admin
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", admin)
        assert status == 202, body
        command_id = body["command"]["id"]

    poll = await PendingRequest.send(d, f"/api/commands/{command_id}?wait=30", admin)
    started = time.monotonic()
    d.signal(signal.SIGTERM)
    status, body = await poll.reply(within=10)
    assert status == 200, body
    assert body["command"]["id"] == command_id and body["command"]["status"] == "queued"
    assert await d.await_exit(within=15) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 3, (elapsed, d.output)

    out = d.output
    assert "event=shutdown phase=done" in out
    answered = re.search(rf"method=GET path=/api/commands/{command_id} status=200", out)
    assert answered, out
    # It was still waiting when the signal came: answered after the shutdown began.
    assert 0 <= out.find("event=shutdown_requested") < answered.start(), out
    assert "Traceback" not in out


# ---- start-up failures -----------------------------------------------------------------------


async def test_a_second_daemon_on_the_same_port_exits_3(tmp_path: Path, daemons: Any) -> None:
    state = tmp_path / "state"
    first = daemons(state)
    second = daemons(tmp_path / "other", port=first.port, wait=False)
    assert await second.await_exit() == 3
    out = second.output
    assert "event=listen_failed" in out and f"port={first.port}" in out, out
    assert "in use" in out.lower() and "another signalosd" in out, out
    assert "Traceback" not in out
    assert "event=listening" not in out

    # The failed start left the running daemon and its database alone.
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{first.url}/api/trading/state", first.admin)
        assert status == 200, body
    first.signal(signal.SIGTERM)
    assert await first.await_exit() == 0


async def test_a_second_daemon_on_the_same_state_dir_refuses_to_start(
    tmp_path: Path, daemons: Any
) -> None:
    """Two daemons on one database would both deliver the outbox to agents."""
    state = tmp_path / "state"
    first = daemons(state)
    second = daemons(state, wait=False)
    assert await second.await_exit() == 1
    assert "another signalosd process is using" in second.output, second.output
    assert "Traceback" not in second.output
    async with aiohttp.ClientSession() as s:
        status, _ = await call(s, "GET", f"{first.url}/readyz")
        assert status == 200
    first.signal(signal.SIGTERM)
    assert await first.await_exit() == 0
    third = daemons(state)  # the lock went with the process
    third.signal(signal.SIGTERM)
    assert await third.await_exit() == 0


async def test_a_state_dir_that_cannot_be_created_fails_clearly(
    tmp_path: Path, daemons: Any
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    state = blocker / "state"
    d = daemons(state, wait=False)
    code = await d.await_exit()
    assert code not in (0, None)
    out = d.output
    assert "Traceback" not in out
    assert "event=startup_failed" in out and str(state) in out, out
    assert "--state-dir" in out
    assert "event=listening" not in out
