"""The CLI trusts a unix socket only when root, the current user or the service user owns it
(and its directories) and listens on it: a socket planted by anyone else never gets a token,
and its "success" is never printed (issue 9 §7)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalos_cli import socket_trust
from tests.daemon_process import run_cli

pytestmark = [
    pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="Linux only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another uid's socket"),
]
NOBODY = 65534
TOKEN = "sos_the-secret-that-must-not-leak"
_BODY = b'{"account":"default","mode":"halted","stealth":false,"reason":"x","since":"2026"}'
SUCCESS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short root-owned directory (sun_path is 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sos-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_request(conn: socket.socket) -> bytes:
    """One HTTP request: the head, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    missing = length - len(body)
    while missing > 0 and (chunk := conn.recv(65536)):
        data += chunk
        missing -= len(chunk)
    return data


class FakeDaemon:
    """A listener that answers every request with a "halted" success and keeps what it got."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = b""
        self.connections = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self.received += _read_request(conn)
                    conn.sendall(SUCCESS)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux), then it returns
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def planted(short_dir: Path) -> Iterator[FakeDaemon]:
    """`var/signalosd.sock` in short_dir, owned by nobody, answering success."""
    (short_dir / "var").mkdir()
    fake = FakeDaemon(short_dir / "var" / "signalosd.sock")
    os.chown(fake.path, NOBODY, NOBODY)
    try:
        yield fake
    finally:
        fake.close()


def test_a_planted_default_socket_gets_no_token_and_is_not_believed(
    short_dir: Path, planted: FakeDaemon
) -> None:
    done = run_cli(short_dir, "--retries", "0", "stop", SIGNALOS_TOKEN=TOKEN)
    assert planted.connections == 0 and planted.received == b""
    assert done.returncode != 0, done.stdout  # the fake "halted" was not taken for a stop
    assert "halted" not in done.stdout
    assert "Warning: not using the control socket var/signalosd.sock" in done.stderr
    assert f"is owned by nobody (uid {NOBODY}), not by root, you (root)" in done.stderr
    assert "service user signalos" in done.stderr
    assert "127.0.0.1:8787" in done.stderr  # it went on to the default URL instead


def test_a_planted_explicit_socket_is_refused_with_the_reason(
    short_dir: Path, planted: FakeDaemon
) -> None:
    done = run_cli(short_dir, "stop", SIGNALOS_TOKEN=TOKEN, SIGNALOS_SOCKET=str(planted.path))
    assert done.returncode == 2, done.stderr
    assert planted.connections == 0 and planted.received == b""
    assert f"SIGNALOS_SOCKET names {planted.path}, which the CLI does not use" in done.stderr
    assert f"owned by nobody (uid {NOBODY})" in done.stderr
    assert "service_user" in done.stderr and "--url" in done.stderr


def test_the_service_user_may_own_the_socket(short_dir: Path, planted: FakeDaemon) -> None:
    done = run_cli(
        short_dir, "--json", "stop", SIGNALOS_TOKEN=TOKEN, SIGNALOS_SERVICE_USER="nobody"
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN.encode() in planted.received  # trusted: it is who signalosd runs as


def _listen_as_nobody(path: Path) -> tuple[int, int]:
    """A socket file owned by root whose listening process runs as nobody (bound by root,
    listen() and accept() in a child that dropped to uid 65534). Returns (pid, read end of a
    pipe that gets the bytes the child received)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sock.listen()  # SO_PEERCRED reports who called listen()
            sock.settimeout(20)
            conn, _ = sock.accept()
            conn.settimeout(5)
            got = b""
            try:
                while chunk := conn.recv(65536):
                    got += chunk
            except OSError:
                pass
            os.write(write_fd, got or b"-")
            code = 0
        finally:
            os._exit(code)
    sock.close()
    os.close(write_fd)
    return pid, read_fd


def test_a_listener_running_as_another_user_gets_nothing(short_dir: Path) -> None:
    path = short_dir / "c.sock"
    pid, read_fd = _listen_as_nobody(path)
    try:
        assert socket_trust.problem(path) is None  # the file itself looks right
        done = run_cli(short_dir, "stop", SIGNALOS_TOKEN=TOKEN, SIGNALOS_SOCKET=str(path))
    finally:
        with os.fdopen(read_fd, "rb") as fh:
            received = fh.read()
        os.waitpid(pid, 0)
    assert received == b"-", received  # connected, then closed before a byte was sent
    assert done.returncode == 3, done.stderr
    assert f"not using the control socket {path}" in done.stderr
    assert f"the process listening on it runs as nobody (uid {NOBODY})" in done.stderr
    assert "nothing was sent to it" in done.stderr


# ---- what makes a socket untrusted -----------------------------------------------------------


@pytest.fixture
def real(short_dir: Path) -> Iterator[Path]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(short_dir / "real.sock"))
        yield short_dir / "real.sock"


def test_a_socket_of_root_in_a_safe_directory_is_trusted(real: Path) -> None:
    assert socket_trust.problem(real) is None


def test_a_link_planted_by_another_user_is_not_followed(short_dir: Path, real: Path) -> None:
    link = short_dir / "link.sock"
    link.symlink_to(real)
    assert socket_trust.problem(link) is None  # root's own link to root's socket
    os.lchown(link, NOBODY, NOBODY)
    assert f"the link {link} is owned by nobody" in str(socket_trust.problem(link))


def test_a_directory_others_may_change_makes_the_socket_untrusted(short_dir: Path) -> None:
    shared = short_dir / "shared"
    shared.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(shared / "s.sock"))
        shared.chmod(0o777)  # anyone could swap the socket after the check
        assert "may be changed by other users" in str(socket_trust.problem(shared / "s.sock"))
        shared.chmod(0o1777)  # sticky, like /tmp: only the owner may replace it
        assert socket_trust.problem(shared / "s.sock") is None
        os.chown(shared, NOBODY, NOBODY)
        assert f"its directory {shared} is owned by nobody" in str(
            socket_trust.problem(shared / "s.sock")
        )


def test_something_else_than_a_socket_is_not_one(short_dir: Path) -> None:
    (short_dir / "file").write_text("")
    assert socket_trust.problem(short_dir / "file") == f"{short_dir / 'file'} is not a socket"
