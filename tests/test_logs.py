"""Log formats: journal priorities under systemd, timestamped text, JSON for shippers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from signalosd.logs import JournalFormatter, JsonFormatter, formatter, under_journal
from tests.test_e2e_process import make_agent_token, start_agent, stop_agent
from tests.test_process import clean_env, daemon_pool


def _record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("signalosd.http", level, __file__, 1, msg, (), exc_info)


def test_journal_lines_carry_the_priority_and_no_timestamp():
    f = JournalFormatter()
    assert f.format(_record(logging.INFO, "event=x a=1")) == "<6>signalosd.http event=x a=1"
    assert f.format(_record(logging.WARNING, "w")).startswith("<4>")
    lines = f.format(_record(logging.ERROR, "event=failed", exc=True)).splitlines()
    assert lines[0] == "<3>signalosd.http event=failed"
    assert all(line.startswith("<3>") for line in lines)  # the traceback keeps its priority


def test_json_lines_have_the_key_value_pairs_as_fields():
    doc = json.loads(JsonFormatter().format(_record(logging.INFO, "event=command_sent id=7 x")))
    assert doc["event"] == "command_sent" and doc["id"] == "7"
    assert doc["level"] == "info" and doc["logger"] == "signalosd.http"
    assert doc["message"] == "event=command_sent id=7 x" and doc["ts"].endswith("Z")


def test_json_fields_keep_quoted_values_whole():
    line = (
        "event=notify_ready status='listening on 127.0.0.1:8787; default: running' "
        "reason=\"closed with 1000\" hint='it\\'s fine' n=3 tail='unterminated value"
    )
    doc = json.loads(JsonFormatter().format(_record(logging.INFO, line)))
    assert doc["status"] == "listening on 127.0.0.1:8787; default: running"
    assert doc["reason"] == "closed with 1000"
    assert doc["hint"] == "it\\'s fine"
    assert doc["n"] == "3"
    assert doc["tail"] == "'unterminated value"  # kept as written rather than guessed at


def test_auto_is_journal_only_when_stderr_is_the_journal_stream(tmp_path):
    with open(tmp_path / "stream", "w") as fh:
        st = os.fstat(fh.fileno())
        assert under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fh)
        assert not under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fh)
        assert not under_journal({"JOURNAL_STREAM": "garbage"}, fh)
        assert not under_journal({}, fh)
    assert isinstance(formatter("json"), JsonFormatter)
    assert type(formatter("auto", {})) is logging.Formatter


def _run_daemon(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stderr_path: Path
) -> str:
    with open(stderr_path, "w") as err:
        st = os.fstat(err.fileno())
        full = clean_env() | {
            k: v.format(dev=st.st_dev, ino=st.st_ino) for k, v in (env or {}).items()
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signalosd",
                "--port",
                "0",
                "--state-dir",
                str(tmp_path / "state"),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=full,
        )
        try:
            deadline = time.monotonic() + 15
            while "listening" not in stderr_path.read_text():
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    return stderr_path.read_text()


def test_the_daemon_logs_json_when_asked(tmp_path):
    out = _run_daemon(tmp_path, "--log-format", "json", stderr_path=tmp_path / "err")
    docs = [json.loads(line) for line in out.splitlines()]
    assert any(d.get("event") == "listening" for d in docs)
    assert any(d.get("event") == "shutdown" for d in docs)


def test_the_daemon_uses_journal_priorities_under_journald(tmp_path):
    out = _run_daemon(tmp_path, env={"JOURNAL_STREAM": "{dev}:{ino}"}, stderr_path=tmp_path / "err")
    lines = out.splitlines()
    assert lines and all(line.startswith("<") for line in lines), lines
    assert any(line.startswith("<6>signalosd event=listening") for line in lines)


def test_the_agent_under_journald_logs_each_state_once(tmp_path):
    """Under the journal the agent's "agent: connected …" terminal lines would repeat its
    event=connected log lines: only the log lines, with priorities, are written."""
    err_path = tmp_path / "agent.err"
    with daemon_pool() as start, open(err_path, "w") as err:
        d = start(tmp_path / "state")
        token = make_agent_token(tmp_path / "state", tmp_path / "agent.token")
        st = os.fstat(err.fileno())
        agent = start_agent(
            d.url, token, tmp_path / "agent", stderr=err, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"
        )
        try:
            deadline = time.monotonic() + 15
            while "event=connected" not in err_path.read_text():
                assert time.monotonic() < deadline and agent.poll() is None, err_path.read_text()
                time.sleep(0.05)
        finally:
            assert stop_agent(agent) == 0
    lines = err_path.read_text().splitlines()
    assert lines and all(line.startswith("<") for line in lines), lines
    assert sum("event=connected" in line for line in lines) == 1, lines
    assert not any("agent: " in line for line in lines), lines
