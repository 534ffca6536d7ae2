"""`signalos tail` (signalos_cli.stream.tail): what it prints, where it starts, and that it neither
misses nor repeats an event across dropped connections, dead connections (heartbeat) and
daemon restarts. Real sockets throughout; backoffs and heartbeats are injected tiny."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signalos_cli.errors import ExitCode
from signalos_cli.stream.tail import (
    TailOptions,
    api_base,
    format_event,
    stream_url,
    tail,
)
from signalosd import keys
from signalosd.models import Role
from signalosd.ops import maintenance
from signalosd.ws.session import close_with_deadline
from tests.conftest import Harness
from tests.daemon_process import call, daemon_pool
from tests.stream_client import append_events, head_seq, until

DAY = 86_400.0
WITHIN = 5.0
EVENT_KEYS = {"id", "type", "seq", "data", "timestamp", "account", "actor"}


def fast(**overrides: Any) -> TailOptions:
    values: dict[str, Any] = {
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "heartbeat_s": 5.0,
        "connect_timeout_s": 3.0,
        "flush_interval_s": 0.02,
        "handle_signals": False,
        "random": lambda: 1.0,
    }
    values.update(overrides)
    return TailOptions(**values)


def base(daemon: Harness) -> str:
    return daemon.url("/").rstrip("/")


async def run_tail(url: str, token: str, **kwargs: Any) -> tuple[int, str, str]:
    """A tail that ends by itself (follow=False, or a fatal error): (code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    kwargs.setdefault("options", fast())
    code = await asyncio.wait_for(tail(url, token, out=out, err=err, **kwargs), WITHIN * 2)
    return code, out.getvalue(), err.getvalue()


@dataclass
class Follower:
    """A following tail running in the test's loop."""

    task: asyncio.Task[int]
    out: io.StringIO
    err: io.StringIO
    stop: asyncio.Event
    as_json: bool = False
    _code: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def events(self) -> list[dict[str, Any]]:
        assert self.as_json
        return [json.loads(line) for line in self.lines() if '"seq"' in line]

    def seqs(self) -> list[int]:
        if self.as_json:
            return [e["seq"] for e in self.events()]
        return [int(line.split(" ", 2)[1]) for line in self.lines()]

    async def through(self, seq: int, within: float = WITHIN) -> None:
        """Wait until the event `seq` was printed."""
        try:
            await until(lambda: seq in self.seqs() or self.task.done(), within)
        except TimeoutError:
            pytest.fail(
                f"seq {seq} not printed; out:\n{self.out.getvalue()}\nerr:\n{self.err.getvalue()}"
            )
        assert not self.task.done(), (self.task.result(), self.err.getvalue())

    async def finish(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, WITHIN)


@contextlib.asynccontextmanager
async def following(url: str, token: str, **kwargs: Any) -> AsyncIterator[Follower]:
    out, err, stop = io.StringIO(), io.StringIO(), asyncio.Event()
    kwargs.setdefault("options", fast())
    kwargs["options"] = _with_stop(kwargs["options"], stop)
    task = asyncio.ensure_future(tail(url, token, out=out, err=err, follow=True, **kwargs))
    follower = Follower(task, out, err, stop, bool(kwargs.get("as_json")))
    try:
        yield follower
    finally:
        if not task.done():
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, WITHIN)


def _with_stop(options: TailOptions, stop: asyncio.Event) -> TailOptions:
    return TailOptions(**{**options.__dict__, "stop": stop})


async def wait_connected(follower: Follower, times: int = 1) -> None:
    await until(lambda: follower.err.getvalue().count("tail: connected") >= times)


def consecutive(seqs: list[int], first: int, last: int) -> None:
    assert seqs == list(range(first, last + 1)), seqs


# ---- urls and format -------------------------------------------------------------------------


def test_urls_map_http_to_ws_and_keep_a_prefix() -> None:
    assert stream_url("http://127.0.0.1:8787") == "ws://127.0.0.1:8787/ws"
    assert stream_url("https://h.example/signalos/") == "wss://h.example/signalos/ws"
    assert stream_url("ws://h:1/ws") == "ws://h:1/ws"
    assert api_base("wss://h.example/signalos/ws") == "https://h.example/signalos"
    assert api_base("http://127.0.0.1:8787/") == "http://127.0.0.1:8787"
    with pytest.raises(ValueError):
        stream_url("ftp://h")


def test_human_format_is_one_escaped_line_and_colour_only_when_asked() -> None:
    msg = {
        "seq": 42,
        "type": "trade_update",
        "timestamp": "2026-01-05T09:00:00.000Z",
        "account": None,
        "data": {"symbol": "EURUSD", "note": "two words\n\x1b[31mred", "tp": [1.2, 1.3]},
    }
    line = format_event(msg)
    assert line.startswith("2026-01-05T09:00:00.000Z 42 - trade_update symbol=EURUSD ")
    assert "\n" not in line and "\x1b" not in line
    assert "tp=[1.2,1.3]" in line
    assert "\x1b[" in format_event(msg, color=True)
    assert len(format_event({**msg, "data": {"x": "y" * 500}})) < 200


# ---- what exists -----------------------------------------------------------------------------


async def test_no_follow_prints_exactly_the_existing_events(daemon: Harness) -> None:
    await append_events(daemon, 5)
    expected = await daemon.events()
    code, out, err = await run_tail(base(daemon), daemon.admin, follow=False)
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert len(lines) == len(expected) >= 5
    for line, event in zip(lines, expected, strict=True):
        account = event["account"] or "-"
        assert line.startswith(f"{event['ts']} {event['seq']} {account} {event['type']}"), line
    assert lines[-1].endswith('test_event i=4 pad=""')
    assert "tail: connected" in err

    # Nothing new: nothing printed, still exit 0 (the pong ends it, not an event).
    code, out, _ = await run_tail(
        base(daemon), daemon.admin, follow=False, since=await head_seq(daemon)
    )
    assert (code, out) == (ExitCode.OK, "")


async def test_json_lines_are_the_event_messages(daemon: Harness) -> None:
    await append_events(daemon, 3)
    expected = await daemon.events()
    code, out, err = await run_tail(base(daemon), daemon.admin, follow=False, as_json=True)
    assert code == ExitCode.OK, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [m["seq"] for m in got] == [e["seq"] for e in expected]
    for m, e in zip(got, expected, strict=True):
        assert set(m) == EVENT_KEYS
        assert m["id"] == f"evt_{e['seq']}"
        assert (m["type"], m["data"], m["timestamp"], m["account"], m["actor"]) == (
            e["type"],
            e["data"],
            e["ts"],
            e["account"],
            e["actor"],
        )


async def test_since_replays_after_the_seq(daemon: Harness) -> None:
    await append_events(daemon, 6)
    head = await head_seq(daemon)
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, since=head - 3)
    assert code == ExitCode.OK
    assert [int(line.split()[1]) for line in out.splitlines()] == [head - 2, head - 1, head]


async def test_last_n_counts_only_the_events_the_token_sees_and_that_match(
    daemon: Harness,
) -> None:
    viewer = await daemon.token(Role.VIEWER, account="other")
    await append_events(daemon, 2, account="other", type_="alpha_one")
    await append_events(daemon, 1, account=None, type_="alpha_two")  # system: visible
    await append_events(daemon, 1, account="other", type_="beta")
    await append_events(daemon, 60, account="default", type_="alpha_one")  # not visible
    mine = [e["seq"] for e in await daemon.events(viewer) if e["type"].startswith("alpha_")]
    assert len(mine) == 3

    # The last 2 visible alpha_* events lie behind 60 invisible ones: found anyway.
    code, out, err = await run_tail(
        base(daemon), viewer, follow=False, last=2, types=["alpha_*"], as_json=True
    )
    assert code == ExitCode.OK, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == mine[-2:]

    # More than exist: all of them.
    code, out, _ = await run_tail(
        base(daemon), viewer, follow=False, last=50, types=["alpha_*"], as_json=True
    )
    assert [json.loads(line)["seq"] for line in out.splitlines()] == mine

    # Admin, no filter: exactly the last N of the log; -n 0: nothing.
    head = await head_seq(daemon)
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, last=4)
    assert [int(line.split()[1]) for line in out.splitlines()] == list(range(head - 3, head + 1))
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, last=0)
    assert (code, out) == (ExitCode.OK, "")


async def test_last_n_then_follows(daemon: Harness) -> None:
    await append_events(daemon, 5)
    head = await head_seq(daemon)
    async with following(base(daemon), daemon.admin, last=2) as f:
        await f.through(head)
        await append_events(daemon, 2)
        await f.through(head + 2)
        assert await f.finish() == ExitCode.INTERRUPTED
    consecutive(f.seqs(), head - 1, head + 2)


async def test_type_filter_with_wildcard_replay_and_live(daemon: Harness) -> None:
    await append_events(daemon, 2, type_="command_queued_x")
    await append_events(daemon, 2, type_="other_thing")
    async with following(
        base(daemon), daemon.admin, since=0, types=["command_*", "emergency_stop"], as_json=True
    ) as f:
        await append_events(daemon, 1, type_="emergency_stop")
        await append_events(daemon, 1, type_="other_thing")
        last = (await append_events(daemon, 1, type_="command_sent_x"))[-1]
        await f.through(last)
        assert await f.finish() == ExitCode.INTERRUPTED
    kinds = [e["type"] for e in f.events()]
    assert "other_thing" not in kinds
    assert kinds.count("command_queued_x") == 2
    assert kinds[-2:] == ["emergency_stop", "command_sent_x"]


async def test_follow_without_since_starts_at_the_head(daemon: Harness) -> None:
    await append_events(daemon, 3)
    head = await head_seq(daemon)
    async with following(base(daemon), daemon.admin) as f:
        await wait_connected(f)
        new = await append_events(daemon, 2)
        await f.through(new[-1])
        assert await f.finish() == ExitCode.INTERRUPTED
    consecutive(f.seqs(), head + 1, head + 2)


# ---- reconnects ------------------------------------------------------------------------------


async def close_streams(daemon: Harness, code: int, reason: str) -> int:
    sockets = [ws for ws in daemon.app[keys.WEBSOCKETS] if not ws.closed]
    await asyncio.gather(*(close_with_deadline(ws, code, reason, 1.0) for ws in sockets))
    return len(sockets)


@pytest.mark.parametrize("code", [1001, 4008])
async def test_a_dropped_connection_resumes_without_gap_or_duplicate(
    daemon: Harness, code: int
) -> None:
    await append_events(daemon, 3)
    start = await head_seq(daemon)
    reconnect = asyncio.Semaphore(0)

    async def gated(delay: float) -> None:
        await reconnect.acquire()

    async with following(
        base(daemon), daemon.admin, since=start - 3, as_json=True, options=fast(sleep=gated)
    ) as f:
        await f.through(start)
        for round_ in range(3):
            await append_events(daemon, 2)
            assert await close_streams(daemon, code, f"test: resume from seq x{round_}") == 1
            await append_events(daemon, 3)  # committed while the tail is away
            reconnect.release()
            await wait_connected(f, round_ + 2)
            await append_events(daemon, 1)
        head = await head_seq(daemon)
        await f.through(head)
        assert await f.finish() == ExitCode.INTERRUPTED
    consecutive(f.seqs(), start - 2, head)
    err = f.err.getvalue()
    assert err.count("tail: disconnected: closed with code " + str(code)) == 3, err
    assert "resuming after seq" in err


class Proxy:
    """A TCP proxy in front of the daemon. `freeze()` makes the current connections silently
    swallow everything (a dead peer: no FIN, no RST); new connections work normally."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.live: list[dict[str, Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        conn = {"frozen": False, "writers": (writer, up_w)}
        self.live.append(conn)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if not conn["frozen"]:
                        dst.write(data)
                        await dst.drain()
            dst.close()

        for task in (pump(reader, up_w), pump(up_r, writer)):
            t = asyncio.ensure_future(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    def freeze(self) -> None:
        for conn in self.live:
            conn["frozen"] = True

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in self.live:
            for w in conn["writers"]:
                w.transport.abort()
        for t in list(self.tasks):
            t.cancel()


async def test_a_dead_connection_is_detected_by_heartbeat_and_resumed(daemon: Harness) -> None:
    proxy = Proxy(daemon.client.port)  # type: ignore[arg-type]
    url = await proxy.start()
    try:
        start = await head_seq(daemon)
        async with following(url, daemon.admin, since=start, options=fast(heartbeat_s=0.3)) as f:
            await wait_connected(f)
            first = await append_events(daemon, 2)
            await f.through(first[-1])
            proxy.freeze()  # the peer goes silent: no close, no error
            await append_events(daemon, 3)
            await wait_connected(f, 2)  # the heartbeat noticed, and it reconnected
            last = (await append_events(daemon, 2))[-1]
            await f.through(last)
            assert await f.finish() == ExitCode.INTERRUPTED
        consecutive(f.seqs(), start + 1, last)
        assert "no answer to the heartbeat ping" in f.err.getvalue(), f.err.getvalue()
    finally:
        await proxy.close()


async def test_the_daemon_restarting_on_the_same_port_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    back = asyncio.Event()

    async def gated(delay: float) -> None:
        """The tail's backoff: held until the test has committed events while it was away."""
        await back.wait()

    with daemon_pool() as start:
        d = start(state)
        admin, port = d.admin, d.port
        async with aiohttp.ClientSession() as s:

            async def churn(url: str, n: int) -> None:
                """2n+ events: pause/resume alternately."""
                for i in range(n):
                    path = "/api/trading/pause" if i % 2 == 0 else "/api/trading/resume"
                    status, body = await call(s, "POST", f"{url}{path}", admin)
                    assert status in (200, 202), body

            async with following(
                d.url,
                admin,
                since=0,
                as_json=True,
                options=fast(sleep=gated),
            ) as f:
                await churn(d.url, 4)  # before
                d.signal(signal.SIGTERM)
                assert await d.await_exit() == 0
                d2 = start(state, port=port)
                await churn(d2.url, 4)  # during: the tail waits in its backoff
                back.set()
                await wait_connected(f, 2)
                await churn(d2.url, 4)  # after
                _, body = await call(
                    s, "GET", f"{d2.url}/api/events", admin, params={"since": 0, "limit": 1000}
                )
                head = body["last_seq"]
                await f.through(head, within=10)
                assert await f.finish() == ExitCode.INTERRUPTED
                d2.signal(signal.SIGTERM)
                assert await d2.await_exit() == 0
    consecutive(f.seqs(), 1, head)
    assert [e["seq"] for e in body["events"]] == f.seqs()
    err = f.err.getvalue()
    assert "the daemon is shutting down" in err, err
    # It was away while events were committed: it came back to a head past its cursor.
    away = int(re.findall(r"resuming after seq (\d+)", err)[0])
    heads = [int(h) for h in re.findall(r"connected \(.*head seq (\d+)\)", err)]
    assert len(heads) == 2 and heads[1] > away, err


# ---- cursor file -----------------------------------------------------------------------------


async def test_cursor_file_lets_a_cron_consumer_pick_up_where_it_left(
    daemon: Harness, tmp_path: Path
) -> None:
    cursor = tmp_path / "tail.cursor"
    await append_events(daemon, 4)
    head = await head_seq(daemon)
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, cursor_file=cursor)
    assert code == ExitCode.OK and len(out.splitlines()) == head
    assert cursor.read_text() == f"{head}\n"

    new = await append_events(daemon, 3)
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, cursor_file=cursor)
    assert [int(line.split()[1]) for line in out.splitlines()] == new
    assert cursor.read_text() == f"{new[-1]}\n"

    # Nothing new: nothing printed, the cursor stays.
    code, out, _ = await run_tail(base(daemon), daemon.admin, follow=False, cursor_file=cursor)
    assert (code, out, cursor.read_text()) == (ExitCode.OK, "", f"{new[-1]}\n")

    # With a filter, a run that printed nothing still moves past what it scanned.
    await append_events(daemon, 2, type_="noise")
    code, out, _ = await run_tail(
        base(daemon), daemon.admin, follow=False, cursor_file=cursor, types=["test_event"]
    )
    assert (code, out) == (ExitCode.OK, "")
    assert cursor.read_text() == f"{await head_seq(daemon)}\n"


async def test_cursor_is_flushed_when_a_follower_is_stopped(
    daemon: Harness, tmp_path: Path
) -> None:
    cursor = tmp_path / "tail.cursor"
    cursor.write_text("0\n")
    # Long flush interval: only the final flush can have written the last seq.
    async with following(
        base(daemon), daemon.admin, cursor_file=cursor, options=fast(flush_interval_s=60)
    ) as f:
        new = await append_events(daemon, 3)
        await f.through(new[-1])
        assert await f.finish() == ExitCode.INTERRUPTED
    assert cursor.read_text() == f"{new[-1]}\n"
    assert f.seqs()[0] == 1  # resumed after the file's seq 0: the whole log


async def test_a_bad_cursor_file_is_an_error(daemon: Harness, tmp_path: Path) -> None:
    cursor = tmp_path / "tail.cursor"
    cursor.write_text("banana\n")
    code, _, err = await run_tail(base(daemon), daemon.admin, follow=False, cursor_file=cursor)
    assert code == 1 and "does not hold a seq" in err


# ---- refusals and resets ---------------------------------------------------------------------


@pytest.mark.parametrize("follow", [False, True])
async def test_a_refused_token_exits_4_without_retrying(daemon: Harness, follow: bool) -> None:
    code, out, err = await run_tail(base(daemon), "sos_not-a-token", follow=follow)
    assert code == ExitCode.UNAUTHORIZED, err
    assert out == ""
    assert "refused the token" in err and "4401" in err
    assert err.count("connecting to") == 1


async def test_unreachable_daemon(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    url = f"http://127.0.0.1:{port}"
    code, out, err = await run_tail(url, "sos_x", follow=False)
    assert (code, out) == (ExitCode.UNREACHABLE, "")
    assert "cannot reach the daemon" in err

    # Following: it keeps trying and says so, attempt by attempt.
    async with following(url, "sos_x") as f:
        await until(lambda: "(attempt 3)" in f.err.getvalue())
        assert await f.finish() == ExitCode.INTERRUPTED
    assert re.search(r"tail: error: .+ \(attempt 2\)", f.err.getvalue()), f.err.getvalue()


async def test_a_pruned_cursor_gets_a_reset_warning_and_continues(daemon: Harness) -> None:
    await append_events(daemon, 5)
    daemon.clock.advance(daemon.settings.event_retention_days * DAY + DAY)
    done = await maintenance.run_once(daemon.db, daemon.settings)
    assert done["events_pruned"] >= 5
    head = await head_seq(daemon)  # the events_pruned event

    async with following(base(daemon), daemon.admin, since=2, as_json=True) as f:
        await until(lambda: '"type":"reset"' in f.out.getvalue())
        new = await append_events(daemon, 2)
        await f.through(new[-1])
        assert await f.finish() == ExitCode.INTERRUPTED
    lines = [json.loads(line) for line in f.lines()]
    assert lines[0]["type"] == "reset"
    assert lines[0]["data"]["reason"] == "pruned" and lines[0]["data"]["last_seq"] == head
    assert "snapshot" in lines[0]["data"]
    assert [m["seq"] for m in lines[1:]] == new
    err = f.err.getvalue()
    assert "warning: reset: the events after seq 2 were pruned" in err, err


async def test_a_cursor_past_the_head_resets_to_the_head(daemon: Harness) -> None:
    await append_events(daemon, 2)
    head = await head_seq(daemon)
    code, out, err = await run_tail(base(daemon), daemon.admin, follow=False, since=head + 100)
    assert (code, out) == (ExitCode.OK, "")  # human output: the reset is on stderr only
    assert "past the end of the log" in err and f"continuing after seq {head}" in err


async def test_since_and_last_together_is_a_usage_error(daemon: Harness) -> None:
    code, _, err = await run_tail(base(daemon), daemon.admin, since=1, last=1)
    assert code == 2 and "either" in err


_TAIL_PROCESS = """
import asyncio, sys
from pathlib import Path
from signalos_cli.stream.tail import TailOptions, tail
code = asyncio.run(tail(sys.argv[1], sys.stdin.readline().strip(), since=0,
    cursor_file=Path(sys.argv[2]), out=sys.stdout, err=sys.stderr,
    options=TailOptions(flush_interval_s=0.05)))
sys.exit(code)
"""


async def test_ctrl_c_exits_130_and_leaves_the_cursor_at_the_last_printed_event(
    daemon: Harness, tmp_path: Path
) -> None:
    cursor = tmp_path / "tail.cursor"
    await append_events(daemon, 3)
    head = await head_seq(daemon)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _TAIL_PROCESS,
        base(daemon),
        str(cursor),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(daemon.admin.encode() + b"\n")  # not in argv
        await proc.stdin.drain()
        printed: list[int] = []
        async with asyncio.timeout(10):
            while not printed or printed[-1] < head:
                printed.append(int((await proc.stdout.readline()).split()[1]))
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == ExitCode.INTERRUPTED
        assert printed == list(range(1, head + 1))
        assert cursor.read_text() == f"{head}\n"
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
