"""`signalos` as a real process: what it imports, terminals (prompts, colour), stdin that is
not a terminal, exit codes, and Ctrl-C."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest

from signalosd import keys
from tests.cli_harness import WAIT, Cli

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on_terminal(
    run: Cli, *args: str, answer: bytes = b"", stdout_tty: bool = False, **env: str
) -> tuple[int, str, str]:
    """Run with stdin (and optionally stdout) on a pseudo-terminal; type `answer`."""
    master, slave = pty.openpty()
    full = dict(os.environ) | run.env(**env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "signalos_cli", *args],
        stdin=slave,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
        cwd=run.cwd,
    )
    os.close(slave)
    if answer:
        os.write(master, answer)
    try:
        out, err = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    seen = b""
    if stdout_tty:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            seen += chunk
    os.close(master)
    stdout = seen.decode() if stdout_tty else out.decode()
    return proc.returncode, stdout, err.decode()


@pytest.mark.parametrize(
    "args",
    [["stop"], ["pause"], ["status"], ["trades"], ["close", "1", "--yes"]],
)
def test_one_shot_commands_import_neither_aiohttp_nor_pydantic(run, args):
    result = run.process(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "signalos_cli.cli" in imported  # the import log was captured
    heavy = {m for m in imported if m.split(".")[0] in ("aiohttp", "pydantic", "pydantic_core")}
    assert heavy == set()


def test_stdin_not_a_terminal_close_without_yes_exits_2_and_sends_nothing(run, live):
    trade_id = live.add_trade()
    result = run.process("close", str(trade_id), stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "pass --yes" in result.stderr and result.stdout == ""
    assert live.commands() == []


@pytest.mark.parametrize(("answer", "code", "queued"), [(b"n\n", 1, 0), (b"y\n", 0, 1)])
def test_close_on_a_terminal_asks_first(run, live, answer, code, queued):
    trade_id = live.add_trade()
    rc, _, err = on_terminal(run, "close", str(trade_id), answer=answer)
    assert rc == code, err
    assert f"Close trade {trade_id}: buy 0.1 EURUSD" in err  # the question is on stderr
    assert len(live.commands("close_trade")) == queued


def test_stop_never_asks_even_on_a_terminal(run, live):
    rc, out, err = on_terminal(run, "stop", "--flatten")
    assert rc == 0, err
    assert "halted" in out and "?" not in err
    assert len(live.commands("emergency_stop")) == 1


def test_colour_on_a_terminal_but_not_with_no_color_and_never_in_a_pipe(run):
    _, coloured, _ = on_terminal(run, "status", stdout_tty=True)
    _, plain, _ = on_terminal(run, "status", stdout_tty=True, NO_COLOR="1")
    piped = run.process("status")
    assert ANSI.search(coloured) and "running" in coloured
    assert not ANSI.search(plain) and "running" in plain
    assert not ANSI.search(piped.stdout) and "running" in piped.stdout


def test_exit_codes_of_the_real_process(run, live):
    assert run.process("status").returncode == 0
    assert run.process("--retries", "0", "--url", "http://127.0.0.1:9", "stop").returncode == 3
    assert run.process("status", env={"SIGNALOS_TOKEN": "wrong"}).returncode == 4
    assert run.process("trade", "42").returncode == 1
    assert run.process("trade", "not-a-number").returncode == 2


def test_ctrl_c_while_waiting_exits_130_and_says_how_to_follow_the_command(run, live):
    full = dict(os.environ) | run.env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "signalos_cli", "pause", "--wait", "--timeout", "30"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
        cwd=run.cwd,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not live.commands("pause") and time.monotonic() < deadline:
            time.sleep(0.02)
        waiters = live.app[keys.WAITERS]
        command_id = live.commands("pause")[0]["id"]
        while not waiters.waiting(command_id) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the CLI's long-poll has reached the daemon
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    command_id = live.commands("pause")[0]["id"]
    assert f"signalos commands {command_id} --wait" in err
    assert "interrupted" in err


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(run, shell):
    script = run.process(env={"_SIGNALOS_COMPLETE": f"{shell}_source"})
    assert script.returncode == 0 and "_SIGNALOS_COMPLETE" in script.stdout


def test_shell_completion_completes_command_names(run):
    env = {"_SIGNALOS_COMPLETE": "bash_complete", "COMP_WORDS": "signalos st", "COMP_CWORD": "1"}
    words = run.process(env=env)
    assert words.stdout.split() == ["plain,status", "plain,stop", "plain,stealth"]
