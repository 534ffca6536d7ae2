"""`signalos agent` as a whole process, against the fake /ws/agent server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.test_agent_support import TOKEN, WAIT, FakeDaemon

MAIN = "from signalos_cli.cli import main; main()"


@pytest.fixture
async def fake(aiohttp_server):
    return await FakeDaemon.start(aiohttp_server)


async def _agent(tmp_path, *args: str, **env: str) -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", MAIN, "agent", "--broker", "paper",
        "--state-dir", str(tmp_path / "agent"), *args,
        env=clean | env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), WAIT * 2)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_the_connection_normally_and_exits_0(fake, tmp_path, signum):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    proc = await _agent(tmp_path, "--url", fake.url, "--token-file", str(token_file))
    conn = await asyncio.wait_for(fake.conn(), WAIT * 2)
    await conn.wait_for("sync_snapshot")
    proc.send_signal(signum)
    code, err = await _finish(proc)

    assert code == 0, err
    assert conn.ws.close_code == 1000
    assert "agent: connected" in err and "agent: stopped" in err
    assert TOKEN not in err
    assert (tmp_path / "agent" / "paper.json").exists()
    assert (tmp_path / "agent" / "agent.sqlite3").exists()


async def test_a_refused_token_exits_4(fake, tmp_path):
    proc = await _agent(tmp_path, "--url", fake.url, SIGNALOS_TOKEN="wrong")
    code, err = await _finish(proc)
    assert code == 4, err
    assert "refused the agent token" in err
    assert len(fake.conns) == 1


async def test_no_token_is_a_usage_error(tmp_path):
    code, err = await _finish(await _agent(tmp_path))
    assert code == 2 and "no agent token" in err
