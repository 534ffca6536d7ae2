"""The desktop agent at work: its connection to the daemon (`/ws/agent`, see docs/agent.md).

`run_agent(url, token, broker, state_dir)` runs until stopped: it connects, authenticates, says
hello, waits for welcome (and takes the daemon's mode and halt generation from it before it
executes anything of the new connection), reports its own state (`agent_state`), sends a full
`sync_snapshot`, then at the same time

- receives commands: acks each at once, executes them one by one in a worker (an emergency stop
  goes ahead of queued commands not yet started, and fences the agent the moment it arrives:
  halted, and entries and resumes from an older halt generation refused) and sends each
  `command_result`; commands not yet started when the connection ends are dropped (the daemon
  sends every unfinished one again on the next connection), emergency stops excepted;
- polls the broker (~0.5 s paper, 1 s MT5): positions the broker closed, changed positions,
  virtual SL/TP and trailing stops (`stops.py`), as `trade_update`s;
- sends `mt5_status_update` every ~5 s.

`session.py` holds the order of frames on one connection, `connection.py` the wire details
(frames, close codes, the writer), `options.py` the timings. The worker and the poll keep
running while the connection is down; their reports wait in a bounded report queue and follow
the snapshot sent after the reconnect. Reconnects back off exponentially with jitter (1 s →
30 s, reset after a stable connection). Close 4401 (bad token) raises `AuthFailed`, 4409 (a
newer session for the account) raises `Replaced`; anything else reconnects. All broker calls
run on one dedicated thread, in order (the MetaTrader5 package is not thread-safe); execution
and reporting share a lock, so the result of an `open_trade` always precedes the
`trade_update` of its position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSCloseCode

from signalos_cli.agent import reports
from signalos_cli.agent.broker import Broker, BrokerError
from signalos_cli.agent.connection import (
    MAX_MESSAGE,
    AgentStopped,
    AuthFailed,
    Lost,
    Replaced,
    agent_url,
)
from signalos_cli.agent.executor import Executor
from signalos_cli.agent.journal import Journal
from signalos_cli.agent.options import Options, backoff
from signalos_cli.agent.queues import CommandQueue, Kind, ReportQueue
from signalos_cli.agent.session import Session
from signalosd.clock import iso
from signalosd.models import CommandType, Mode

__all__ = ["Agent", "AgentStopped", "AuthFailed", "Options", "Replaced", "backoff", "run_agent"]

log = logging.getLogger("signalos.agent")
T = TypeVar("T")

CLOCK_NOTICE = timedelta(seconds=5)


class Agent:
    """The agent's state across connections (journal, queues, clock offset, the broker thread)
    and its jobs: the worker, the poll and status loops, and the reconnect loop."""

    def __init__(self, broker: Broker, journal: Journal, options: Options | None = None) -> None:
        self.broker = broker
        self.journal = journal
        self.options = options or Options()
        self.clock_offset = timedelta(0)  # the daemon's clock minus ours
        self.executor = Executor(broker, journal, now=self.daemon_now)
        self.reporter = reports.Reporter(broker, journal, self.now_iso)
        self.commands = CommandQueue()
        self.report_queue = ReportQueue(self.options.report_queue_limit)
        self.connected = False
        self.lock = asyncio.Lock()  # execution vs reporting
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="broker")
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._last_error = ""
        self._connected_at: float | None = None
        self._reported: tuple[Mode, int] | None = None  # the last agent_state sent
        self.stopping = False

    @property
    def poll_interval(self) -> float:
        if self.options.poll_interval is not None:
            return self.options.poll_interval
        return 0.5 if self.broker.name == "paper" else 1.0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a broker (or journal) call on the broker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def now_iso(self) -> str:
        return iso(self.options.now())

    def daemon_now(self) -> datetime:
        """Our estimate of the daemon's clock: expiry is judged by it, so a desktop clock that
        is a minute off does not refuse (or let through) every entry."""
        return self.options.now() + self.clock_offset

    def track_clock(self, stamp: Any, sent: datetime) -> None:
        """The daemon stamped `welcome` as it sent it, somewhere between our hello (`sent`) and
        now: the midpoint is the best guess of when, so the offset is off by at most half the
        round trip."""
        try:
            theirs = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            received = self.options.now()
            offset = theirs - (sent + (received - sent) / 2)
        except (TypeError, ValueError):
            return
        if abs(offset - self.clock_offset) > CLOCK_NOTICE:
            log.warning("event=clock_offset daemon_minus_agent_s=%.1f", offset.total_seconds())
        self.clock_offset = offset

    # ---- reports --------------------------------------------------------------------------

    def report(self, updates: list[dict[str, Any]]) -> None:
        for update in updates:
            self.report_queue.put(Kind.UPDATE, "trade_update", update)

    def _report_state(self) -> None:
        """Tell the daemon our mode and halt generation when they changed (`agent_state`)."""
        now = (self.journal.mode, self.journal.halt_gen)
        if now == self._reported or not self.connected:
            return
        self._reported = now
        self.report_queue.put(Kind.CONNECTION, "agent_state", self._state())

    def _state(self) -> dict[str, Any]:
        return {
            "mode": self.journal.mode.value,
            "halt_gen": self.journal.halt_gen,
            "clock_offset_s": round(self.clock_offset.total_seconds(), 3),
        }

    # ---- background loops -----------------------------------------------------------------

    async def worker(self) -> None:
        while True:
            command = await self.commands.get()
            command_id = str(command.get("id"))
            try:
                async with self.lock:
                    execution = await self.call(self.executor.execute, command)
                    if execution.sync and not execution.replay and self.connected:
                        updates, snap = await self.call(self.reporter.snapshot)
                        self.report(updates)
                        self.report_queue.put(Kind.CONNECTION, "sync_snapshot", snap)
                    # The state before the result: when the daemon takes the result (and the
                    # command is finished), it already knows the mode the command left us in.
                    self._report_state()
                    self.report_queue.put(Kind.RESULT, "command_result", execution.result)
                    self.commands.done(command_id)  # from now on a redelivery gets the result
                    self.report(await self.call(self.reporter.observe, False, execution.closed))
            except Exception:
                log.exception("event=worker_failed command_id=%s", command_id)
            finally:
                self.commands.done(command_id)

    async def poll_loop(self) -> None:
        while True:
            try:
                async with self.lock:
                    self.report(await self.call(self.reporter.observe, True))
                self._last_error = ""
            except Exception as exc:
                message = exc.message if isinstance(exc, BrokerError) else repr(exc)
                if message != self._last_error:  # one line per new problem, not per poll
                    log.warning("event=poll_failed error=%r", message)
                    self._last_error = message
            await self.options.sleep(self.poll_interval)

    async def status_loop(self) -> None:
        while True:
            await self.options.sleep(self.options.status_interval)
            if not self.connected:
                continue
            try:
                info = await self.call(self.broker.account)
                self.report_queue.put(Kind.CONNECTION, "mt5_status_update", reports.account(info))
            except Exception as exc:
                log.warning("event=status_failed error=%r", str(exc))

    # ---- what a connection brings (the order of its frames: session.py) ------------------

    def on_command(self, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("id"):
            log.warning("event=bad_command data=%r", data)
            return
        command_id = str(data["id"])
        self.report_queue.put(Kind.CONNECTION, "ack", {"messageId": command_id})
        if data.get("type") == CommandType.EMERGENCY_STOP:
            # The fence goes up as the stop arrives, not when its turn comes: an entry or
            # resume the worker has not yet sent to the broker is refused from now on.
            self.journal.fence(data.get("halt_gen"))
            log.warning("event=fenced halt_gen=%s command_id=%s", data.get("halt_gen"), command_id)
            self._report_state()
        queued = self.commands.put(data)
        log.info(
            "event=command_received command_id=%s type=%s attempt=%s queued=%s",
            command_id,
            data.get("type"),
            data.get("attempt"),
            queued,
        )

    def adopt_welcome(self, data: dict[str, Any]) -> None:
        """The daemon's mode and halt generation become ours, before anything of this
        connection executes (the daemon sends `welcome` as the session's first frame)."""
        try:
            mode, halt_gen = Mode(data["mode"]), data["halt_gen"]
        except (KeyError, ValueError):
            log.warning("event=welcome_without_mode")  # an older daemon: keep our own
            return
        if not isinstance(halt_gen, int) or halt_gen < 0:
            log.warning("event=welcome_bad_halt_gen halt_gen=%r", halt_gen)
            return
        before = (self.journal.mode, self.journal.halt_gen)
        if before != (mode, halt_gen):
            log.warning(
                "event=mode_from_daemon mode=%s halt_gen=%d was_mode=%s was_halt_gen=%d",
                mode.value,
                halt_gen,
                before[0].value,
                before[1],
            )
        self.journal.adopt(mode, halt_gen)

    def state_sent(self) -> dict[str, Any]:
        """The `agent_state` the handshake sends at once (later changes: `_report_state`)."""
        self._reported = (self.journal.mode, self.journal.halt_gen)
        return self._state()

    def connected_to(self, url: str, session_id: Any) -> None:
        """The handshake is done: reports flow, and the connection counts for the backoff."""
        self.connected = True
        self._connected_at = self.options.monotonic()
        self.options.on_state(f"connected (session {session_id})")
        log.info("event=connected session=%s url=%s", session_id, url)

    def disconnected(self) -> None:
        """The connection is gone: no more reports on it, nothing for `close` to close."""
        self.connected = False
        self._ws = None

    def end_connection(self) -> None:
        """Drop what only made sense on the connection that ended."""
        self.report_queue.end_connection()
        # Not started yet: the daemon sends each again if it still stands (a stop may
        # have cancelled it meanwhile). Emergency stops stay: safe to run offline.
        dropped = self.commands.drop_unstarted(keep=CommandType.EMERGENCY_STOP)
        if dropped:
            log.info("event=commands_dropped count=%d reason=disconnected", dropped)

    async def session(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        """One connection, from connect to close. Returns normally never; raises on close."""
        async with http.ws_connect(
            url, heartbeat=self.options.heartbeat, max_msg_size=MAX_MESSAGE
        ) as ws:
            self._ws = ws
            await Session(self, ws).run(url, token)

    async def connect_loop(self, url: str, token: str) -> None:
        attempt = 0
        async with aiohttp.ClientSession() as http:
            while True:
                attempt += 1
                self._connected_at = None
                self.options.on_state(f"connecting to {url} (attempt {attempt})")
                why: str | None = None
                try:
                    await self.session(http, url, token)
                except AgentStopped:
                    raise
                except (Lost, BrokerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    if self.stopping:
                        return
                    why = str(exc) or type(exc).__name__
                    if isinstance(exc, BrokerError):  # no snapshot to send: try again later
                        why = f"broker: {exc.message}"
                    if self._uptime() is None:
                        self.options.on_state(f"error: {why} (attempt {attempt})")
                    else:
                        self.options.on_state(f"disconnected: {why}")
                if self.stopping:
                    return
                failed = attempt
                uptime = self._uptime()
                if uptime is not None and uptime >= self.options.stable_after:
                    attempt = 0  # a stable connection: start the backoff afresh
                delay = backoff(max(attempt, 1), self.options)
                if why is not None:
                    log.info(
                        "event=disconnected attempt=%s reason=%r retry_in_s=%.1f",
                        failed,
                        why,
                        delay,
                    )
                self.options.on_state(f"reconnecting in {delay:.1f} s")
                await self.options.sleep(delay)

    def _uptime(self) -> float | None:
        """How long the last connection was up (None: it never got to welcome)."""
        if self._connected_at is None:
            return None
        return self.options.monotonic() - self._connected_at

    async def run(self, url: str, token: str, stop: asyncio.Event) -> None:
        """Connect the broker, then work until `stop` is set or the daemon refuses the agent
        for good (`AuthFailed`, `Replaced`). Shuts the broker down at the end."""
        ws_url = agent_url(url)
        if self.journal.interrupted:
            log.warning("event=interrupted_commands ids=%s", ",".join(self.journal.interrupted))
        try:
            await self.call(self.broker.connect)
            tasks = [
                asyncio.create_task(self.worker()),
                asyncio.create_task(self.poll_loop()),
                asyncio.create_task(self.status_loop()),
            ]
            connection = asyncio.create_task(self.connect_loop(ws_url, token))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if connection.done():
                    connection.result()  # AuthFailed / Replaced
                if await self.close():  # let the session end by itself after the close
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(connection), 2)
            finally:
                for task in (*tasks, connection, stopping):
                    task.cancel()
                await asyncio.gather(*tasks, connection, stopping, return_exceptions=True)
            self.options.on_state("stopped")
        finally:
            await self.finish()

    async def close(self) -> bool:
        """Stop reconnecting; close the connection politely (1000) if there is one."""
        self.stopping = True
        ws = self._ws
        if ws is None or ws.closed:
            return False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=WSCloseCode.OK, message=b"agent stopping"), 5)
        return True

    async def finish(self) -> None:
        """After the broker call in flight (if any), shut the broker down on its thread."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call(self.broker.shutdown), 30)
        self._thread.shutdown(wait=False)


async def run_agent(
    url: str,
    token: str,
    broker: Broker,
    state_dir: Path,
    *,
    options: Options | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the agent with its journal in `state_dir` until `stop` is set (returns) or the
    daemon refuses it for good (raises `AuthFailed` / `Replaced`). Raises `BrokerError` when
    the broker cannot be connected, `ValueError` for a bad url."""
    agent_url(url)  # a bad url fails before anything is opened
    journal = Journal.open(state_dir)
    try:
        await Agent(broker, journal, options).run(url, token, stop or asyncio.Event())
    finally:
        journal.close()
