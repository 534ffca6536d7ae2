"""`signalos tail` and `signalos ws` as real processes (the engines have their own tests)."""

from __future__ import annotations

import json


def test_tail_no_follow_json_prints_the_log_as_json_lines(run):
    assert run.process("pause", "--reason", "news").returncode == 0
    done = run.process("--json", "tail", "--no-follow", "--since", "0")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert "trading_paused" in [e["type"] for e in events]


def test_tail_type_filter_and_cursor_file(run, tmp_path):
    cursor = tmp_path / "cursor"
    run.process("pause")
    done = run.process("tail", "--no-follow", "--type", "trading_*", "--cursor-file", str(cursor))
    assert done.returncode == 0, done.stderr
    assert [line.split()[3] for line in done.stdout.splitlines()] == ["trading_paused"]
    run.process("resume")
    again = run.process("tail", "--no-follow", "--type", "trading_*", "--cursor-file", str(cursor))
    assert [line.split()[3] for line in again.stdout.splitlines()] == ["trading_resumed"]


def test_tail_since_and_n_exclude_each_other(run):
    assert run.process("tail", "--since", "1", "-n", "2").returncode == 2


def test_tail_with_a_bad_token_exits_4(run):
    done = run.process("tail", "--no-follow", env={"SIGNALOS_TOKEN": "sos_wrong"})
    assert done.returncode == 4


def test_ws_tester_sends_stdin_lines_and_prints_frames(run):
    done = run.process("ws", input='{"type": "ping", "data": {"timestamp": "t1"}}\n')
    assert done.returncode == 0, done.stderr
    frames = [json.loads(line) for line in done.stdout.splitlines()]
    assert frames[0]["type"] == "authenticated"
    assert any(f["type"] == "pong" and f["data"]["timestamp"] == "t1" for f in frames)
