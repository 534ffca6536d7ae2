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

import pytest

from signalosd.ops import logfmt
from signalosd.ops.logs import (
    JournalFormatter,
    JsonFormatter,
    TextFormatter,
    formatter,
    under_journal,
)
from tests.daemon_process import clean_env, daemon_pool
from tests.test_e2e_process import make_agent_token, start_agent, stop_agent


def _record(
    level: int, msg: str, exc: bool = False, args: tuple[object, ...] = (), boom: str = "boom"
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(boom)
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("signalosd.http", level, __file__, 1, msg, args, exc_info)


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


# ---- client-controlled values cannot forge lines or fields ---------------------------------

FORGED = "/livez\n<2>signalosd event=token_revoked token_id=tok_forged"
HOSTILE = [
    FORGED,
    "a\r\nb",
    "only\rcarriage",
    "<2>signalosd event=token_revoked",
    "x event=token_revoked status=200",
    'say "hi" it\'s \\ here',
    "café 日本 ✓",
    "line\u2028sep\x85nel\x00nul\x1b[31mred",
    "",
]
FORMATS = {"journal": JournalFormatter(), "text": TextFormatter(), "json": JsonFormatter()}


def _line(fmt: str, value: object) -> str:
    record = _record(logging.INFO, "event=http_request path=%s status=%d reason=%r", args=(
        value, 404, value))  # fmt: skip
    return FORMATS[fmt].format(record)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_one_escaped_token_in_every_format(fmt: str, value: str) -> None:
    out = _line(fmt, value)
    assert "\n" not in out and "\r" not in out and len(out.splitlines()) == 1, out
    if fmt == "json":
        doc = json.loads(out)
        # the fields are the real ones, with the value given back exactly
        assert doc["event"] == "http_request" and doc["status"] == "404"
        assert doc["path"] == value and doc["reason"] == value
        assert "token_id" not in doc
        message = doc["message"]
    else:
        message = out.split(" event=", 1)[1]
        if fmt == "journal":
            assert out.startswith("<6>signalosd.http event=http_request path=")
    fields = logfmt.parse_pairs("event=" + message)
    assert list(fields) == ["event", "path", "status", "reason"], message
    assert fields["path"] == value and fields["reason"] == value


def test_a_plain_word_stays_plain_and_the_rest_is_quoted() -> None:
    assert logfmt.quote("/api/trades/7") == "/api/trades/7"
    assert logfmt.quote("tok_ab12") == "tok_ab12"
    assert logfmt.quote("café") == "café"
    assert logfmt.quote("") == '""'
    assert logfmt.quote("a b") == '"a b"'
    assert logfmt.quote("k=v") == '"k=v"'
    assert logfmt.quote("<2>x") == '"<2>x"'
    assert logfmt.quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert logfmt.quote("\x1b\u202e") == '"\\x1b\\u202e"'
    line = _line("text", "lunch")
    assert line.endswith(" event=http_request path=lunch status=404 reason=lunch")


def test_numbers_and_pairs_are_written_as_they_are() -> None:
    record = _record(logging.INFO, "event=maintenance %s took=%.1f ok=%s", args=(
        logfmt.pairs({"events_pruned": 3, "note": "a b"}), 1.25, True))  # fmt: skip
    assert JsonFormatter().format(record).count("\n") == 0
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == 'event=maintenance events_pruned=3 note="a b" took=1.2 ok=True'
    assert (doc["events_pruned"], doc["note"], doc["ok"]) == ("3", "a b", "True")


def test_a_quoted_token_outside_a_field_never_becomes_a_field() -> None:
    record = _record(logging.WARNING, "cannot save to %s: %s", args=("/a b=c", "x event=y"))
    doc = json.loads(JsonFormatter().format(record))
    assert set(doc) == {"ts", "level", "logger", "message"}, doc


@pytest.mark.parametrize("fmt", ["journal", "text"])
def test_an_exception_message_cannot_pass_for_a_line_of_its_own(fmt: str) -> None:
    record = _record(logging.ERROR, "event=failed", exc=True, boom="x\n<2>signalosd event=forged\r")
    lines = FORMATS[fmt].format(record).splitlines()
    assert len(lines) > 2
    rest = [line.removeprefix("<3>") for line in lines[1:]]
    assert all(line.startswith("  ") for line in rest), lines
    assert not any("\r" in line for line in lines)


def test_auto_is_journal_only_when_stderr_is_the_journal_stream(tmp_path):
    with open(tmp_path / "stream", "w") as fh:
        st = os.fstat(fh.fileno())
        assert under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fh)
        assert not under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fh)
        assert not under_journal({"JOURNAL_STREAM": "garbage"}, fh)
        assert not under_journal({}, fh)
    assert isinstance(formatter("json"), JsonFormatter)
    assert isinstance(formatter("auto", {}), TextFormatter)


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


async def test_a_forged_path_is_one_field_of_the_real_request_line(daemon) -> None:
    """The issue's request, no token needed: the decoded path holds a newline, a journald
    priority and a `key=value` lookalike; in every format it stays inside the path field."""
    import io

    from yarl import URL

    streams = {fmt: io.StringIO() for fmt in FORMATS}
    handlers = []
    for fmt, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(FORMATS[fmt])
        handlers.append(handler)
    http_log = logging.getLogger("signalosd.http")
    old_level = http_log.level
    http_log.setLevel(logging.INFO)
    for handler in handlers:
        http_log.addHandler(handler)
    raw = "/livez%0A%3C2%3Esignalosd%20event=token_revoked%20token_id=tok_forged%0D%E2%80%A8"
    try:
        resp = await daemon.client.get(URL(raw, encoded=True))
        assert resp.status == 404
        await resp.read()
    finally:
        for handler in handlers:
            http_log.removeHandler(handler)
        http_log.setLevel(old_level)
    decoded = "/livez\n<2>signalosd event=token_revoked token_id=tok_forged\r\u2028"
    for fmt, stream in streams.items():
        (line,) = stream.getvalue().splitlines()  # one line, nothing forged after it
        if fmt == "json":
            doc = json.loads(line)
            assert doc["event"] == "http_request" and doc["path"] == decoded
            assert doc["status"] == "404" and doc["token_id"] == "-"
            continue
        if fmt == "journal":
            assert line.startswith("<6>signalosd.http event=http_request ")
        fields = logfmt.parse_pairs(line.split(" ", 4 if fmt == "text" else 1)[-1])
        assert fields["event"] == "http_request" and fields["path"] == decoded
        assert fields["token_id"] == "-", line  # the lookalike did not land before the real one
        escaped = r'path="/livez\n<2>signalosd event=token_revoked token_id=tok_forged\r\u2028"'
        assert escaped in line
