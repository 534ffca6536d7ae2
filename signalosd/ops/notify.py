"""The systemd notify protocol, spoken directly (no libsystemd): READY, STATUS, WATCHDOG, STOPPING.

Each message is one datagram of `KEY=value` lines sent to `$NOTIFY_SOCKET`, a filesystem path or
an abstract socket (`@name`). Without `$NOTIFY_SOCKET` (not started by systemd, or a unit that is
not `Type=notify`) every call is a no-op, so the daemon runs the same from a shell.

`StatusReporter` keeps the one-line `STATUS=` that `systemctl status signalosd` shows: where the
daemon listens, each account's trading mode and whether its agent is connected. It is a bus
listener, so the line changes as soon as a pause, resume, emergency stop or agent (dis)connection
is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

from signalosd.models import EventType, Mode
from signalosd.store import EventRecord

log = logging.getLogger("signalosd")

SEND_TIMEOUT_S = 1.0
# Events after which the STATUS= line is rebuilt, and the mode each one leaves the account in.
MODE_EVENTS: dict[str, Mode] = {
    EventType.TRADING_PAUSED: Mode.PAUSED,
    EventType.TRADING_RESUMED: Mode.RUNNING,
    EventType.EMERGENCY_STOP: Mode.HALTED,
}
AGENT_EVENTS: frozenset[str] = frozenset({EventType.AGENT_CONNECTED, EventType.AGENT_DISCONNECTED})
STATUS_MAX_ACCOUNTS = 5


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace (Linux)
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends notify datagrams to `$NOTIFY_SOCKET`; does nothing when it is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _address(raw) if raw else None
        if raw and self._address is None:
            log.warning("event=notify_disabled reason=unsupported_address notify_socket=%s", raw)
        self._sock: socket.socket | None = None
        self._failed = False
        self._watchdog_s = self._watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_s(self) -> float | None:
        """The watchdog timeout in seconds, when systemd expects pings from this process."""
        return self._watchdog_s if self.enabled else None

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if not usec:
            return None
        try:
            interval = int(usec)
            if pid and int(pid) != os.getpid():
                return None  # the watchdog is meant for another process (e.g. our parent)
        except ValueError:
            log.warning("event=watchdog_disabled reason=bad_env watchdog_usec=%s", usec)
            return None
        return interval / 1_000_000 if interval > 0 else None

    def send(self, *lines: str) -> bool:
        """Send one datagram of `KEY=value` lines; False when it could not be sent."""
        if self._address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Blocking, but bounded: a full receive queue must not freeze the event loop.
                self._sock.settimeout(SEND_TIMEOUT_S)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._failed:  # once: a vanished socket would otherwise log every ping
                log.warning("event=notify_failed message=%r error=%r", lines[0][:40], exc)
            self._failed = True
            return False
        if self._failed:
            log.info("event=notify_recovered")
            self._failed = False
        return True

    def ready(self, status: str) -> None:
        if self.send("READY=1", f"STATUS={status}"):
            log.info("event=notify_ready status=%r", status)

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        if self.send("STOPPING=1", f"STATUS={status}"):
            log.info("event=notify_stopping")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    async def watchdog_loop(self) -> None:
        """Ping at half the watchdog interval from the event loop: a blocked loop stops the
        pings, and systemd kills and restarts the service (`WatchdogSec=`)."""
        interval = self.watchdog_s
        if interval is None:
            return
        log.info("event=watchdog_enabled timeout_s=%g ping_every_s=%g", interval, interval / 2)
        while True:
            self.watchdog()
            await asyncio.sleep(interval / 2)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


class StatusReporter:
    """Builds the `STATUS=` line and sends it again whenever a mode or an agent changes."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        # Whether an account's agent is connected: the app that owns the agent hub sets it.
        self.agent_connected: Callable[[int], bool] = lambda account_id: False
        self._modes: dict[int, tuple[str, str]] = {}  # account id -> (name, mode)
        self.listening = "starting"
        self._live = False  # STATUS= updates only after READY=1 carried the first one

    def load(self, accounts: list[tuple[int, str, str]]) -> None:
        """The modes read at startup. Events seen meanwhile are newer and win."""
        for account_id, name, mode in accounts:
            self._modes.setdefault(account_id, (name, mode))

    def on_event(self, event: EventRecord) -> None:
        """Bus listener (called synchronously on publish; never awaits)."""
        if event.account_id is None:
            return
        mode = MODE_EVENTS.get(event.type)
        if mode is not None:
            self._modes[event.account_id] = (event.account or str(event.account_id), mode)
        elif event.type not in AGENT_EVENTS:
            return
        if self._live:
            self._notifier.status(self.text())

    def start(self) -> None:
        self._live = True

    def text(self) -> str:
        parts = [f"listening on {self.listening}"]
        accounts = sorted(self._modes.items())
        if len(accounts) == 1:
            account_id, (name, mode) = accounts[0]
            agent = "connected" if self.agent_connected(account_id) else "disconnected"
            parts += [f"{name}: {mode}", f"agent: {agent}"]
        else:
            for account_id, (name, mode) in accounts[:STATUS_MAX_ACCOUNTS]:
                agent = "agent connected" if self.agent_connected(account_id) else "no agent"
                parts.append(f"{name}: {mode}, {agent}")
            if len(accounts) > STATUS_MAX_ACCOUNTS:
                connected = sum(1 for a in accounts if self.agent_connected(a[0]))
                parts.append(
                    f"{len(accounts)} accounts, {connected} agents connected "
                    f"({len(accounts) - STATUS_MAX_ACCOUNTS} not shown)"
                )
        return "; ".join(parts)
