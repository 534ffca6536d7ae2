"""The trade mirror and trade management: trades, trade, close, partial-close, modify, trail.

`close` and `partial-close` ask for confirmation on a terminal; without a terminal they need
`--yes` (a script must say it means it). The daemon checks every request against its mirror
(404 unknown trade, 409 not open, 422 bad levels or volume) before anything is queued.
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from signalos_cli.commands.queued import finish, wait_options
from signalos_cli.context import App, ask, json_option, needs_terminal, pass_app, yes_option
from signalos_cli.output import Cell, Output, money, num, when


def _price_or_none(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A price, or `none` to remove the level (None also when the option was not given)."""
    if value is None or value.strip().lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a price (or 'none' to remove it)") from None


def _trade_path(trade_id: int, action: str = "") -> str:
    return f"/api/trades/{trade_id}" + (f"/{action}" if action else "")


def confirm(app: App, yes: bool, trade_id: int, action: str) -> None:
    """Ask on a terminal; refuse (exit 2) without one unless --yes was given."""
    if yes:
        return
    needs_terminal()
    client = app.client()
    trade = client.get(_trade_path(trade_id))  # 404 here, before asking
    client.close()  # an answer may take longer than the daemon keeps an idle connection
    what = (
        f"trade {trade_id}: {trade['side']} {num(trade['volume'])} {trade['symbol']}, "
        f"profit {money(trade.get('profit'))[0]}"
    )
    ask(f"{action.capitalize()} {what}?", f"not confirmed: trade {trade_id} was not touched")


@click.command()
@click.option("--all", "all_", is_flag=True, help="Closed and failed trades too.")
@click.option("--symbol", metavar="S", help="Only this symbol.")
@json_option
@pass_app
def trades(app: App, all_: bool, symbol: str | None) -> None:
    """Trades: pending, open, closing (--all: all)."""
    query = {"status": "all"} if all_ else {}
    if symbol:
        query["symbol"] = symbol
    doc = app.client().get("/api/trades", query)
    app.out.emit(doc, lambda: _table(app.out, doc["trades"]))


@click.command()
@click.argument("trade_id", type=int, metavar="ID")
@json_option
@pass_app
def trade(app: App, trade_id: int) -> None:
    """One trade, every field."""
    doc = app.client().get(_trade_path(trade_id))
    app.out.emit(doc, lambda: _details(app.out, doc))


@click.command()
@click.argument("trade_id", type=int, metavar="ID")
@yes_option
@wait_options
@json_option
@pass_app
def close(app: App, trade_id: int, yes: bool, wait: float | None) -> None:
    """Close a trade."""
    confirm(app, yes, trade_id, "close")
    finish(app, app.client().post(_trade_path(trade_id, "close")), wait, render_queued)


@click.command("partial-close")
@click.argument("trade_id", type=int, metavar="ID")
@click.option("--fraction", type=float, metavar="F", help="Part to close, 0-1 (default 0.5).")
@click.option("--volume", type=float, metavar="V", help="Lots to close.")
@yes_option
@wait_options
@json_option
@pass_app
def partial_close(
    app: App,
    trade_id: int,
    fraction: float | None,
    volume: float | None,
    yes: bool,
    wait: float | None,
) -> None:
    """Close part of a trade (default half).

    Give --fraction F (0-1) or --volume V (lots)."""
    if fraction is not None and volume is not None:
        raise click.UsageError("give --fraction or --volume, not both")
    body = {"fraction": fraction} if fraction is not None else {}
    if volume is not None:
        body = {"volume": volume}
    half = 0.5  # the daemon's default, for the question only
    part = (
        f"{num(volume)} lots of"
        if volume is not None
        else f"{fraction if fraction is not None else half:.0%} of"
    )
    confirm(app, yes, trade_id, f"close {part}")
    reply = app.client().post(_trade_path(trade_id, "partial-close"), body)
    finish(app, reply, wait, render_queued)


@click.command()
@click.argument("trade_id", type=int, metavar="ID")
@click.option(
    "--sl", metavar="PRICE", callback=_price_or_none, help="New stop loss ('none' removes it)."
)
@click.option(
    "--tp", metavar="PRICE", callback=_price_or_none, help="New take profit ('none' removes it)."
)
@wait_options
@json_option
@pass_app
def modify(app: App, trade_id: int, sl: Any, tp: Any, wait: float | None) -> None:
    """Move a trade's stop loss and/or take profit."""
    ctx = click.get_current_context()
    body = {
        name: value
        for name, value in (("sl", sl), ("tp", tp))
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    if not body:
        raise click.UsageError("give --sl and/or --tp (a price, or 'none' to remove the level)")
    finish(app, app.client().put(_trade_path(trade_id, "modify"), body), wait, render_queued)


@click.command()
@click.argument("trade_id", type=int, metavar="ID")
@click.option("--distance", type=float, required=True, metavar="D", help="In price units.")
@click.option("--step", type=float, metavar="S", help="Move the stop in steps of S (<= D).")
@wait_options
@json_option
@pass_app
def trail(app: App, trade_id: int, distance: float, step: float | None, wait: float | None) -> None:
    """Trail a trade's stop D behind the best price."""
    body: dict[str, Any] = {"distance": distance}
    if step is not None:
        body["step"] = step
    reply = app.client().post(_trade_path(trade_id, "trailing-stop"), body)
    finish(app, reply, wait, render_queued)


# ---- rendering ----------------------------------------------------------------------------------


def render_queued(out: Output, reply: dict[str, Any]) -> None:
    command = reply["command"]
    out.line(f"{command['type']} {command['id']} {command['status']} (trade {command['trade_id']})")


def _table(out: Output, rows: list[dict[str, Any]]) -> None:
    headers = ["ID", "SYMBOL", "SIDE", "VOLUME", "OPEN", "PRICE", "SL", "TP", "TRAIL"]
    headers += ["PROFIT", "STATUS", "OPENED"]
    cells: list[list[Cell]] = [
        [
            str(t["id"]),
            t["symbol"],
            t["side"],
            num(t["volume"]),
            num(t.get("open_price")),
            num(t.get("current_price")),
            num(t.get("sl")),
            num(t.get("tp")),
            num(t.get("trailing")),
            money(t.get("profit")),
            t["status"],
            when(t.get("opened_at")),
        ]
        for t in rows
    ]
    out.table(headers, cells, empty="no trades")


def _details(out: Output, t: dict[str, Any]) -> None:
    out.pairs(
        [
            ("id", str(t["id"])),
            ("ticket", num(t.get("ticket"))),
            ("symbol", t["symbol"]),
            ("side", t["side"]),
            ("volume", num(t["volume"])),
            ("status", t["status"]),
            ("open price", num(t.get("open_price"))),
            ("price", num(t.get("current_price"))),
            ("sl", num(t.get("sl"))),
            ("tp", num(t.get("tp"))),
            ("trailing", num(t.get("trailing"))),
            ("profit", money(t.get("profit"))),
            ("swap", num(t.get("swap"))),
            ("opened", when(t.get("opened_at"))),
            ("closed", when(t.get("closed_at"))),
            ("close reason", t.get("close_reason") or "-"),
            ("signal", num(t.get("signal_id"))),
        ]
    )
