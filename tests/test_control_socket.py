"""The local control socket: a real daemon process, requests over AF_UNIX authorised by the
peer's uid (root and the socket's group act as operator, others get 401), and the CLI using
it with no URL and no token."""

from __future__ import annotations

import errno
import grp
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signalos_cli.client import UnixHTTPConnection
from signalosd.auth import local
from signalosd.config import Settings, load_settings
from signalosd.ops import control_socket
from tests.daemon_process import Daemon, daemon_pool, run_cli

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="Linux only")
NOBODY = 65534
MISSING_GROUP = "sos-no-such-group"


def _members_group() -> grp.struct_group:
    """An existing group other than the daemon's own (Debian's `users`, gid 100, when there):
    the tests' control_socket_group, so that its members are not simply the daemon's group."""
    groups = [g for g in grp.getgrall() if g.gr_gid != os.getgid()]
    if not groups:
        pytest.skip("needs a second group in the group database")
    return next((g for g in groups if g.gr_name == "users"), groups[0])


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory anyone may traverse (sun_path is 108 bytes; pytest's tmp_path is
    long and private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="sos-", dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path, short_dir: Path) -> Iterator[Daemon]:
    env = {
        "SIGNALOS_CONTROL_SOCKET": str(short_dir / "c.sock"),
        "SIGNALOS_CONTROL_SOCKET_GROUP": _members_group().gr_name,
    }
    with daemon_pool() as start:
        yield start(tmp_path / "state", env=env)


def sock_of(d: Daemon) -> Path:
    return Path(d.env["SIGNALOS_CONTROL_SOCKET"])


def request(
    path: Path, method: str, target: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    conn = UnixHTTPConnection(str(path), timeout=10)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, target, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


# ---- the daemon side ----------------------------------------------------------------------


def test_socket_is_0660_and_logged(daemon: Daemon) -> None:
    path = sock_of(daemon)
    st = path.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    group = daemon.env["SIGNALOS_CONTROL_SOCKET_GROUP"]
    assert st.st_gid == grp.getgrnam(group).gr_gid
    daemon.wait_for_line(f"event=listening socket={path} mode=0660 group={group}")


def test_root_needs_no_token_and_is_the_actor(daemon: Daemon) -> None:
    status, body = request(sock_of(daemon), "POST", "/api/trading/pause", {"reason": "lunch"})
    assert status == 202, body
    actor = body["command"]["issued_by"]
    assert actor["kind"] == "local"
    assert actor["id"] == f"uid:{os.getuid()}"
    assert actor["role"] == "operator"
    status, events = request(sock_of(daemon), "GET", "/api/events?since=0")
    assert status == 200, events
    kinds = [e["actor"]["kind"] for e in events["events"] if e.get("actor")]
    assert "local" in kinds, events


def test_a_bearer_token_on_the_socket_still_wins(daemon: Daemon) -> None:
    status, body = request(sock_of(daemon), "POST", "/api/trading/pause", {}, token=daemon.admin)
    assert status == 202, body
    assert body["command"]["issued_by"]["kind"] == "token"
    status, body = request(sock_of(daemon), "GET", "/api/system/health", token="sos_wrong")
    assert status == 401, body


def test_a_local_user_is_an_operator_not_an_admin(daemon: Daemon) -> None:
    status, body = request(sock_of(daemon), "GET", "/api/system/health?account=other")
    assert status == 404, body  # only an admin may name another account


def test_tcp_without_a_token_is_still_refused(daemon: Daemon) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        conn.request("GET", "/api/system/health")
        assert conn.getresponse().status == 401
    finally:
        conn.close()


def _ask_as(path: Path, uid: int, gid: int) -> str:
    """GET /api/system/health over the socket from a child process running as uid:gid (no
    supplementary groups); the raw HTTP answer."""
    path.chmod(0o666)  # so that connect() succeeds and any refusal is the daemon's own
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become that user, ask, hand the raw answer to the parent
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(str(path))
                s.sendall(
                    b"GET /api/system/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            os.write(write_fd, b"".join(chunks))
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        answer = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, answer
    return answer


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_a_user_outside_the_group_is_refused_401(daemon: Daemon) -> None:
    answer = _ask_as(sock_of(daemon), NOBODY, NOBODY)
    assert answer.startswith("HTTP/1.1 401"), answer
    assert f"(uid {NOBODY}) may not use the control socket" in answer
    assert "usermod -aG" in answer


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_a_member_of_the_sockets_group_who_is_not_root_is_allowed(daemon: Daemon) -> None:
    group = sock_of(daemon).stat().st_gid  # the configured group
    assert group == grp.getgrnam(daemon.env["SIGNALOS_CONTROL_SOCKET_GROUP"]).gr_gid
    answer = _ask_as(sock_of(daemon), NOBODY, group)
    assert answer.startswith("HTTP/1.1 200"), answer


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_without_the_configured_group_only_root_and_the_daemon_get_in(
    tmp_path: Path, short_dir: Path
) -> None:
    """Issue 9 §7: a missing control_socket_group used to leave the socket to the daemon's
    primary group, whose every member was then an operator (resume from halt included)."""
    path = short_dir / "c.sock"
    env = {"SIGNALOS_CONTROL_SOCKET": str(path), "SIGNALOS_CONTROL_SOCKET_GROUP": MISSING_GROUP}
    with daemon_pool() as start:
        d = start(tmp_path / "state", env=env)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # closed at the file level too
        d.wait_for_line(
            rf"event=control_socket_group_missing group={MISSING_GROUP} mode=0600 "
            rf".*groupadd {MISSING_GROUP}"
        )
        # In the daemon's own primary group, which the socket file has: still refused.
        answer = _ask_as(path, NOBODY, path.stat().st_gid)
        assert answer.startswith("HTTP/1.1 401"), answer
        assert f"its group {MISSING_GROUP} (control_socket_group) does not exist" in answer
        assert f"groupadd {MISSING_GROUP}" in answer
        path.chmod(0o600)
        assert request(path, "GET", "/api/system/health")[0] == 200  # root still is


def test_without_a_group_only_root_and_the_daemons_own_uid_are_allowed() -> None:
    own, gid = os.geteuid(), os.getgid()
    assert local.allowed(local.Peer(1, 0, NOBODY), None)
    assert local.allowed(local.Peer(1, own, NOBODY), None)
    assert not local.allowed(local.Peer(1, NOBODY, gid), None)  # the daemon's group
    assert local.allowed(local.Peer(1, NOBODY, gid), gid)  # ... when it is the group


def test_socket_removed_on_shutdown(daemon: Daemon) -> None:
    path = sock_of(daemon)
    assert path.exists()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not path.exists()


def test_a_stale_socket_file_is_replaced(tmp_path: Path, short_dir: Path) -> None:
    path = short_dir / "c.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))  # bound, never listening: nothing answers
    with daemon_pool() as start:
        d = start(tmp_path / "state", env={"SIGNALOS_CONTROL_SOCKET": str(path)})
        assert request(path, "GET", "/api/system/health")[0] == 200
        d.wait_for_line("event=control_socket_stale_removed")


def test_a_live_socket_is_not_stolen(tmp_path: Path, short_dir: Path) -> None:
    path = short_dir / "c.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        with daemon_pool() as start:
            d = start(tmp_path / "state", env={"SIGNALOS_CONTROL_SOCKET": str(path)}, wait=False)
            assert d.wait_exit() == 3
            assert "another process answers on" in d.output
        assert path.exists()


def test_off_disables_it(tmp_path: Path) -> None:
    with daemon_pool() as start:
        d = start(tmp_path / "state", env={"SIGNALOS_CONTROL_SOCKET": "off"})
        d.wait_for_line("event=control_socket_disabled")
        assert not (tmp_path / "state" / "signalosd.sock").exists()


def _no_chown(*_args: object) -> None:
    """What the service's SystemCallFilter (~@privileged) makes of chown."""
    raise PermissionError(errno.EPERM, "Operation not permitted")


def test_the_daemons_own_group_needs_no_chown(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "chown", _no_chown)
    caplog.set_level(logging.INFO, logger="signalosd")
    own = grp.getgrgid(os.getgid()).gr_name
    control_socket.bind(short_dir / "own.sock", own).close()
    assert "control_socket_group" not in caplog.text  # no warning: the group is already right
    assert (short_dir / "own.sock").stat().st_gid == os.getgid()


def test_a_refused_chown_is_a_warning_that_says_what_to_do(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    other = next((g for g in grp.getgrall() if g.gr_gid != os.getgid()), None)
    if other is None:
        pytest.skip("needs a second group in the group database")
    monkeypatch.setattr(os, "chown", _no_chown)
    caplog.set_level(logging.INFO, logger="signalosd")
    control_socket.bind(short_dir / "other.sock", other.gr_name).close()
    assert f"event=control_socket_group_denied group={other.gr_name}" in caplog.text
    assert "Group= in a drop-in" in caplog.text
    assert (short_dir / "other.sock").stat().st_gid == os.getgid()  # kept, and still 0660
    assert stat.S_IMODE((short_dir / "other.sock").stat().st_mode) == 0o660


# ---- settings -----------------------------------------------------------------------------


def test_default_path_is_in_the_state_dir_or_the_runtime_dir(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert Settings(state_dir=Path("/x")).control_socket_path == Path("/x/signalosd.sock")
    assert Settings(control_socket="off").control_socket_path is None
    under_systemd = load_settings(empty, env={"RUNTIME_DIRECTORY": "/run/signalos"})
    assert under_systemd.control_socket_path == Path("/run/signalos/signalosd.sock")
    explicit = load_settings(
        empty, env={"RUNTIME_DIRECTORY": "/run/signalos", "SIGNALOS_CONTROL_SOCKET": "/s.sock"}
    )
    assert explicit.control_socket_path == Path("/s.sock")


# ---- the CLI ------------------------------------------------------------------------------


def test_cli_uses_the_socket_from_signalos_socket(daemon: Daemon, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    done = run_cli(cwd, "--json", "status", SIGNALOS_SOCKET=str(sock_of(daemon)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"]["mode"] == "running"
    done = run_cli(cwd, "--json", "stop", SIGNALOS_SOCKET=str(sock_of(daemon)))
    assert done.returncode == 0, done.stderr
    _, health = request(sock_of(daemon), "GET", "/api/system/health")
    assert health["mode"] == "halted"


def test_cli_finds_make_runs_socket_in_var(short_dir: Path) -> None:
    state = short_dir / "var"
    with daemon_pool() as start:
        d = start(state)  # control_socket "": <state_dir>/signalosd.sock = ./var/signalosd.sock
        assert (state / "signalosd.sock").exists()
        (state / "admin.token").unlink()  # no token anywhere: the socket alone must do
        done = run_cli(short_dir, "stop", "--reason", "cron")
        assert done.returncode == 0, done.stderr
        _, health = request(state / "signalosd.sock", "GET", "/api/system/health")
        assert health["mode"] == "halted"
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0


def test_cli_url_beats_the_default_socket(short_dir: Path) -> None:
    state = short_dir / "var"
    with daemon_pool() as start:
        start(state)
        done = run_cli(
            short_dir,
            "--retries",
            "0",
            "status",
            SIGNALOS_URL="http://127.0.0.1:9",
            SIGNALOS_TOKEN="sos_x",
        )
        assert done.returncode != 0
        assert "127.0.0.1:9" in done.stderr


def test_cli_tail_follows_the_events_over_the_socket_without_a_token(
    daemon: Daemon, tmp_path: Path
) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    sock = str(sock_of(daemon))
    assert run_cli(cwd, "pause", "--reason", "lunch", SIGNALOS_SOCKET=sock).returncode == 0
    done = run_cli(
        cwd, "--json", "tail", "-n", "1", "--type", "trading_*", "--no-follow", SIGNALOS_SOCKET=sock
    )
    assert done.returncode == 0, done.stderr
    (event,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert event["type"] == "trading_paused"
    assert event["actor"]["kind"] == "local" and event["actor"]["id"] == f"uid:{os.getuid()}"
    assert f"connecting to the control socket {sock}" in done.stderr
    assert "role operator" in done.stderr
    daemon.wait_for_line(rf"path=/ws status=101 .* token_id=local:uid:{os.getuid()}$")


def test_cli_ws_authenticates_by_uid_over_the_socket(daemon: Daemon, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    done = run_cli(
        cwd,
        "ws",
        stdin='{"type": "ping", "data": {"timestamp": 7}}\n',
        SIGNALOS_SOCKET=str(sock_of(daemon)),
    )
    assert done.returncode == 0, done.stderr
    frames = [json.loads(line) for line in done.stdout.splitlines()]
    assert frames[0]["type"] == "authenticated", frames
    assert frames[0]["data"]["token_id"] == f"local:uid:{os.getuid()}"
    assert frames[0]["data"]["role"] == "operator"
    assert any(f["type"] == "pong" for f in frames), frames


def test_a_websocket_on_tcp_still_needs_a_token(daemon: Daemon, short_dir: Path) -> None:
    done = run_cli(
        short_dir,
        "tail",
        "--no-follow",
        SIGNALOS_URL=f"http://127.0.0.1:{daemon.port}",
        SIGNALOS_TOKEN="sos_not-a-token",
    )
    assert done.returncode == 4, done.stderr
    assert "refused the token" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_tail_as_a_user_outside_the_group_is_refused(daemon: Daemon, short_dir: Path) -> None:
    path = sock_of(daemon)
    path.chmod(0o666)  # so that connect() succeeds and the refusal is the daemon's own
    done = run_cli(
        short_dir, "tail", "--no-follow", uid=NOBODY, gid=NOBODY, SIGNALOS_SOCKET=str(path)
    )
    assert done.returncode == 4, done.stderr
    assert "refused this user" in done.stderr
    assert f"(uid {NOBODY}) may not use the control socket" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_tail_as_a_member_of_the_group_needs_no_token(daemon: Daemon, short_dir: Path) -> None:
    path = sock_of(daemon)
    group = path.stat().st_gid  # the configured group
    done = run_cli(
        short_dir,
        "--json",
        "tail",
        "-n",
        "1",
        "--no-follow",
        uid=NOBODY,
        gid=group,
        SIGNALOS_SOCKET=str(path),
    )
    assert done.returncode == 0, done.stderr
    assert "role operator" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_a_user_who_cannot_reach_the_default_socket_is_told_why(short_dir: Path) -> None:
    var = short_dir / "var"  # like the service's /run/signalos: 0750, a group they are not in
    var.mkdir(mode=0o750)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(var / "signalosd.sock"))
        done = run_cli(short_dir, "status", uid=NOBODY, gid=NOBODY)
    assert done.returncode == 2, done.stderr
    assert f"control socket {Path('var/signalosd.sock')} is closed to user" in done.stderr
    assert "usermod -aG" in done.stderr
    assert "--token-file" in done.stderr  # and the token route is still explained
