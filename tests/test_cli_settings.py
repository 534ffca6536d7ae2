"""Where the CLI's settings come from (flag > environment > config file > default), the token
rules, and the exit codes of the failures that are not the daemon's refusal."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from signalos_cli import output
from signalos_cli.errors import SettingsError
from signalos_cli.settings import DEFAULT_URL, resolve
from tests.cli_harness import Cli


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def user_config(run: Cli, text: str) -> Path:
    path = run.config_home / "signalos" / "cli.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- exit codes ---------------------------------------------------------------------------------


def test_an_unreachable_daemon_exits_3_and_names_the_url(run):
    url = closed_port_url()
    result = run("--retries", "0", "stop", env={"SIGNALOS_URL": url})
    assert result.exit_code == 3
    assert f"cannot reach signalosd at {url}" in result.stderr
    assert result.stdout == ""


def test_a_refused_token_exits_4(run):
    result = run("status", env={"SIGNALOS_TOKEN": "not-a-token"})
    assert result.exit_code == 4
    assert "unauthorized" in result.stderr and "SIGNALOS_TOKEN" in result.stderr


def test_no_token_anywhere_is_a_usage_error_saying_how_to_give_one(run):
    result = run("status", env={"SIGNALOS_TOKEN": None})
    assert result.exit_code == 2
    assert "no token" in result.stderr and "--token-file" in result.stderr


def test_a_missing_token_file_is_a_usage_error_naming_it(run, tmp_path):
    result = run("--token-file", str(tmp_path / "nope"), "status")
    assert (
        result.exit_code == 2 and "nope" in result.stderr and "flag --token-file" in result.stderr
    )


def test_errors_go_to_stderr_and_json_output_stays_empty(run):
    result = run("--json", "trade", "42")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: trade 42 not found (not_found)\n"


def test_traceback_flag_shows_where_an_error_came_from(run):
    url = closed_port_url()
    plain = run("--retries", "0", "status", env={"SIGNALOS_URL": url})
    traced = run("-x", "--retries", "0", "status", env={"SIGNALOS_URL": url})
    assert "Traceback" not in plain.stderr
    assert traced.exit_code == 3 and "Traceback" in traced.stderr and "ClientError" in traced.stderr


def test_help_needs_no_token_and_lists_the_exit_codes(run):
    result = run("--help", env={"SIGNALOS_TOKEN": None})
    assert result.exit_code == 0
    for code in ("124", "130", "daemon unreachable", "not authorized"):
        assert code in result.stdout


# ---- precedence ---------------------------------------------------------------------------------


def test_flag_beats_environment_beats_config_file(run, live):
    user_config(run, f'url = "{closed_port_url()}"\nretries = 0\n')
    from_env = run("status")  # SIGNALOS_URL (the live daemon) beats the file's dead URL
    from_flag = run("--url", closed_port_url(), "status")  # the flag beats the environment
    assert from_env.exit_code == 0, from_env.stderr
    assert from_flag.exit_code == 3  # and retries = 0 from the file still applies


def test_the_config_file_beats_the_default_and_its_token_file_is_relative_to_it(run, live):
    path = user_config(run, f'url = "{live.url}"\ntoken_file = "operator.token"\n')
    (path.parent / "operator.token").write_text(live.token("operator") + "\n")
    result = run("status", env={"SIGNALOS_URL": None, "SIGNALOS_TOKEN": None})
    assert result.exit_code == 0, result.stderr


def test_the_user_config_file_beats_the_system_one(tmp_path):
    system, user = tmp_path / "system.toml", tmp_path / "user.toml"
    system.write_text('url = "http://system:1"\ntimeout = 3\n')
    user.write_text('url = "http://user:2"\n')
    s = resolve({}, {}, [system, user])
    assert (s.url, s.timeout) == ("http://user:2", 3.0)


def test_the_service_user_comes_from_the_environment_or_a_config_file(tmp_path):
    conf = tmp_path / "cli.toml"
    conf.write_text('service_user = "trader"\n')
    assert resolve({}, {}, []).service_user == "signalos"
    assert resolve({}, {}, [conf]).service_user == "trader"
    assert resolve({}, {"SIGNALOS_SERVICE_USER": "desk"}, [conf]).service_user == "desk"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = true\n", "unknown key 'colour'"),
        ("timeout = -1\n", "timeout must be a number"),
        ("retries = 1.5\n", "retries must be a whole number"),
        ("color = 'yes'\n", "color must be true or false"),
        ('url = "ftp://x"\n', "must look like http"),
        ("url = \n", "not valid TOML"),
        ('service_user = ""\n', "service_user must be a user name"),
    ],
)
def test_a_bad_config_file_is_a_usage_error_naming_file_and_key(run, text, message):
    path = user_config(run, text)
    result = run("status")
    assert result.exit_code == 2
    assert message in result.stderr and str(path) in result.stderr


def test_a_bad_environment_value_names_the_variable(run):
    result = run("status", env={"SIGNALOS_TIMEOUT": "soon"})
    assert result.exit_code == 2 and "SIGNALOS_TIMEOUT" in result.stderr


def test_defaults_use_the_local_admin_token_only_for_the_local_daemon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "admin.token").write_text("local-admin\n")
    local = resolve({}, {}, [])
    assert local.url == DEFAULT_URL and local.token() == "local-admin"
    remote = resolve({"url": "https://desk.example.com"}, {}, [])
    with pytest.raises(SettingsError, match="no token"):
        remote.token()  # the local daemon's token is never sent to another host


def test_source_header_cron_is_recorded_and_a_bad_one_is_a_usage_error(run, live):
    result = run("--json", "pause", env={"SIGNALOS_SOURCE": "cron"})
    assert json.loads(result.stdout)["command"]["issued_by"]["source"] == "cron"
    assert run("--source", "cli", "resume").exit_code == 0
    bad = run("pause", env={"SIGNALOS_SOURCE": "crontab"})
    assert bad.exit_code == 2 and "cron" in bad.stderr


def test_account_option_lets_an_admin_act_on_another_account(run, live):
    live.token("operator", account="desk2")  # creates the account
    result = run("--json", "--account", "desk2", "pause", env={"SIGNALOS_TOKEN": live.admin})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["account"] == "desk2"
    mine = json.loads(run("--json", "status").stdout)["state"]
    assert mine["account"] == "default" and mine["mode"] == "running"


# ---- colour -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "env", "tty", "expected"),
    [
        (True, {}, True, True),
        (True, {"NO_COLOR": "1"}, True, False),
        (True, {"NO_COLOR": ""}, True, True),  # no-color.org: only a non-empty value counts
        (True, {"TERM": "dumb"}, True, False),
        (False, {}, True, False),
        (True, {}, False, False),
    ],
)
def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch, setting, env, tty, expected
):
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert output.color_allowed(setting, env) is expected
