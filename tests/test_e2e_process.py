"""kill -9 between accepting a close and delivering it: after a restart the agent executes it
exactly once (invariants 1 and 2, with real processes)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.daemon_process import call, clean_env, daemon_pool

SIGNAL = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}


def token_create_argv(state: Path, role: str, label: str) -> list[str]:
    """`signalosd token create` for the default account, as an operator on the host types it."""
    return [
        sys.executable,
        "-m",
        "signalosd",
        "token",
        "--state-dir",
        str(state),
        "create",
        "--account",
        "default",
        "--role",
        role,
        "--label",
        label,
    ]


def make_agent_token(state: Path, dest: Path) -> Path:
    done = subprocess.run(
        token_create_argv(state, "agent", "desk"),
        capture_output=True,
        text=True,
        timeout=20,
        env=clean_env(),
        check=True,
    )
    dest.write_text(done.stdout.strip() + "\n")
    dest.chmod(0o600)
    return dest


def start_agent(
    url: str, token_file: Path, state: Path, stderr: Any = subprocess.DEVNULL, **env: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signalos_cli",
            "agent",
            "--broker",
            "paper",
            "--url",
            url,
            "--token-file",
            str(token_file),
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(**env),
    )


def stop_agent(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


@pytest.fixture
def daemons() -> Any:
    with daemon_pool() as start:
        yield start


async def until(fn: Any, within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_close_accepted_before_kill_9_is_executed_exactly_once_after_restart(
    tmp_path: Path, daemons: Any
) -> None:
    state, agent_state = tmp_path / "state", tmp_path / "agent"
    first = daemons(state)
    token_file = make_agent_token(state, tmp_path / "agent.token")
    agents = [start_agent(first.url, token_file, agent_state)]
    try:
        async with aiohttp.ClientSession() as s:
            status, reply = await call(
                s, "POST", f"{first.url}/api/signals", first.admin, json=SIGNAL
            )
            assert status == 202, reply
            trade_id = reply["command"]["trade_id"]

            async def is_open() -> bool:
                _, t = await call(s, "GET", f"{first.url}/api/trades/{trade_id}", first.admin)
                return bool(t["status"] == "open")

            await until(is_open)
            assert stop_agent(agents[0]) == 0  # the agent goes away…
            status, reply = await call(
                s, "POST", f"{first.url}/api/trades/{trade_id}/close", first.admin
            )
            assert status == 202, reply  # …the close is accepted (committed) …
            close_id = reply["command"]["id"]
        first.kill()  # …and the daemon dies before it could deliver it

        second = daemons(state)
        agents.append(start_agent(second.url, token_file, agent_state))
        async with aiohttp.ClientSession() as s:
            status, body = await call(
                s,
                "GET",
                f"{second.url}/api/commands/{close_id}?wait=20",
                second.admin,
                timeout=aiohttp.ClientTimeout(total=30),
            )
            assert body["command"]["status"] == "succeeded", body

            async def closed() -> bool:
                _, t = await call(s, "GET", f"{second.url}/api/trades/{trade_id}", second.admin)
                return bool(t["status"] == "closed")

            await until(closed)
            _, log = await call(
                s,
                "GET",
                f"{second.url}/api/events",
                second.admin,
                params={"limit": 1000, "type": "command_succeeded"},
            )
        assert [e["data"]["command_id"] for e in log["events"]].count(close_id) == 1
        assert stop_agent(agents[1]) == 0
    finally:
        for proc in agents:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    journal = sqlite3.connect(agent_state / "agent.sqlite3")
    rows = journal.execute("SELECT status FROM executed WHERE command_id = ?", (close_id,))
    assert [r[0] for r in rows] == ["done"]  # executed once, on disk
    paper = json.loads((agent_state / "paper.json").read_text())
    assert paper["positions"] == []  # closed once: a second close would have failed
