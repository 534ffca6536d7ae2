"""Settings: the example file lists every setting, the four layers merge in order, and every bad
value is reported with its key and where it came from (never a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from signalosd.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "signalosd.example.toml"


def write(tmp_path: Path, text: str, name: str = "signalosd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    return subprocess.run(
        [sys.executable, "-m", "signalosd", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=clean | (env or {}),
    )


# ---- the example file -----------------------------------------------------------------------


def test_example_lists_every_setting_with_its_default() -> None:
    with EXAMPLE.open("rb") as fh:
        example = tomllib.load(fh)
    assert set(example) == set(Settings.model_fields), (
        "config/signalosd.example.toml must list exactly the fields of Settings; "
        f"missing {sorted(set(Settings.model_fields) - set(example))}, "
        f"unknown {sorted(set(example) - set(Settings.model_fields))}"
    )
    defaults = Settings().model_dump(mode="json")
    for key, value in example.items():
        assert value == defaults[key], f"{key}: example has {value!r}, default is {defaults[key]!r}"
        assert type(value) is type(defaults[key]), f"{key}: write {defaults[key]!r} in the example"


def test_example_comments_every_setting() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#") and "=" in line:
            key = line.split("=", 1)[0].strip()
            assert i > 0 and lines[i - 1].startswith("# "), f"{key} needs a one-line comment above"


def test_example_file_loads_as_settings() -> None:
    assert load_settings(EXAMPLE, env={}) == Settings()


# ---- precedence ------------------------------------------------------------------------------


def test_defaults_without_file_env_or_flags(tmp_path: Path) -> None:
    # An explicit empty file, so a real /etc/signalos/signalosd.toml cannot leak into the test.
    settings = load_settings(write(tmp_path, ""), env={}, flags={})
    assert settings == Settings()


def test_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 9001\nlog_level = "debug"\nstate_dir = "/srv/sos"\n')
    settings = load_settings(path, env={})
    assert settings.port == 9001
    assert settings.log_level == "debug"
    assert settings.state_dir == Path("/srv/sos")
    assert settings.host == "127.0.0.1"  # untouched keys keep their default


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9001\nshutdown_timeout_s = 4.0\n")
    env = {"SIGNALOS_PORT": "9002", "SIGNALOS_WS_QUEUE_MAX": "50"}
    settings = load_settings(path, env=env)
    assert settings.port == 9002
    assert settings.ws_queue_max == 50
    assert settings.shutdown_timeout_s == 4.0


def test_flags_override_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 9001\nhost = "10.0.0.1"\n')
    env = {"SIGNALOS_PORT": "9002", "SIGNALOS_HOST": "10.0.0.2"}
    settings = load_settings(path, env=env, flags={"port": 9003, "host": None})
    assert settings.port == 9003
    assert settings.host == "10.0.0.2"  # a flag left unset (None) does not override


def test_env_names_other_than_settings_are_ignored(tmp_path: Path) -> None:
    # SIGNALOS_URL and SIGNALOS_TOKEN belong to the CLI; they must not break the daemon.
    env = {"SIGNALOS_URL": "http://x", "SIGNALOS_TOKEN": "sos_x", "OTHER_PORT": "1"}
    assert load_settings(write(tmp_path, ""), env=env) == Settings()


def test_signalos_config_env_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9005\n")
    assert load_settings(None, env={"SIGNALOS_CONFIG": str(path)}).port == 9005


def test_explicit_path_wins_over_signalos_config_env(tmp_path: Path) -> None:
    chosen = write(tmp_path, "port = 9006\n", "a.toml")
    other = write(tmp_path, "port = 9007\n", "b.toml")
    assert load_settings(chosen, env={"SIGNALOS_CONFIG": str(other)}).port == 9006


# ---- errors name the key and the source ----------------------------------------------------


def test_out_of_range_value_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 70000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "port" in message and str(path) in message and "70000" in message
    assert "\n" not in message


def test_bad_value_in_env_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""), env={"SIGNALOS_WS_HEARTBEAT_S": "often"})
    message = str(info.value)
    assert "ws_heartbeat_s" in message and "SIGNALOS_WS_HEARTBEAT_S" in message


def test_bad_flag_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""), env={}, flags={"port": -1})
    assert "port" in str(info.value) and "--port" in str(info.value)


def test_bad_log_level_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'log_level = "loud"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "log_level" in str(info.value) and str(path) in str(info.value)


def test_unknown_key_is_reported_as_unknown_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "prot = 8080\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "unknown setting" in message and "prot" in message and str(path) in message
    assert "port" in message  # the known settings are listed, so the typo is easy to spot


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 70000\nws_queue_max = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "port" in str(info.value) and "ws_queue_max" in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "port = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "not valid TOML" in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "does not exist" in str(info.value) and str(path) in str(info.value)


# ---- signalosd --check-config ----------------------------------------------------------------


def test_check_config_prints_the_settings_as_json(tmp_path: Path) -> None:
    path = write(tmp_path, f'port = 9010\nstate_dir = "{tmp_path / "state"}"\n')
    done = run_cli("--check-config", "--config", str(path), env={"SIGNALOS_WS_QUEUE_MAX": "77"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert set(shown) == set(Settings.model_fields)
    assert shown["port"] == 9010
    assert shown["ws_queue_max"] == 77
    assert shown["state_dir"] == str(tmp_path / "state")
    assert not (tmp_path / "state").exists()  # checking starts nothing and creates nothing


def test_check_config_flag_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9010\n")
    done = run_cli("--check-config", "--config", str(path), "--port", "9011")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["port"] == 9011


def test_check_config_of_the_example_file() -> None:
    done = run_cli("--check-config", "--config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == Settings().model_dump(mode="json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port = 70000\n", "port"),
        ("no_such_setting = 1\n", "unknown setting 'no_such_setting'"),
        ("port = [\n", "not valid TOML"),
    ],
)
def test_check_config_with_a_bad_file_exits_2_with_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    done = run_cli("--check-config", "--config", str(path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0] and str(path) in lines[0]
    assert lines[0].startswith("signalosd: configuration error:")


def test_check_config_with_a_bad_env_value_exits_2(tmp_path: Path) -> None:
    done = run_cli(
        "--check-config", "--config", str(write(tmp_path, "")), env={"SIGNALOS_PORT": "eighty"}
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "SIGNALOS_PORT" in done.stderr and "port" in done.stderr


def test_check_config_with_a_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    done = run_cli("--check-config", "--config", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr and "does not exist" in done.stderr
