"""Running under systemd: the notify protocol against a real datagram socket, the unit files
checked by systemd-analyze, and the state/config directories systemd hands over.

systemd is not PID 1 where these tests run, so the units are verified and scored, not started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalosd.config import load_settings
from signalosd.ops.notify import Notifier, StatusReporter
from signalosd.store import EventRecord
from tests.daemon_process import Daemon

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSUSERS = shutil.which("systemd-sysusers")
MAX_EXPOSURE = 2.0
START_TIMEOUT_S = 15.0


# ---- a notify socket --------------------------------------------------------------------------


class NotifySocket:
    """A bound AF_UNIX datagram socket collecting what the daemon sends, with timestamps."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next datagram as a dict (None when nothing came within `timeout`)."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, timeout: float, daemon: Daemon | None = None) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(min(left, 0.5))
            if fields is not None and key in fields:
                return fields
        output = daemon.output if daemon is not None else ""
        pytest.fail(f"no {key} on the notify socket within {timeout}s:\n{output}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        short_dir = tempfile.mkdtemp(prefix="sn")
        path = Path(short_dir) / "n.sock"
    ns = NotifySocket(str(path))
    try:
        yield ns
    finally:
        ns.close()
        if short_dir is not None:
            shutil.rmtree(short_dir, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    try:
        yield started
    finally:
        for d in started:
            d.kill()


def http(method: str, url: str, token: str | None = None, body: object = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.read().decode()


# ---- the daemon speaks the notify protocol ---------------------------------------------------


def test_ready_status_watchdog_stopping_over_a_real_notify_socket(
    tmp_path: Path, notify_socket: NotifySocket, daemon: list[Daemon]
) -> None:
    d = Daemon(
        tmp_path / "state",
        env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"},
    )
    daemon.append(d)
    d.start()

    ready = notify_socket.wait_for("READY", START_TIMEOUT_S, d)
    assert ready["READY"] == "1"
    # READY=1 means bound and the database open: the port answers /readyz at once.
    m = d.wait_for_line(r"event=listening url=(http://127\.0\.0\.1:(\d+))", timeout=2)
    url, port = m.group(1), m.group(2)
    status, body = http("GET", url + "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready"}
    before_ready = [f for _, f in notify_socket.messages[:-1]]
    assert all(set(f) == {"WATCHDOG"} for f in before_ready), before_ready
    assert (
        ready["STATUS"] == f"listening on 127.0.0.1:{port}; default: running; agent: disconnected"
    )

    # Watchdog pings every WATCHDOG_USEC/2 = 0.5 s: at least two within 2 s.
    window_start = time.monotonic()
    while time.monotonic() - window_start < 2.0:
        notify_socket.receive(2.0 - (time.monotonic() - window_start))
    pings = [t for t, f in notify_socket.messages if "WATCHDOG" in f and t >= window_start]
    assert len(pings) >= 2, notify_socket.messages

    # A mode change updates STATUS= right away.
    status, _ = http("POST", url + "/api/trading/pause", d.admin, {"reason": "test"})
    assert status == 202
    deadline = time.monotonic() + 5
    while True:
        fields = notify_socket.wait_for("STATUS", max(deadline - time.monotonic(), 0.01), d)
        if "default: paused" in fields["STATUS"]:
            break

    d.signal(signal.SIGTERM)
    stopping = notify_socket.wait_for("STOPPING", 10, d)
    assert stopping["STOPPING"] == "1"
    assert d.wait_exit() == 0
    assert "event=notify_ready" in d.output and "event=watchdog_enabled" in d.output


def test_without_notify_socket_nothing_is_sent_and_the_daemon_runs(
    tmp_path: Path, daemon: list[Daemon]
) -> None:
    d = Daemon(tmp_path / "state", env={"WATCHDOG_USEC": "1000000"})
    daemon.append(d)
    d.start().wait_listening()
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    assert "event=notify_" not in d.output and "event=watchdog_" not in d.output


def test_notifier_abstract_namespace_and_watchdog_pid() -> None:
    name = f"signalos-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.watchdog_s == 4.0
        n.status("hello")
        assert receiver.recv(1024) == b"STATUS=hello"
        n.close()
    finally:
        receiver.close()
    mine = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_s == 0.001
    assert Notifier(mine | {"WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "1000000"}).watchdog_s is None  # no socket: no watchdog
    off = Notifier({})
    assert not off.enabled and off.send("READY=1") is False


def test_notifier_survives_a_vanished_socket(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.send("WATCHDOG=1") is False
    assert n.send("WATCHDOG=1") is False
    n.close()


def test_status_line_follows_modes_and_agents() -> None:
    sent: list[str] = []

    class Recorder(Notifier):
        def status(self, status: str) -> None:
            sent.append(status)

    connected: set[int] = set()
    r = StatusReporter(Recorder({}))
    r.agent_connected = lambda account_id: account_id in connected
    r.listening = "127.0.0.1:8787"

    def event(type_: str, account_id: int = 1, account: str = "default") -> EventRecord:
        return EventRecord(account_id, account_id, account, type_, "{}", "ts", "{}")

    r.on_event(event("trading_paused"))  # before READY: newer than the snapshot, not sent
    r.load([(1, "default", "running")])
    assert sent == []
    r.start()
    assert r.text() == "listening on 127.0.0.1:8787; default: paused; agent: disconnected"
    connected.add(1)
    r.on_event(event("agent_connected"))
    r.on_event(event("signal_received"))  # not a status change
    r.on_event(event("emergency_stop"))
    assert sent == [
        "listening on 127.0.0.1:8787; default: paused; agent: connected",
        "listening on 127.0.0.1:8787; default: halted; agent: connected",
    ]
    r.on_event(event("trading_resumed", 2, "desk2"))
    assert sent[-1] == (
        "listening on 127.0.0.1:8787; default: halted, agent connected; desk2: running, no agent"
    )


# ---- state and config directories from systemd ------------------------------------------------


def test_state_directory_is_the_default_state_dir_below_every_explicit_setting(
    tmp_path: Path,
) -> None:
    env = {"STATE_DIRECTORY": "/var/lib/signalos:/var/lib/other"}
    assert load_settings(env=env).state_dir == Path("/var/lib/signalos")
    assert load_settings(env=env | {"SIGNALOS_STATE_DIR": "/srv/a"}).state_dir == Path("/srv/a")
    assert load_settings(env=env, flags={"state_dir": "/srv/b"}).state_dir == Path("/srv/b")
    conf = tmp_path / "s.toml"
    conf.write_text('state_dir = "/srv/c"\n')
    assert load_settings(conf, env=env).state_dir == Path("/srv/c")


def test_configuration_directory_supplies_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "signalosd.toml").write_text("port = 9123\n")
    env = {"CONFIGURATION_DIRECTORY": str(tmp_path)}
    assert load_settings(env=env).port == 9123
    other = tmp_path / "other.toml"
    other.write_text("port = 9124\n")
    assert load_settings(env=env | {"SIGNALOS_CONFIG": str(other)}).port == 9124
    assert load_settings(other, env=env).port == 9124
    # No signalosd.toml in the directory: not an error (the file is optional).
    empty = {"CONFIGURATION_DIRECTORY": str(tmp_path / "empty")}
    assert load_settings(env=empty).port == load_settings(env={}).port


def test_check_config_under_systemd_directories(tmp_path: Path) -> None:
    (tmp_path / "signalosd.toml").write_text("port = 9125\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    env |= {"CONFIGURATION_DIRECTORY": str(tmp_path), "STATE_DIRECTORY": str(tmp_path / "st")}
    out = subprocess.run(
        [sys.executable, "-m", "signalosd", "--check-config"],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    settings = json.loads(out.stdout)
    assert settings["port"] == 9125 and settings["state_dir"] == str(tmp_path / "st")


# ---- unit files -------------------------------------------------------------------------------

needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine"
)


def venv_binary(name: str) -> str:
    """The installed console script: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"console script {name} is not installed")
    return found


def unit_copy(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this venv: `systemd-analyze verify` checks that the
    binary exists, and /opt/signalos/venv does not exist on a development machine."""
    text = (UNITS / name).read_text()
    assert "ExecStart=/opt/signalos/venv/bin/" in text
    text = re.sub(
        r"^ExecStart=/opt/signalos/venv/bin/(\S+)",
        lambda m: "ExecStart=" + venv_binary(m.group(1)),
        text,
        flags=re.MULTILINE,
    )
    path = tmp_path / name
    path.write_text(text)
    return path


UNIT_NAMES = ["signalosd.service", "signalos-agent.service"]


@needs_analyze
@pytest.mark.parametrize("name", UNIT_NAMES)
def test_unit_verifies_clean(tmp_path: Path, name: str) -> None:
    # User=signalos need not exist for verify (systemd 252 does not resolve users offline), so
    # the unit is verified exactly as shipped apart from ExecStart.
    unit = unit_copy(tmp_path, name)
    out = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if name in line or str(tmp_path) in line
    ]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


@needs_analyze
@pytest.mark.parametrize("name", UNIT_NAMES)
def test_unit_exposure_is_low(tmp_path: Path, name: str) -> None:
    unit = unit_copy(tmp_path, name)
    out = subprocess.run(
        [str(SYSTEMD_ANALYZE), "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out.stdout)
    assert m is not None, out.stdout + out.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, out.stdout


def unit_settings(name: str) -> dict[str, str]:
    """A unit file's `Key=value` lines (the last one wins for a repeated key)."""
    text = (UNITS / name).read_text()
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1].isalpha()
    )


def test_unit_declares_notify_watchdog_and_directories() -> None:
    settings = unit_settings("signalosd.service")
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] == "30" and settings["Restart"] == "on-failure"
    assert settings["StateDirectory"] == "signalos" == settings["ConfigurationDirectory"]
    assert settings["User"] == "signalos" == settings["Group"]
    assert settings["ExecStart"] == "/opt/signalos/venv/bin/signalosd"
    # DESIGN §7: both would break a Python daemon (cffi callbacks, prometheus /proc/stat).
    assert "MemoryDenyWriteExecute" not in settings and "ProcSubset" not in settings


def test_unit_raises_the_open_files_limit_above_a_flood_of_connections() -> None:
    # systemd's default soft limit, 1024, let 1,100 idle sockets fail an emergency stop.
    assert int(unit_settings("signalosd.service")["LimitNOFILE"]) >= 65536


@pytest.mark.parametrize("name", ["signalosd.service", "signalos-agent.service"])
def test_start_limit_stops_a_crash_loop_but_not_a_few_restarts(name: str) -> None:
    """systemd counts every start, `systemctl restart` included: the burst must leave room for
    an operator's restarts, and a unit failing at once must still hit the limit (its restarts,
    RestartSec apart, fit in the interval several times over)."""
    settings = unit_settings(name)
    burst, interval = int(settings["StartLimitBurst"]), int(settings["StartLimitIntervalSec"])
    assert burst >= 10
    assert burst * int(settings["RestartSec"]) * 2 <= interval


@pytest.mark.skipif(SYSUSERS is None, reason="systemd-sysusers is not installed")
def test_sysusers_file_creates_the_service_user(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            str(SYSUSERS),
            "--dry-run",
            f"--root={tmp_path}",
            str(UNITS / "signalos.sysusers.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Creating user 'signalos'" in out.stdout + out.stderr
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
