"""The risk guard: its state (a bar per limit), its limits, the reset of a latched trip.

`risk set` changes only what its options name: it reads the limits as they are and sends them
back whole with those changes (`PUT /api/risk/limits` replaces the whole object). A loss limit
given as `5%` is a percentage, a plain number is money in the account's currency.
"""

from __future__ import annotations

from typing import Any

import click

from signalos_cli.context import App, ask, json_option, needs_terminal, pass_app, yes_option
from signalos_cli.output import Cell, Output, when

BAR = 20  # characters of a limit's bar
# --off NAME -> the fields it turns off
OFF = {
    "daily-loss": ("daily_loss_pct", "daily_loss_money"),
    "max-drawdown": ("max_drawdown_pct", "max_drawdown_money"),
    "equity-floor": ("equity_floor",),
    "max-open-trades": ("max_open_trades",),
    "max-volume": ("max_volume_per_trade",),
    "max-trades-per-day": ("max_trades_per_day",),
}
STATE_COLOR = {"ok": "green", "warning": "yellow", "tripped": "red"}


def _amount(flag: str, text: str) -> tuple[str, float]:
    """`5%` -> ("pct", 5.0); `500` -> ("money", 500.0); anything else is a usage error."""
    raw = text.strip()
    kind = "pct" if raw.endswith("%") else "money"
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a percentage like 5% or an amount of money like 500", param_hint=flag
        ) from None
    if not value > 0 or value == float("inf"):
        raise click.BadParameter(f"{text!r}: must be more than 0", param_hint=flag)
    return kind, value


@click.group(invoke_without_command=True)
@json_option
@pass_app
@click.pass_context
def risk(ctx: click.Context, app: App) -> None:
    """The risk guard: each limit's use, the latch, today's entries.

    `signalos risk set …` changes limits, `signalos risk reset --yes` clears a latched
    trip. The exact definitions are in docs/risk.md."""
    if ctx.invoked_subcommand is None:
        doc = app.client().get("/api/risk")
        app.out.emit(doc, lambda: render(app.out, doc))


@risk.command("set")
@click.option("--daily-loss", metavar="5%|MONEY", help="Trip when equity < day anchor - this.")
@click.option(
    "--daily-anchor",
    type=click.Choice(["balance", "max_balance_equity"]),
    help="The day's anchor: the balance at the reset, or the higher of balance and equity.",
)
@click.option(
    "--daily-loss-of",
    type=click.Choice(["anchor", "initial"]),
    help="A --daily-loss percentage is of the anchor or of --initial-balance.",
)
@click.option("--initial-balance", type=float, metavar="MONEY", help="The starting balance.")
@click.option("--reset-time", metavar="HH:MM", help="The daily reset (default 00:00).")
@click.option("--reset-tz", metavar="ZONE", help="IANA zone of the reset (Europe/Prague).")
@click.option("--max-drawdown", metavar="10%|MONEY", help="Trip when equity < peak - this.")
@click.option(
    "--drawdown-mode",
    type=click.Choice(["equity_peak", "eod_balance"]),
    help="The peak: the highest equity, or the highest end-of-day balance.",
)
@click.option("--equity-floor", type=float, metavar="MONEY", help="Trip when equity < this.")
@click.option("--max-open-trades", type=int, metavar="N", help="Skip entries past N open.")
@click.option("--max-volume", type=float, metavar="LOTS", help="Skip entries above this volume.")
@click.option("--max-trades-per-day", type=int, metavar="N", help="Skip entries past N a day.")
@click.option("--warn-at", type=float, metavar="PCT", help="risk_warning at this % used (80).")
@click.option("--flatten/--no-flatten", default=None, help="A trip closes every position.")
@click.option("--halt-on-stale/--no-halt-on-stale", default=None, help="Stale data halts the desk.")
@click.option(
    "--off",
    "off",
    multiple=True,
    type=click.Choice(sorted(OFF)),
    help="Turn this limit off (repeatable).",
)
@click.option("--clear", is_flag=True, help="Start from no limits at all, then apply the rest.")
@json_option
@pass_app
def set_limits(app: App, /, off: tuple[str, ...], clear: bool, **options: Any) -> None:
    """Change the limits named; the others stay as they are."""
    client = app.client()
    current = {} if clear else dict(client.get("/api/risk").get("limits") or {})
    limits = {k: v for k, v in current.items() if v is not None}
    for name in off:
        for field in OFF[name]:
            limits.pop(field, None)
    for flag, prefix in (("daily_loss", "daily_loss"), ("max_drawdown", "max_drawdown")):
        text = options.pop(flag)
        if text is not None:
            kind, value = _amount(f"--{flag.replace('_', '-')}", text)
            limits.pop(f"{prefix}_pct", None)
            limits.pop(f"{prefix}_money", None)
            limits[f"{prefix}_{kind}"] = value
    renamed = {
        "max_volume": "max_volume_per_trade",
        "warn_at": "warn_at_pct",
        "flatten": "flatten_on_breach",
    }
    for key, value in options.items():
        if value is not None:
            limits[renamed.get(key, key)] = value
    doc = client.put("/api/risk/limits", limits)
    app.out.emit(doc, lambda: _changed(app.out, doc))


@risk.command()
@yes_option
@json_option
@pass_app
def reset(app: App, yes: bool) -> None:
    """Clear a latched trip (trading stays halted until resume --from-halt).

    Refused (exit 1) while the latest equity would trip the limit again. A drawdown is
    measured again from the equity now."""
    if not yes:
        needs_terminal()
        ask("Clear the risk guard's latched trip?", "not confirmed: the latch was not touched")
    doc = app.client().post("/api/risk/reset", {"confirm": True})
    app.out.emit(doc, lambda: _changed(app.out, doc))


# ---- rendering ----------------------------------------------------------------------------------


def _changed(out: Output, doc: dict[str, Any]) -> None:
    render(out, doc)
    out.note(str(doc.get("message") or ""))


def bar(used_pct: float) -> str:
    filled = max(0, min(BAR, round(used_pct / 100 * BAR)))
    return "[" + "#" * filled + "." * (BAR - filled) + "]"


def render(out: Output, doc: dict[str, Any]) -> None:
    if not doc.get("guarded"):
        out.line("no risk limits set: signalos risk set --daily-loss 5% --max-drawdown 10% …")
        return
    state = str(doc["state"])
    rows: list[tuple[str, Cell]] = [
        ("state", (state, STATE_COLOR.get(state))),
        ("equity", _money(doc.get("equity"))),
    ]
    day = doc.get("day") or {}
    anchor = day.get("anchor")
    rows.append(
        (
            "day",
            f"anchor {_money(anchor)} taken {when(day.get('anchor_at'))}"
            if anchor is not None
            else "anchor waits for the first account status of the day",
        )
    )
    rows.append(("next reset", when(day.get("next_reset"))))
    latch = doc.get("latch")
    if latch:
        rows.append(
            (
                "latched",
                (f"{latch['limit']} at {when(latch['at'])}, clears {latch['clears']}", "red"),
            )
        )
    if doc.get("stale"):
        rows.append(("data", ("STALE: no account status recently, trades open", "red")))
    entries = doc["entries"]
    rows.append(
        (
            "entries",
            f"today {entries['trades_today']}/{_limit(entries['max_trades_per_day'])} · "
            f"open {entries['open_trades']}/{_limit(entries['max_open_trades'])} · "
            f"max volume {_limit(entries['max_volume_per_trade'])}",
        )
    )
    out.pairs(rows)
    loss = doc.get("loss_limits") or []
    out.table(
        ["LIMIT", "USED", "", "STATE", "VALUE", "TRIPS BELOW"],
        [
            [
                row["limit"],
                bar(float(row["used_pct"])),
                f"{row['used_pct']:.0f}%",
                (str(row["state"]), STATE_COLOR.get(str(row["state"]))),
                _money(row["value"]),
                _money(row["trip_below"]),
            ]
            for row in loss
        ],
        "no loss limit to measure yet (no account status, or only entry limits set)",
    )


def _money(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _limit(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
