"""`signalos ws` (signalos_cli.stream.wstester): the seed's WebSocket tester on the real /ws."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any, TextIO

from signalos_cli.stream.wstester import WsTesterOptions, endpoint, ws_tester
from signalosd import keys
from signalosd.ws.session import close_with_deadline
from tests.conftest import Harness
from tests.stream_client import append_events, until

WITHIN = 10.0


def opts(**overrides: Any) -> WsTesterOptions:
    values: dict[str, Any] = {"drain_s": 0.2, "drain_max_s": 2.0, "handle_signals": False}
    values.update(overrides)
    return WsTesterOptions(**values)


def base(daemon: Harness) -> str:
    return daemon.url("/").rstrip("/")


async def run_ws(
    url: str, token: str | None, inp: TextIO, **kwargs: Any
) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    kwargs.setdefault("options", opts())
    code = await asyncio.wait_for(
        ws_tester(url, token, inp=inp, out=out, err=err, **kwargs), WITHIN
    )
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def lines(*items: Any) -> io.StringIO:
    return io.StringIO(
        "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)
    )


@contextlib.contextmanager
def open_pipe() -> Iterator[tuple[TextIO, int]]:
    """An input that stays open (a pipe nobody writes to) until the test ends."""
    r, w = os.pipe()
    reader = open(r, encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        yield reader, w
    finally:
        os.close(w)  # the tester's input thread sees EOF and ends
        reader.close()


def test_urls() -> None:
    assert endpoint("http://127.0.0.1:8787") == "ws://127.0.0.1:8787/ws"
    assert endpoint("ws://127.0.0.1:8787/ws/agent") == "ws://127.0.0.1:8787/ws/agent"
    assert endpoint("ws://127.0.0.1:8787") == "ws://127.0.0.1:8787/ws"


async def test_sends_input_lines_and_prints_every_frame(daemon: Harness) -> None:
    await append_events(daemon, 3)
    expected = await daemon.events()
    inp = lines(
        {"type": "subscribe", "data": {"since": 0}},
        {"type": "ping", "data": {"timestamp": "t-1"}},
    )
    code, frames, err = await run_ws(base(daemon), daemon.admin, inp)
    assert code == 0, err
    assert frames[0]["type"] == "authenticated" and frames[0]["data"]["role"] == "admin"
    events = [f for f in frames if "seq" in f]
    assert [e["seq"] for e in events] == [e["seq"] for e in expected]
    assert frames[-1]["type"] == "pong" and frames[-1]["data"]["timestamp"] == "t-1"
    assert "connected to ws://" in err and "closed (end of input)" in err


async def test_a_malformed_line_is_reported_and_the_rest_still_goes(daemon: Harness) -> None:
    inp = lines(
        "this is not json",
        "",
        "# a comment",
        {"type": "nope"},
        {"type": "ping", "data": {"timestamp": "after-bad"}},
    )
    code, frames, err = await run_ws(base(daemon), daemon.admin, inp)
    assert code == 0, err
    assert "input line 1 is not JSON" in err
    assert [f["type"] for f in frames] == ["authenticated", "error", "pong"]
    assert frames[1]["data"]["code"] == "unknown_type"
    assert frames[2]["data"]["timestamp"] == "after-bad"


async def test_without_authenticating_the_server_refuses_and_closes_4401(
    daemon: Harness,
) -> None:
    inp = lines({"type": "ping", "data": {"timestamp": 1}})
    code, frames, err = await run_ws(base(daemon), None, inp, authenticate=False)
    assert code == 0
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["data"]["code"] == "unauthorized"
    assert "closed by the server: code 4401" in err


async def test_a_server_close_ends_it_while_input_is_still_open(daemon: Harness) -> None:
    out, err = io.StringIO(), io.StringIO()
    with open_pipe() as (inp, _):
        task = asyncio.ensure_future(
            ws_tester(base(daemon), daemon.admin, inp=inp, out=out, err=err, options=opts())
        )
        await until(lambda: '"authenticated"' in out.getvalue())
        sockets = [ws for ws in daemon.app[keys.WEBSOCKETS] if not ws.closed]
        assert len(sockets) == 1
        await close_with_deadline(sockets[0], 1001, "going away for the test", 1.0)
        assert await asyncio.wait_for(task, WITHIN) == 0
    assert "closed by the server: code 1001: going away for the test" in err.getvalue()


async def test_stop_ends_it_with_130(daemon: Harness) -> None:
    stop = asyncio.Event()
    out, err = io.StringIO(), io.StringIO()
    with open_pipe() as (inp, w):
        os.write(w, b'{"type": "ping", "data": {"timestamp": "p"}}\n')
        task = asyncio.ensure_future(
            ws_tester(
                base(daemon), daemon.admin, inp=inp, out=out, err=err, options=opts(stop=stop)
            )
        )
        await until(lambda: '"pong"' in out.getvalue())
        stop.set()
        assert await asyncio.wait_for(task, WITHIN) == 130


async def test_an_unreachable_daemon_exits_3() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    code, frames, err = await run_ws(f"http://127.0.0.1:{port}", "sos_x", lines())
    assert (code, frames) == (3, [])
    assert "cannot connect" in err


async def test_no_token_is_a_usage_error() -> None:
    code, _, err = await run_ws("http://127.0.0.1:1", None, lines())
    assert code == 2 and "no token" in err
