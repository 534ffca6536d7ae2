"""`signalos agent` as a whole process, against the fake /ws/agent server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fake_daemon import TOKEN, WAIT, FakeDaemon

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


def test_the_default_state_dir_is_one_absolute_place_per_user(tmp_path, monkeypatch):
    from signalos_cli.commands.agent import default_state_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = tmp_path / "home"
    assert default_state_dir({}, windows=False) == home / ".local/state/signalos/agent"
    xdg = {"XDG_STATE_HOME": "/xdg/state"}
    assert default_state_dir(xdg, windows=False) == Path("/xdg/state/signalos/agent")
    relative = {"XDG_STATE_HOME": "var"}  # the XDG spec: a relative path is ignored
    assert default_state_dir(relative, windows=False) == home / ".local/state/signalos/agent"
    unit = xdg | {"STATE_DIRECTORY": "/var/lib/signalos-agent:/var/lib/other"}
    assert default_state_dir(unit, windows=False) == Path("/var/lib/signalos-agent")
    local = {"LOCALAPPDATA": "/appdata/local"}
    assert default_state_dir(local, windows=True) == Path("/appdata/local/signalos/agent")
    assert default_state_dir({}, windows=True) == home / "AppData/Local/signalos/agent"


async def test_without_state_dir_the_journal_is_not_kept_where_the_agent_started(fake, tmp_path):
    """Issue 9 §7: `./var/agent` followed the current directory, so an agent restarted from
    elsewhere forgot which commands it had executed and that it was halted."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    env = clean | {"XDG_STATE_HOME": str(tmp_path / "xdg"), "SIGNALOS_TOKEN": TOKEN}
    env.pop("STATE_DIRECTORY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MAIN, "agent", "--broker", "paper", "--url", fake.url,
        env=env, cwd=elsewhere, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    conn = await asyncio.wait_for(fake.conn(), WAIT * 2)
    await conn.wait_for("sync_snapshot")
    proc.send_signal(signal.SIGTERM)
    code, err = await _finish(proc)
    assert code == 0, err
    state = tmp_path / "xdg" / "signalos" / "agent"
    assert (state / "agent.sqlite3").exists() and (state / "paper.json").exists()
    assert not (elsewhere / "var").exists()
