"""Outgoing webhooks from the shell (admin token): `webhooks add|list|remove` (docs/alerts.md).

`add` prints the webhook's secret: the daemon shows it in this one reply and never again, so
the person configuring the receiver copies it from here. The format choices and the default
event globs come from the daemon's models (one spelling for both sides).
"""

from __future__ import annotations

from typing import Any

import click

from signalos_cli.client import path_part
from signalos_cli.context import App, json_option, pass_app
from signalos_cli.output import Cell, Output, num, when
from signalosd.models.webhooks import DEFAULT_EVENTS, WebhookFormat


@click.group()
def webhooks() -> None:
    """Outgoing webhooks: alerts to Slack, Discord, Telegram, ntfy or your own URL (admin)."""


@webhooks.command()
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="GLOB",
    help=f"Event types to send (repeat; * wildcard) [default: {' '.join(DEFAULT_EVENTS)}].",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice([f.value for f in WebhookFormat]),
    default=WebhookFormat.JSON.value,
    show_default=True,
    help="The body the receiver expects.",
)
@click.option("--secret", metavar="S", help="Signing secret (default: the daemon makes one).")
@click.option("--account", "account", metavar="NAME", help="Only this account's events.")
@json_option
@pass_app
def add(
    app: App,
    url: str,
    events: tuple[str, ...],
    format_: str,
    secret: str | None,
    account: str | None,
) -> None:
    """Create a webhook (POST /api/webhooks); prints its secret, shown only this once."""
    body: dict[str, Any] = {"url": url, "format": format_}
    if events:
        body["events"] = list(events)
    if secret is not None:
        body["secret"] = secret
    if account is not None:
        body["account"] = account
    reply = app.client().post("/api/webhooks", body)
    app.out.emit(reply, lambda: _created(app.out, reply))


@webhooks.command(name="list")
@json_option
@pass_app
def list_(app: App) -> None:
    """Every webhook and how its delivery stands (GET /api/webhooks)."""
    doc = app.client().get("/api/webhooks")
    app.out.emit(doc, lambda: _table(app.out, doc["webhooks"]))


@webhooks.command()
@click.argument("webhook_id", metavar="ID")
@json_option
@pass_app
def remove(app: App, webhook_id: str) -> None:
    """Delete a webhook (DELETE /api/webhooks/{id})."""
    reply = app.client().delete(f"/api/webhooks/{path_part(webhook_id)}")
    hook = reply["webhook"]
    app.out.emit(reply, lambda: app.out.line(f"webhook {hook['id']} removed ({hook['url']})"))


def _created(out: Output, reply: dict[str, Any]) -> None:
    hook = reply["webhook"]
    out.pairs(
        [
            ("webhook", str(hook["id"])),
            ("url", reply["url"]),
            ("format", hook["format"]),
            ("events", " ".join(hook["events"])),
            ("account", hook["account"] or "every account"),
            ("secret", reply["secret"]),
        ]
    )
    out.note("the secret is shown only now: verify X-SignalOS-Signature with it (docs/alerts.md)")


def _table(out: Output, rows: list[dict[str, Any]]) -> None:
    headers = ["ID", "URL", "FORMAT", "EVENTS", "ACCOUNT", "DELIVERED", "PENDING", "FAILURES"]
    headers += ["LAST ATTEMPT", "LAST ERROR"]
    cells: list[list[Cell]] = [
        [
            str(h["id"]),
            h["url"],
            h["format"],
            ",".join(h["events"]),
            h["account"] or "*",
            num(h["delivered_seq"]),
            num(h["pending"]),
            (str(h["failures"]), "red" if h["failures"] else None),
            when(h.get("last_attempt_at")),
            str(h.get("last_error") or ""),
        ]
        for h in rows
    ]
    out.table(headers, cells, empty="no webhooks")
