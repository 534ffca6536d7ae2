"""Signals: list what came in, send one by hand (`signal send`).

A signal becomes an entry only while trading is running; a skipped signal (paused or halted)
exits 1: the daemon stored it, but no trade was opened.
"""

from __future__ import annotations

from typing import Any, get_args

import click

from signalos_cli.commands.queued import finish, wait_options
from signalos_cli.context import App, json_option, pass_app
from signalos_cli.errors import Failed
from signalos_cli.output import Cell, Output, num, when
from signalosd.models import Side, Signal

SIGNAL_STATUSES = [str(s) for s in get_args(Signal.model_fields["status"].annotation)]


@click.command()
@click.option("--status", type=click.Choice(SIGNAL_STATUSES), help="Only these.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@pass_app
def signals(app: App, status: str | None, limit: int) -> None:
    """Signals received, newest first."""
    query = {"limit": str(limit)} | ({"status": status} if status else {})
    doc = app.client().get("/api/signals", query)
    app.out.emit(doc, lambda: _table(app.out, doc["signals"]))


@click.group()
def signal() -> None:
    """Send a trading signal by hand."""


@signal.command()
@click.option("--symbol", required=True, metavar="SYMBOL", help="e.g. EURUSD.")
@click.option("--side", required=True, type=click.Choice([s.value for s in Side]))
@click.option("--volume", required=True, type=float, metavar="LOTS")
@click.option("--entry", type=float, metavar="PRICE", help="The signal's entry price.")
@click.option("--sl", type=float, metavar="PRICE", help="Stop loss.")
@click.option("--tp", type=float, multiple=True, metavar="PRICE", help="Take profit (repeat: ≤ 5).")
@click.option("--external-id", metavar="ID", help="The source's id: a repeat is not re-queued.")
@wait_options
@json_option
@pass_app
def send(
    app: App,
    symbol: str,
    side: str,
    volume: float,
    entry: float | None,
    sl: float | None,
    tp: tuple[float, ...],
    external_id: str | None,
    wait: float | None,
) -> None:
    """Send a signal (POST /api/signals); while running it becomes an entry for the agent."""
    body: dict[str, Any] = {"symbol": symbol, "side": side, "volume": volume}
    optional = {"entry": entry, "sl": sl, "tp": list(tp) or None, "external_id": external_id}
    body |= {k: v for k, v in optional.items() if v is not None}
    body["source"] = app.settings.source
    reply = app.client().post("/api/signals", body)
    finish(app, reply, wait, _render_sent)
    if not reply.get("command"):
        sig = reply["signal"]
        raise Failed(f"signal {sig['id']} {sig['status']}: {sig.get('reason')}; no trade opened")


def _render_sent(out: Output, reply: dict[str, Any]) -> None:
    sig = reply["signal"]
    rows: list[tuple[str, Cell]] = [
        ("signal", f"{sig['id']} {sig['status']}"),
        ("trade", num(sig.get("trade_id"))),
    ]
    command = reply.get("command")
    if command:
        rows.append(("command", f"{command['type']} {command['id']} {command['status']}"))
    out.pairs(rows)
    if reply.get("duplicate"):
        out.note(f"already received as signal {sig['id']} (external id {sig['external_id']})")


def _table(out: Output, rows: list[dict[str, Any]]) -> None:
    headers = ["ID", "TIME", "SYMBOL", "SIDE", "VOLUME", "ENTRY", "SL", "TP", "STATUS", "TRADE"]
    headers += ["SOURCE", "REASON"]
    cells: list[list[Cell]] = [
        [
            str(s["id"]),
            when(s.get("created_at")),
            s["symbol"],
            s["side"],
            num(s["volume"]),
            num(s.get("entry")),
            num(s.get("sl")),
            ",".join(num(t) for t in s.get("tp") or []) or "-",
            s["status"],
            num(s.get("trade_id")),
            str(s.get("source") or "-"),
            str(s.get("reason") or ""),
        ]
        for s in rows
    ]
    out.table(headers, cells, empty="no signals")
