"""The daemon as a real process for the tests that need one (this module holds no tests):
`python -m signalosd --port 0`, its port read from the `event=listening url=...` log line,
every wait bounded, every process killed in the fixture's teardown whatever happens.
`run_cli` runs `signalos` as a process, as another uid too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
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

from signalosd.clock import SystemClock
from signalosd.config import Settings
from signalosd.store.open import sync_transaction
from tests.other_uid import other_uid_python

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
    (tests/other_uid.py): a checkout under a 0700 directory is closed to it."""
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
