"""`signalos webhooks add|list|remove` against a live daemon, with an admin token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_harness import Cli

URL = "https://hooks.slack.com/services/T0/B0/secret-part"


@pytest.fixture
def admin(live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(live.url, live.admin, tmp_path, monkeypatch)


def test_add_prints_the_secret_once_and_list_shows_it_redacted(admin: Cli) -> None:
    added = admin("webhooks", "add", URL, "--format", "slack", "--event", "emergency_stop",
                  "--event", "risk_*", "--account", "default")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert URL in added.stdout and "secret" in added.stdout and "shown only now" in added.stderr
    secret = next(
        line.split()[1] for line in added.stdout.splitlines() if line.startswith("secret")
    )
    listed = admin("webhooks", "list")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["ID", "URL", "FORMAT"]
    assert "https://hooks.slack.com/…" in listed.stdout and "emergency_stop,risk_*" in listed.stdout
    assert secret not in listed.stdout and "secret-part" not in listed.stdout


def test_json_output_and_remove(admin: Cli) -> None:
    added = admin("--json", "webhooks", "add", "http://127.0.0.1:9/x", "--secret", "x" * 20)
    doc = json.loads(added.stdout)
    assert doc["secret"] == "x" * 20 and doc["webhook"]["format"] == "json"
    assert doc["webhook"]["events"] == ["emergency_stop", "risk_*", "agent_disconnected",
                                        "command_failed"]  # fmt: skip
    webhook_id = str(doc["webhook"]["id"])
    listed = json.loads(admin("webhooks", "list", "--json").stdout)
    assert [str(h["id"]) for h in listed["webhooks"]] == [webhook_id]
    assert "secret" not in listed["webhooks"][0]
    removed = admin("webhooks", "remove", webhook_id)
    assert removed.exit_code == 0 and f"webhook {webhook_id} removed" in removed.stdout
    assert json.loads(admin("--json", "webhooks", "list").stdout) == {"webhooks": []}
    again = admin("webhooks", "remove", webhook_id)
    assert again.exit_code == 1 and "not_found" in again.stderr


def test_a_bad_url_exits_1_naming_the_field(admin: Cli) -> None:
    result = admin("webhooks", "add", "ftp://example.com/x")
    assert result.exit_code == 1
    assert "url" in result.stderr and "validation_error" in result.stderr
    assert admin("webhooks", "add", "http://x.example", "--format", "xml").exit_code == 2


def test_an_operator_token_is_refused_with_exit_4(run: Cli) -> None:
    result = run("webhooks", "list")
    assert result.exit_code == 4 and "admin" in result.stderr
