"""Commands queued for the agent, from the shell: `signalos commands ID` (one command's status,
or with --wait its outcome), and the `--wait [--timeout S]` of every command that queues work
(pause, close, …) following it to its outcome, with the exit code that outcome means (0
succeeded, 1 failed, expired or cancelled, 124 still pending when the time is up).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import click

from signalos_cli.client import ClientError, path_part
from signalos_cli.context import App, json_option, pass_app
from signalos_cli.errors import Failed, TimedOut
from signalos_cli.output import Cell, Output, num, when

DEFAULT_WAIT_S = 30.0
POLL_S = 20.0  # one long-poll; under the daemon's command_wait_max_s (default 60)

Render = Callable[[Output, dict[str, Any]], None]


def wait_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds `--wait` and `--timeout S`; the command receives `wait`: seconds, or None."""

    @functools.wraps(f)
    def wrapper(*args: Any, wait: bool, wait_timeout: float | None, **kwargs: Any) -> Any:
        if wait_timeout is not None and not wait:
            raise click.UsageError(
                "--timeout after the command goes with --wait; the HTTP timeout is a global "
                "option: signalos --timeout S COMMAND"
            )
        seconds = (wait_timeout or DEFAULT_WAIT_S) if wait else None
        return f(*args, wait=seconds, **kwargs)

    wrapper = click.option(
        "--timeout",
        "wait_timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="S",
        help=f"With --wait: give up after S seconds, exit 124 (default {DEFAULT_WAIT_S:g}).",
    )(wrapper)
    wrapper = click.option(
        "--wait",
        is_flag=True,
        help="Wait for the agent's result: exit 0 succeeded, 1 failed, 124 timed out.",
    )(wrapper)
    return wrapper


def finish(app: App, reply: dict[str, Any], wait: float | None, render: Render) -> None:
    """Print a mutation's reply; with `wait`, follow its command and exit by its outcome.
    With --json the one document is the reply with `command` as it finally stood."""
    out = app.out
    command = reply.get("command")
    if wait is None or not command:
        out.emit(reply, lambda: render(out, reply))
        return
    if not out.json_mode:
        render(out, reply)
        out.progress(f"waiting up to {wait:g} s for the agent's result (Ctrl-C stops waiting)")
    final = follow(app, command, wait)
    done = reply | {"command": final}
    out.emit(done, lambda: out.line(outcome_line(out, final)))
    check_outcome(final, wait)


def follow(app: App, command: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The command once finished, or as it stands after `seconds`."""
    from signalosd.models import TERMINAL_COMMAND_STATUSES  # only when waiting

    terminal = {s.value for s in TERMINAL_COMMAND_STATUSES}
    deadline = time.monotonic() + seconds
    poll = POLL_S
    current = command
    path = f"/api/commands/{path_part(command['id'])}"
    try:
        while current["status"] not in terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            step = min(remaining, poll)
            try:
                current = app.client().get(path, {"wait": f"{step:.3f}"}, wait=step)["command"]
            except ClientError as exc:
                if exc.status == 422 and poll > 1:  # this daemon allows shorter long-polls
                    poll = 1.0
                    continue
                raise
    except KeyboardInterrupt:
        app.out.note(
            f"stopped waiting: command {current['id']} is {current['status']}; "
            f"follow it with: signalos commands {current['id']} --wait"
        )
        raise
    return current


def check_outcome(command: dict[str, Any], seconds: float) -> None:
    """Return when the command succeeded; otherwise raise what its outcome means."""
    from signalosd.models import TERMINAL_COMMAND_STATUSES, CommandStatus

    status = command["status"]
    if status == CommandStatus.SUCCEEDED.value:
        return
    what = f"command {command['id']} ({command['type']})"
    if status in {s.value for s in TERMINAL_COMMAND_STATUSES}:
        raise Failed(f"{what} {status}: {reason(command)}")
    hint = ""
    if status == CommandStatus.QUEUED.value:
        hint = " (no agent has received it: is the agent connected? see signalos status)"
    raise TimedOut(
        f"{what} is still {status} after {seconds:g} s{hint}; it may still run: "
        f"signalos commands {command['id']} --wait"
    )


def reason(command: dict[str, Any]) -> str:
    """The broker's or the daemon's reason from a finished command's result."""
    result = command.get("result") or {}
    text = result.get("error") or result.get("reason") or "no reason given"
    if result.get("retcode") is not None:
        text += f" (retcode {result['retcode']})"
    return str(text)


def outcome_line(out: Output, command: dict[str, Any]) -> str:
    status = str(command["status"])
    return f"{command['type']} {command['id']} {out.style(status, status_color(out, status))}"


def status_color(out: Output, status: str) -> str | None:
    """Green for succeeded, red for the other final states (the import only when colouring)."""
    if not out.color:
        return None
    from signalosd.models import TERMINAL_COMMAND_STATUSES, CommandStatus

    if status == CommandStatus.SUCCEEDED.value:
        return "green"
    return "red" if status in {s.value for s in TERMINAL_COMMAND_STATUSES} else None


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
