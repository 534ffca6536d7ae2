"""`make run` (scripts/run.sh) as a newcomer meets it: the daemon and a paper agent come up and
Ctrl-C stops both; and when something else already answers on the port, it says so and stops
instead of attaching the agent to that other server."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import ProcessOutput, clean_env

ROOT = Path(__file__).resolve().parent.parent
BANNER = "SignalOS is running"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(state: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=clean_env(PORT=str(port), STATE_DIR=str(state)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
    )


@pytest.fixture
def impostor() -> Iterator[int]:
    """Something else on the port that answers every GET with 200, like another daemon."""

    class Yes(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Yes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_make_run_starts_the_daemon_and_an_agent_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    state = tmp_path / "var"
    port = _free_port()
    proc = _run(state, port)
    out = ProcessOutput(proc, "make run")
    try:
        out.wait_for_line(BANNER, timeout=30)
        # where a newcomer points the browser, and which file holds the token to paste
        dashboard = f"Dashboard: http://127.0.0.1:{port}/  (sign in with the token in {state}/"
        out.wait_for_line(re.escape(dashboard + "admin.token)"), timeout=30)
        out.wait_for_line("event=connected", timeout=30)  # the paper agent reached the daemon
        assert (state / "admin.token").exists() and (state / "agent.token").exists()
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(30)
        assert code == 130, out.text  # interrupted, as a shell reports Ctrl-C
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "event=shutdown phase=done" in out.text
    assert not (state / "signalosd.sock").exists()


def test_make_run_does_not_mistake_another_server_on_the_port_for_its_daemon(
    tmp_path: Path, impostor: int
) -> None:
    state = tmp_path / "var"
    proc = _run(state, impostor)
    out = ProcessOutput(proc, "make run")
    try:
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out.finish()
    assert code != 0, out.text
    assert "address already in use" in out.text and "signalosd exited" in out.text, out.text
    assert BANNER not in out.text
    assert not (state / "agent.token").exists()  # no agent was pointed at the other server
