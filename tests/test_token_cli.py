"""`signalosd token create|list|revoke`: on the database file, with or without a running daemon.

A token made or revoked by the CLI takes effect in a running daemon at once (it checks tokens
against the database on every request), and the CLI's events reach the daemon's event log and
its live WebSocket stream, in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.daemon_process import Daemon, call, clean_env, daemon_pool, events, open_ws

CLI_TIMEOUT_S = 20


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    with daemon_pool() as start:
        yield start


def token_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalosd", "token", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=clean_env(),
    )


async def token_cli_async(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(token_cli, state_dir, *args)


def listed(state_dir: Path, *args: str) -> list[dict[str, Any]]:
    done = token_cli(state_dir, "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


async def next_event(ws: aiohttp.ClientWebSocketResponse, within: float = 5) -> dict:
    """The next event frame (skipping control frames such as pong)."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no event on the stream in time"
        msg = await ws.receive_json(timeout=left)
        if "seq" in msg:
            return msg


# ---- without a daemon ------------------------------------------------------------------------


def test_create_prints_the_token_once_and_creates_the_account(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = token_cli(
        state, "create", "--account", "desk-a", "--role", "viewer", "--label", "wall screen"
    )
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert done.stdout == secret + "\n"  # the token alone on stdout: scriptable
    assert secret.startswith("sos_")
    assert "created account desk-a" in done.stderr
    assert "shown only this once" in done.stderr
    assert secret not in done.stderr

    # A second token for the same account does not create it again.
    again = token_cli(state, "create", "--account", "desk-a", "--role", "operator")
    assert again.returncode == 0, again.stderr
    assert "created account" not in again.stderr
    assert again.stdout.strip() != secret


def test_create_json(tmp_path: Path) -> None:
    done = token_cli(
        tmp_path / "state",
        "create",
        "--account",
        "ops",
        "--role",
        "admin",
        "--label",
        "ci",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["token"].startswith("sos_") and made["id"].startswith("tok_")
    assert (made["account"], made["role"], made["label"]) == ("ops", "admin", "ci")
    assert made["account_created"] is True


def test_list_shows_tokens_without_their_secrets(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made = json.loads(
        token_cli(
            state,
            "create",
            "--account",
            "desk-a",
            "--role",
            "viewer",
            "--label",
            "wall screen",
            "--json",
        ).stdout
    )
    other = json.loads(token_cli(state, "create", "--account", "desk-b", "--json").stdout)

    table = token_cli(state, "list")
    assert table.returncode == 0, table.stderr
    assert made["id"] in table.stdout and other["id"] in table.stdout
    assert "wall screen" in table.stdout and "viewer" in table.stdout
    assert made["token"] not in table.stdout and other["token"] not in table.stdout
    assert table.stdout.splitlines()[0].split()[:3] == ["id", "account", "role"]

    rows = listed(state)
    assert {r["id"] for r in rows} == {made["id"], other["id"]}
    assert all("token" not in r and "hash" not in r for r in rows)
    assert made["token"] not in json.dumps(rows)
    only_a = listed(state, "--account", "desk-a")
    assert [r["id"] for r in only_a] == [made["id"]]

    missing = token_cli(state, "list", "--account", "nobody")
    assert missing.returncode == 1 and "account nobody not found" in missing.stderr


def test_revoke(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made = json.loads(token_cli(state, "create", "--account", "desk-a", "--json").stdout)

    done = token_cli(state, "revoke", made["id"])
    assert done.returncode == 0, done.stderr
    assert f"revoked token {made['id']}" in done.stderr
    (row,) = listed(state)
    assert row["revoked_at"] is not None

    again = token_cli(state, "revoke", made["id"])
    assert again.returncode == 0 and "already revoked" in again.stderr

    unknown = token_cli(state, "revoke", "tok_000000000000")
    assert unknown.returncode == 1
    assert "tok_000000000000 not found" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_state_dir_may_also_come_before_the_subcommand(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "signalosd",
            "--state-dir",
            str(state),
            "token",
            "create",
            "--account",
            "x",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert (state / "signalos.db").is_file()
    assert [r["account"] for r in listed(state)] == ["x"]


def test_bad_role_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = token_cli(state, "create", "--account", "desk-a", "--role", "root")
    assert done.returncode == 2
    assert "Invalid value for '--role'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (state / "signalos.db").exists()  # nothing was written


def test_bad_account_name_fails_cleanly(tmp_path: Path) -> None:
    done = token_cli(tmp_path / "state", "create", "--account", "no spaces please")
    assert done.returncode == 1
    assert "invalid account name" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unwritable_state_dir_fails_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = token_cli(blocker / "state", "create", "--account", "x")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert str(blocker / "state") in done.stderr


# ---- with a running daemon on the same state dir ---------------------------------------------


async def test_cli_tokens_take_effect_at_once_in_a_running_daemon(
    tmp_path: Path, daemons: Any
) -> None:
    state = tmp_path / "state"
    d = daemons(state)
    admin = d.admin
    async with aiohttp.ClientSession() as s:
        # A live subscriber: CLI events must reach it through the daemon, in order.
        ws, hello = await open_ws(s, d, admin)
        await ws.send_json({"type": "subscribe", "data": {}})
        head = hello["last_seq"]

        # create: works against the running daemon immediately
        done = await token_cli_async(
            state, "create", "--account", "default", "--role", "viewer", "--label", "from the cli"
        )
        assert done.returncode == 0, done.stderr
        viewer = done.stdout.strip()
        (row,) = [r for r in listed(state) if r["label"] == "from the cli"]
        token_id = row["id"]
        assert viewer not in json.dumps(listed(state))

        status, body = await call(s, "GET", f"{d.url}/api/trading/state", viewer)
        assert status == 200 and body["mode"] == "running", body
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", viewer)
        assert status == 403 and body["error"]["code"] == "forbidden"  # it is a viewer token

        created = await next_event(ws)
        assert created["type"] == "token_created" and created["seq"] == head + 1
        assert created["data"]["token_id"] == token_id
        assert created["data"]["label"] == "from the cli"

        # the daemon's own next event comes after the CLI's, with the next seq
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", admin)
        assert status == 202, body
        paused = await next_event(ws)
        assert paused["type"] == "trading_paused" and paused["seq"] == head + 2
        queued = await next_event(ws)
        assert queued["type"] == "command_queued" and queued["seq"] == head + 3

        # revoke: the running daemon refuses the token at once
        done = await token_cli_async(state, "revoke", token_id)
        assert done.returncode == 0, done.stderr
        status, body = await call(s, "GET", f"{d.url}/api/trading/state", viewer)
        assert status == 401, body
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["code"] == "unauthorized"
        assert token_id in body["error"]["message"] and "revoked" in body["error"]["message"]

        revoked = await next_event(ws)
        assert revoked["type"] == "token_revoked" and revoked["seq"] == head + 4
        assert revoked["data"]["token_id"] == token_id

        # ...and a WebSocket authentication with it is refused too
        ws2 = await s.ws_connect(f"{d.url}/ws")
        await ws2.send_json({"type": "authenticate", "data": {"token": viewer}})
        refused = await ws2.receive_json(timeout=5)
        assert refused["type"] == "error" and refused["data"]["code"] == "unauthorized"
        closed = await ws2.receive(timeout=5)
        assert closed.data == 4401
        await ws2.close()

        # The event log holds the same sequence, gapless, in order.
        log = await events(s, d, since=head)
        assert [(e["seq"], e["type"]) for e in log] == [
            (head + 1, "token_created"),
            (head + 2, "trading_paused"),
            (head + 3, "command_queued"),
            (head + 4, "token_revoked"),
        ]
        kinds = [e["type"] for e in log]
        cli_created = log[kinds.index("token_created")]
        assert cli_created["actor"]["kind"] == "local" and cli_created["actor"]["source"] == "cli"
        await ws.close()

    d.signal(signal.SIGTERM)
    assert await d.await_exit() == 0
    assert viewer not in d.output


async def test_cli_creates_an_account_while_the_daemon_runs(tmp_path: Path, daemons: Any) -> None:
    state = tmp_path / "state"
    d = daemons(state)
    async with aiohttp.ClientSession() as s:
        before = (await events(s, d))[-1]["seq"]
        done = await token_cli_async(state, "create", "--account", "desk-2", "--role", "operator")
        assert done.returncode == 0, done.stderr
        assert "created account desk-2" in done.stderr
        token = done.stdout.strip()

        status, body = await call(s, "GET", f"{d.url}/api/trading/state", token)
        assert status == 200, body
        assert body["account"] == "desk-2" and body["mode"] == "running"

        # Its own pause does not touch the default account.
        status, body = await call(s, "POST", f"{d.url}/api/trading/pause", token)
        assert status == 202 and body["account"] == "desk-2", body
        status, body = await call(s, "GET", f"{d.url}/api/trading/state", d.admin)
        assert body["mode"] == "running"

        log = await events(s, d, since=before)
        assert [e["type"] for e in log][:2] == ["account_created", "token_created"]
        assert [e["seq"] for e in log] == list(range(before + 1, before + 1 + len(log)))


@pytest.mark.parametrize("command", [["list"], ["revoke", "tok_0123456789ab"]])
def test_list_and_revoke_never_create_a_database_in_a_mistyped_state_dir(
    tmp_path: Path, command: list[str]
) -> None:
    done = token_cli(tmp_path / "typo", *command)
    assert done.returncode == 1
    assert "no database at" in done.stderr and "--state-dir" in done.stderr
    assert not (tmp_path / "typo").exists()
