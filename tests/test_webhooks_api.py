"""POST/GET/DELETE /api/webhooks: admin only, validated (bad input changes nothing), audited,
and the secret shown once: never listed, logged or written to the event log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from signalosd.alerts import urls
from signalosd.config import Settings
from signalosd.models import Role
from tests.conftest import Harness, make_settings

HOOK = "https://hooks.example.com/services/T000/B000/very-secret-path?token=abc"
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_max=3)


async def _create(daemon: Harness, body: dict[str, Any], token: str | None = None) -> Any:
    return await daemon.request("POST", "/api/webhooks", token or daemon.admin, json=body)


async def _nothing_created(daemon: Harness) -> None:
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    assert listed["webhooks"] == []
    assert not [e for e in await daemon.events() if e["type"].startswith("webhook_")]


async def test_create_replies_once_with_the_full_url_and_the_secret(daemon: Harness) -> None:
    status, reply = await _create(daemon, {"url": HOOK, "secret": SECRET, "format": "slack"})
    assert status == 201, reply
    assert reply["url"] == HOOK and reply["secret"] == SECRET
    hook = reply["webhook"]
    assert hook["url"] == "https://hooks.example.com/…"
    assert hook["format"] == "slack" and hook["has_secret"] is True
    assert hook["events"] == ["emergency_stop", "risk_*", "agent_disconnected", "command_failed"]
    assert hook["account"] is None and hook["failures"] == 0 and hook["pending"] == 0
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    assert listed["webhooks"] == [hook]


async def test_without_a_secret_one_is_generated_and_returned_once(daemon: Harness) -> None:
    _, reply = await _create(daemon, {"url": "http://127.0.0.1:9/x"})
    assert len(reply["secret"]) >= 40 and reply["webhook"]["has_secret"] is True
    _, other = await _create(daemon, {"url": "http://127.0.0.1:9/x"})
    assert other["secret"] != reply["secret"]


async def test_the_cursor_starts_at_the_creation_so_only_new_events_are_sent(
    daemon: Harness,
) -> None:
    await daemon.request("POST", "/api/trading/pause", daemon.admin)
    _, reply = await _create(daemon, {"url": "http://127.0.0.1:9/x", "events": ["trading_*"]})
    created = [e for e in await daemon.events() if e["type"] == "webhook_created"]
    assert reply["webhook"]["delivered_seq"] == created[-1]["seq"]
    assert reply["webhook"]["pending"] == 0


async def test_creation_and_deletion_are_audited_without_the_secret(
    daemon: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, reply = await _create(daemon, {"url": HOOK, "secret": SECRET, "account": "default"})
    webhook_id = reply["webhook"]["id"]
    status, deleted = await daemon.request("DELETE", f"/api/webhooks/{webhook_id}", daemon.admin)
    assert status == 200 and deleted["deleted"] is True
    assert deleted["webhook"]["url"] == "https://hooks.example.com/…"
    events = [e for e in await daemon.events() if e["type"].startswith("webhook_")]
    assert [e["type"] for e in events] == ["webhook_created", "webhook_deleted"]
    created = events[0]
    assert created["account"] == "default" and created["data"]["webhook_id"] == webhook_id
    assert created["data"]["url"] == "https://hooks.example.com/…"
    assert created["actor"]["kind"] == "token" and created["actor"]["role"] == "admin"
    assert events[1]["data"] == {"webhook_id": webhook_id, "url": "https://hooks.example.com/…"}
    _, raw = await daemon.request("GET", "/api/events?since=0&limit=1000", daemon.admin)
    for secret in (SECRET, "very-secret-path", "token=abc"):
        assert secret not in str(raw)
        assert secret not in caplog.text
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    assert listed["webhooks"] == []


async def test_the_listing_never_holds_the_secret_or_the_urls_path(daemon: Harness) -> None:
    await _create(daemon, {"url": HOOK, "secret": SECRET})
    resp = await daemon.client.get(
        "/api/webhooks", headers={"Authorization": f"Bearer {daemon.admin}"}
    )
    raw = await resp.text()
    assert "has_secret" in raw
    assert SECRET not in raw and "very-secret-path" not in raw and "token=abc" not in raw


BAD = [
    ({"url": "ftp://example.com/x"}, "url", "scheme"),
    ({"url": "javascript:alert(1)"}, "url", "scheme"),
    ({"url": "example.com/hook"}, "url", "scheme"),
    ({"url": "file:///etc/passwd"}, "url", "scheme"),
    ({"url": "http://user:pw@example.com/x"}, "url", "user info"),
    ({"url": "http://example.com/x#frag"}, "url", "fragment"),
    ({"url": "http:///nohost"}, "url", "host"),
    ({"url": "http://example.com:99999/"}, "url", "parsed"),
    ({"url": "http://example.com/a b"}, "url", "spaces"),
    ({"url": "http://example.com/" + "a" * 2040}, "url", "2048"),
    ({"url": ""}, "url", "at least 1"),
    ({"url": "http://example.com/", "format": "xml"}, "format", "'json'"),
    ({"url": "http://example.com/", "events": ["trade("]}, "events", "contains"),
    ({"url": "http://example.com/", "events": []}, "events", "at least 1"),
    ({"url": "http://example.com/", "events": ["x" * 65]}, "events", "64"),
    ({"url": "http://example.com/", "secret": "short"}, "secret", "at least 16"),
    ({"url": "http://example.com/", "account": "nope"}, "account", "no account"),
    ({"url": "http://example.com/", "colour": "red"}, "colour", "Extra"),
    ({"url": 42}, "url", "string"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD, ids=[str(b[0])[:60] for b in BAD])
async def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(
    daemon: Harness, body: dict[str, Any], field: str, words: str
) -> None:
    status, reply = await _create(daemon, body)
    assert status == 422, reply
    error = reply["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert words in error["message"], error["message"]
    await _nothing_created(daemon)


async def test_the_number_of_webhooks_is_capped_with_a_clear_error(daemon: Harness) -> None:
    for _ in range(3):  # webhook_max = 3 here
        assert (await _create(daemon, {"url": "http://127.0.0.1:9/x"}))[0] == 201
    status, reply = await _create(daemon, {"url": "http://127.0.0.1:9/x"})
    assert status == 409, reply
    assert "webhook_max" in reply["error"]["message"] and reply["error"]["details"] == {"max": 3}
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    assert len(listed["webhooks"]) == 3


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.AGENT, Role.METRICS])
async def test_only_an_admin_may_manage_webhooks(daemon: Harness, role: Role) -> None:
    _, made = await _create(daemon, {"url": "http://127.0.0.1:9/x"})
    token = await daemon.token(role)
    for method, path, body in (
        ("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/y"}),
        ("GET", "/api/webhooks", None),
        ("DELETE", f"/api/webhooks/{made['webhook']['id']}", None),
    ):
        status, reply = await daemon.request(method, path, token, json=body)
        assert status == 403, (method, reply)
        assert reply["error"]["code"] == "forbidden" and "admin" in reply["error"]["message"]
    _, listed = await daemon.request("GET", "/api/webhooks", daemon.admin)
    assert [h["id"] for h in listed["webhooks"]] == [made["webhook"]["id"]]


@pytest.mark.parametrize("ident", ["999", "abc", "-1"])
async def test_deleting_an_unknown_webhook_is_404_and_changes_nothing(
    daemon: Harness, ident: str
) -> None:
    status, reply = await daemon.request("DELETE", f"/api/webhooks/{ident}", daemon.admin)
    assert status == 404 and reply["error"]["code"] == "not_found", reply
    await _nothing_created(daemon)


async def test_an_admin_of_another_account_sees_and_manages_every_webhook(
    daemon: Harness,
) -> None:
    other_admin = await daemon.token(Role.ADMIN, account="prop-2")
    _, made = await _create(daemon, {"url": "http://127.0.0.1:9/x", "account": "default"})
    _, listed = await daemon.request("GET", "/api/webhooks", other_admin)
    assert [h["account"] for h in listed["webhooks"]] == ["default"]
    path = f"/api/webhooks/{made['webhook']['id']}"
    assert (await daemon.request("DELETE", path, other_admin))[0] == 200


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T/B/x", "https://hooks.slack.com/…"),
        ("https://api.telegram.org/bot123:ABC/sendMessage?chat_id=5", "https://api.telegram.org/…"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("HTTP://Example.COM:443/?q=1", "http://example.com:443/…"),
        ("http://[::1]:9000/hook", "http://[::1]:9000/…"),
    ],
)
def test_redaction_keeps_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert urls.problem(url) is None
    assert urls.redact(url) == shown
