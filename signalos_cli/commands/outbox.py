"""`signalos commands ID`: a queued command's status, or (--wait) its outcome."""

from __future__ import annotations

from typing import Any

import click

from signalos_cli.client import path_part
from signalos_cli.commands.follow import check_outcome, follow, reason, status_color, wait_options
from signalos_cli.context import App, json_option, pass_app
from signalos_cli.output import Cell, Output, num, when


@click.command()
@click.argument("command_id", metavar="ID")
@wait_options
@json_option
@pass_app
def commands(app: App, command_id: str, wait: float | None) -> None:
    """A queued command's status (--wait: its outcome).

    With --wait: exit 0 succeeded, 1 failed, expired or cancelled, 124 still pending."""
    doc = app.client().get(f"/api/commands/{path_part(command_id)}")
    if wait is not None:
        doc = {"command": follow(app, doc["command"], wait)}
    app.out.emit(doc, lambda: _details(app.out, doc["command"]))
    if wait is not None:
        check_outcome(doc["command"], wait)


def _details(out: Output, c: dict[str, Any]) -> None:
    actor = c.get("issued_by") or {}
    who = " ".join(str(actor[k]) for k in ("source", "kind", "id", "label") if actor.get(k))
    rows: list[tuple[str, Cell]] = [
        ("id", str(c["id"])),
        ("type", str(c["type"])),
        ("trade", num(c.get("trade_id"))),
        ("status", (str(c["status"]), status_color(out, str(c["status"])))),
        ("params", ", ".join(f"{k}={v}" for k, v in (c.get("params") or {}).items()) or "-"),
        ("attempts", str(c.get("attempts", 0))),
        ("created", when(c.get("created_at"))),
        ("sent", when(c.get("sent_at"))),
        ("acked", when(c.get("acked_at"))),
        ("done", when(c.get("done_at"))),
        ("expires", when(c.get("expires_at"))),
        ("issued by", who or "-"),
    ]
    result = c.get("result")
    if result is not None:
        ok = result.get("ok")
        rows.append(("result", "ok" if ok else reason(c)))
    out.pairs(rows)
