"""Trading controls and the desk's state: status, health, stop, pause, resume, stealth, sync.

These are the commands cron and a nervous operator run; they import nothing heavy (no aiohttp,
no pydantic) unless colouring for a terminal.
"""

from __future__ import annotations

from typing import Any

import click

from signalos_cli.commands.queued import finish, wait_options
from signalos_cli.context import App, json_option, pass_app
from signalos_cli.output import Cell, Output, money, num, when


@click.command()
@json_option
@pass_app
def status(app: App) -> None:
    """Mode, stealth, agent, MT5 and queue depths."""
    client = app.client()
    health = client.get("/api/system/health")
    state = client.get("/api/trading/state")
    app.out.emit({"state": state, "health": health}, lambda: _status(app.out, state, health))


@click.command()
@json_option
@pass_app
def health(app: App) -> None:
    """Every field of the daemon's health report."""
    from signalos_cli.output import flat

    doc = app.client().get("/api/system/health")
    app.out.emit(doc, lambda: app.out.pairs(flat(doc)))


@click.command()
@click.option("--flatten", is_flag=True, help="Also close every open position (close_all).")
@click.option("--reason", metavar="R", help="Why, for the audit log.")
@wait_options
@json_option
@pass_app
def stop(app: App, flatten: bool, reason: str | None, wait: float | None) -> None:
    """Emergency stop: halt now (--flatten: close all).

    Halts trading, cancels queued entries and, with --flatten, closes every open position.
    Never asks for confirmation; succeeds (exit 0) when already halted.
    Leaving the halt takes `signalos resume --from-halt`."""
    body: dict[str, Any] = {"close_all": flatten}
    if reason:
        body["reason"] = reason
    finish(app, app.client().post("/api/trading/emergency-stop", body), wait, render_state)


@click.command()
@click.option("--reason", metavar="R", help="Why, for the audit log (e.g. news).")
@wait_options
@json_option
@pass_app
def pause(app: App, reason: str | None, wait: float | None) -> None:
    """Pause: no new entries; open trades are managed."""
    body = {"reason": reason} if reason else {}
    finish(app, app.client().post("/api/trading/pause", body), wait, render_state)


@click.command()
@click.option("--from-halt", is_flag=True, help="Confirm leaving an emergency stop.")
@click.option("--reason", metavar="R", help="Why, for the audit log.")
@wait_options
@json_option
@pass_app
def resume(app: App, from_halt: bool, reason: str | None, wait: float | None) -> None:
    """Resume trading (after a stop: --from-halt)."""
    body: dict[str, Any] = {"confirm_halt": True} if from_halt else {}
    if reason:
        body["reason"] = reason
    finish(app, app.client().post("/api/trading/resume", body), wait, render_state)


@click.command()
@click.argument("setting", type=click.Choice(["on", "off", "toggle"]))
@wait_options
@json_option
@pass_app
def stealth(app: App, setting: str, wait: float | None) -> None:
    """Stealth: the agent keeps SL/TP, not the broker."""
    body = None if setting == "toggle" else {"enabled": setting == "on"}
    finish(app, app.client().post("/api/trading/stealth-toggle", body), wait, render_state)


@click.command()
@wait_options
@json_option
@pass_app
def sync(app: App, wait: float | None) -> None:
    """Reconcile the trade mirror with the broker.

    The agent sends a full snapshot of positions and account; the daemon reconciles."""
    finish(app, app.client().post("/api/firebridge/force-sync"), wait, render_command)


# ---- rendering ----------------------------------------------------------------------------------


def render_state(out: Output, reply: dict[str, Any]) -> None:
    """A trading-state reply (`changed` and maybe `command`)."""
    rows: list[tuple[str, Cell]] = [
        ("mode", (str(reply["mode"]), _mode_color(out, reply["mode"]))),
        ("stealth", "on" if reply["stealth"] else "off"),
        ("reason", reply.get("reason") or "-"),
        ("since", when(reply.get("since"))),
    ]
    command = reply.get("command")
    if command:
        rows.append(("command", f"{command['type']} {command['id']} {command['status']}"))
    cancelled = reply.get("cancelled_commands")
    if cancelled is not None:  # emergency stop: the entries and resumes it fenced off
        rows.append(("cancelled", f"{len(cancelled)} unfinished entries or resumes"))
    out.pairs(rows)
    if reply.get("changed") is False:
        out.note("nothing changed: it already was so")


def render_command(out: Output, reply: dict[str, Any]) -> None:
    command = reply["command"]
    out.line(f"{command['type']} {command['id']} {command['status']}")


def _status(out: Output, state: dict[str, Any], health: dict[str, Any]) -> None:
    agent = health.get("agent") or {}
    if agent.get("connected"):
        who = " ".join(str(agent[k]) for k in ("broker", "agent_version") if agent.get(k))
        login, server = agent.get("login"), agent.get("server")
        where = " @ ".join(str(p) for p in (login and f"login {login}", server) if p)
        parts = ["connected", who, where, f"since {when(agent.get('connected_at'))}"]
        if agent.get("mode"):  # what the agent says of itself (agent_state)
            parts.append(f"its mode {agent['mode']}")
        color = "green"
        if agent.get("mode_mismatch"):
            parts.append(f"NOT the daemon's {state['mode']}: check the agent")
            color = "red"
        agent_cell: Cell = (" · ".join(p for p in parts if p), color)
    else:
        agent_cell = (f"not connected · last seen {when(agent.get('last_seen'))}", "red")
    mt5 = health.get("mt5")
    if mt5:
        trading = "trading allowed" if mt5.get("trade_allowed") else "trading NOT allowed"
        ok = mt5.get("connected") and mt5.get("trade_allowed")
        parts = [
            "connected" if mt5.get("connected") else "NOT connected",
            trading,
            f"balance {money(mt5.get('balance'))[0]}",
            f"equity {money(mt5.get('equity'))[0]}",
            f"profit {money(mt5.get('profit'))[0]}",
            f"margin level {num(mt5.get('margin_level'))}",
        ]
        mt5_cell: Cell = (" · ".join(parts), "green" if ok else "red")
    else:
        mt5_cell = "no report yet"
    queues = health.get("queues") or {}
    risk = health.get("risk") or {}
    if not risk.get("guarded"):
        risk_cell: Cell = "no limits set (signalos risk set)"
    elif risk.get("latched") or risk.get("stale"):
        said = [f"LATCHED: {risk['latched']} tripped" if risk.get("latched") else ""]
        said.append("data STALE" if risk.get("stale") else "")
        risk_cell = (" · ".join(p for p in said if p) + " (signalos risk)", "red")
    else:
        risk_cell = ("guarded (signalos risk)", "green")
    out.pairs(
        [
            ("account", str(health.get("account", state.get("account")))),
            ("mode", (str(state["mode"]), _mode_color(out, state["mode"]))),
            ("reason", state.get("reason") or "-"),
            ("since", when(state.get("since"))),
            ("stealth", "on" if state["stealth"] else "off"),
            ("agent", agent_cell),
            ("mt5", mt5_cell),
            ("queues", " · ".join(f"{k} {v}" for k, v in queues.items()) or "-"),
            ("risk", risk_cell),
        ]
    )


def _mode_color(out: Output, mode: str) -> str | None:
    if not out.color:  # the daemon's Mode enum costs start-up time: only for a terminal
        return None
    from signalosd.models import Mode

    return {Mode.RUNNING: "green", Mode.PAUSED: "yellow", Mode.HALTED: "red"}.get(Mode(mode))
