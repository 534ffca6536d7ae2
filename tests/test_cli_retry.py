"""Retries: only after a connection error or 502/503/504, reusing the request's Idempotency-Key,
so a reply lost on the way back never makes the daemon act twice."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from signalos_cli.client import Client, ClientError
from tests.cli_harness import Cli, live_daemon


def read_message(sock: socket.socket) -> bytes:
    """One HTTP message (headers + Content-Length body) from `sock`; b"" on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


class DropFirstReply:
    """A TCP proxy that forwards every request to the daemon but, for the first one, drops the
    daemon's reply and closes the client's connection: the request was applied, the client
    never heard."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            while request := read_message(client):
                self.requests.append(request)
                upstream.sendall(request)
                reply = read_message(upstream)
                if len(self.requests) == 1:
                    return  # the reply is lost
                client.sendall(reply)

    def keys(self) -> list[str]:
        out = []
        for request in self.requests:
            for line in request.split(b"\r\n"):
                if line.lower().startswith(b"idempotency-key:"):
                    out.append(line.split(b":", 1)[1].strip().decode())
        return out

    def close(self) -> None:
        self._server.close()


def test_a_close_retried_after_a_lost_reply_runs_once(tmp_path, monkeypatch):
    with live_daemon(tmp_path) as live:
        proxy = DropFirstReply(int(live.url.rsplit(":", 1)[1]))
        try:
            trade_id = live.add_trade()
            run = Cli(proxy.url, live.token("operator"), tmp_path, monkeypatch)
            result = run("--json", "close", str(trade_id), "--yes")
            assert result.exit_code == 0, result.stderr
            assert json.loads(result.stdout)["command"]["type"] == "close_trade"
            assert len(proxy.requests) == 2  # the first reply was dropped, then one retry
            first, second = proxy.keys()
            assert first == second  # the retry reused the Idempotency-Key
            assert len(live.commands("close_trade")) == 1
        finally:
            proxy.close()


# ---- the retry rules, against a stub that answers from a script --------------------------------


class Stub:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[str, str | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.seen.append((self.command, self.headers.get("Idempotency-Key")))
                status = stub.statuses.pop(0) if stub.statuses else 200
                body = {"mode": "paused"} if status < 400 else {
                    "error": {"code": f"c{status}", "message": f"m{status}", "details": {}}
                }  # fmt: skip
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def client(self, retries: int = 2) -> Client:
        return Client(self.url, "t", timeout=5, retries=retries, source="cli", sleep=lambda s: None)


@pytest.fixture
def stub() -> Iterator[Any]:
    made: list[Stub] = []

    def make(*statuses: int) -> Stub:
        made.append(Stub(list(statuses)))
        return made[-1]

    yield make
    for s in made:
        s.server.shutdown()
        s.server.server_close()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_is_retried_with_the_same_key(stub, status):
    server = stub(status, status)
    assert server.client().post("/api/trading/pause") == {"mode": "paused"}
    keys = {key for _, key in server.seen}
    assert len(server.seen) == 3 and len(keys) == 1 and None not in keys


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500])
def test_other_errors_are_final(stub, status):
    server = stub(status)
    with pytest.raises(ClientError) as err:
        server.client().post("/api/trading/pause")
    got = (err.value.status, err.value.code, err.value.message)
    assert got == (status, f"c{status}", f"m{status}")
    assert len(server.seen) == 1


def test_reads_are_retried_too_and_carry_no_key(stub):
    server = stub(503)
    server.client().get("/api/trading/state")
    assert server.seen == [("GET", None), ("GET", None)]


def test_retries_run_out_a_gateway_error_exits_3(stub, tmp_path, monkeypatch):
    server = stub(502, 502, 502)
    run = Cli(server.url, "t", tmp_path, monkeypatch)
    result = run("--retries", "1", "pause")
    assert result.exit_code == 3
    assert "not available" in result.stderr and "may have reached the daemon" in result.stderr
    assert len(server.seen) == 2


def test_connection_refused_is_retried_then_exits_3(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    naps: list[float] = []
    client = Client(url, "t", timeout=1, retries=2, source="cli", sleep=naps.append)
    with pytest.raises(ClientError) as err:
        client.post("/api/trading/emergency-stop", {})
    assert err.value.status is None and err.value.sent is False  # refused: never sent
    assert naps == [0.2, 0.4]
