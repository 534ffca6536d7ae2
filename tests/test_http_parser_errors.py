"""Requests aiohttp's own parser refuses (oversized line, bad method, malformed headers) get the
daemon's one error shape and one log line, never text/plain or a traceback.

One real `signalosd` process serves the whole module; each case is followed by a request
whose own log line is the barrier: every line the refused request caused comes before it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.daemon_process import Daemon, daemon_pool

TIMEOUT = 10.0
_barriers = itertools.count(1)

CASES = {
    "oversized request line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    "oversized header": b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "bad method": b"G@T /livez HTTP/1.1\r\nHost: t\r\n\r\n",
    "TLS on the plain port": bytes.fromhex("160301020001000001fc0303") + b"\x00" * 64,
    "header line without a colon": b"GET /livez HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
    "control byte in a header": b"GET /livez HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n",
    "too many headers": b"GET /livez HTTP/1.1\r\n"
    + b"".join(b"X-%d: v\r\n" % i for i in range(200))
    + b"\r\n",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    # No control socket: its own `listening` line would come after the TCP one, which is all
    # that start() waits for, and could fall among a test's lines.
    env = {"SIGNALOS_CONTROL_SOCKET": "off"}
    with daemon_pool() as start:
        d = start(tmp_path_factory.mktemp("parser") / "state", env=env)
        request = urllib.request.Request(f"{d.url}/livez", headers={"X-Request-ID": "started"})
        with urllib.request.urlopen(request, timeout=TIMEOUT):
            pass
        d.wait_for_line("request_id=started ")  # startup's lines are all out
        yield d


async def send_raw(d: Daemon, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `data`, read the reply to the end of the connection: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    try:
        writer.write(data)
        async with asyncio.timeout(TIMEOUT):
            reply = await reader.read()  # the daemon closes after an error
    finally:
        writer.transport.abort()
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


async def log_lines_until_barrier(d: Daemon, start: int) -> list[str]:
    """The daemon's log lines from index `start` up to a fresh barrier request's own line."""
    barrier = f"barrier-{next(_barriers)}"
    request = (
        f"GET /livez HTTP/1.1\r\nHost: t\r\nX-Request-ID: {barrier}\r\nConnection: close\r\n\r\n"
    )
    status, _, _ = await send_raw(d, request.encode())
    assert status == 200
    await asyncio.to_thread(d.wait_for_line, f"request_id={barrier} ")
    lines = d.output.splitlines()[start:]
    return lines[: next(i for i, line in enumerate(lines) if f"request_id={barrier} " in line)]


@pytest.mark.parametrize("case", list(CASES))
async def test_a_request_the_parser_refuses_gets_the_error_shape_and_one_log_line(
    daemon: Daemon, case: str
) -> None:
    start = len(daemon.output.splitlines())
    status, headers, body = await send_raw(daemon, CASES[case])  # to the end: it was closed

    assert status == 400, body
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "bad_request"
    assert error["message"].startswith("the request is not valid HTTP/1.1 (")
    assert error["details"]["reason"] and "aaaa" not in error["message"]

    lines = await log_lines_until_barrier(daemon, start)
    assert "Traceback" not in "\n".join(lines), lines
    (line,) = lines  # exactly one, and it is the request's line
    assert "event=http_request" in line and "status=400" in line
    assert f"request_id={headers['x-request-id']} " in line
    assert "aaaa" not in line and "\x01" not in line  # the client's bytes are not copied


async def test_an_oversized_line_is_named_with_the_limit(daemon: Daemon) -> None:
    _, _, body = await send_raw(daemon, CASES["oversized request line"])
    assert "longer than 8190 bytes" in json.loads(body)["error"]["message"]


async def test_tls_on_the_plain_port_is_told_what_to_do(daemon: Daemon) -> None:
    _, _, body = await send_raw(daemon, CASES["TLS on the plain port"])
    assert "use http://" in json.loads(body)["error"]["message"]


async def test_the_daemon_still_serves_after_every_case(daemon: Daemon) -> None:
    for data in CASES.values():
        await send_raw(daemon, data)
    status, _, body = await send_raw(
        daemon, b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert status == 200, body
