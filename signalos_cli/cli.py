"""signalos: SignalOS from the shell and cron (docs/cli.md).

This module is the click group, its global options and the one place that turns exceptions
into messages and exit codes. Commands live in `commands/` and are imported only when run,
so `signalos stop` loads click, http.client and its own module, never aiohttp or pydantic.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from signalos_cli.context import App
from signalos_cli.errors import ExitCode, Failed, SettingsError, TimedOut
from signalosd import __version__

# name -> "module:attribute", in the order `signalos --help` lists them
COMMANDS: dict[str, str] = {
    "status": "commands.control:status",
    "health": "commands.control:health",
    "stop": "commands.control:stop",
    "pause": "commands.control:pause",
    "resume": "commands.control:resume",
    "stealth": "commands.control:stealth",
    "sync": "commands.control:sync",
    "trades": "commands.trades:trades",
    "trade": "commands.trades:trade",
    "close": "commands.trades:close",
    "partial-close": "commands.trades:partial_close",
    "modify": "commands.trades:modify",
    "trail": "commands.trades:trail",
    "signals": "commands.signals:signals",
    "signal": "commands.signals:signal",
    "commands": "commands.queued:commands",
    "risk": "commands.risk:risk",
    "tail": "commands.stream:tail",
    "ws": "commands.stream:ws",
    "agent": "commands.agent:agent",
    "webhooks": "commands.webhooks:webhooks",
}

EXIT_CODES = """\b
Exit codes:
  0    done, or already so (pause when paused, stop when halted)
  1    failed: the daemon refused (4xx: unknown trade, not open, invalid
       stops, validation), the command failed, expired or was cancelled,
       a signal was skipped, or a confirmation was declined
  2    usage: bad option, missing --yes without a terminal, bad config,
       no token
  3    daemon unreachable: refused, no answer, 502/503/504 after retries
  4    not authorized: token refused (401) or role too low (403)
  124  --wait timed out before the agent's result (the command may still run)
  130  interrupted (Ctrl-C)
  141  tail: the output was closed (broken pipe); 143: tail was terminated

\b
Settings: flag > environment (SIGNALOS_URL, SIGNALOS_TOKEN_FILE,
SIGNALOS_TOKEN, ...) > ~/.config/signalos/cli.toml > /etc/signalos/cli.toml.
Shell completion: eval "$(_SIGNALOS_COMPLETE=bash_source signalos)"
"""


class SignalosGroup(click.Group):
    """Subcommands imported on first use; exceptions mapped to exit codes in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        extra = [name for name in super().list_commands(ctx) if name not in COMMANDS]
        return [*COMMANDS, *extra]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attr = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        assert isinstance(command, click.Command), COMMANDS[cmd_name]
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, BrokenPipeError):
            raise  # click prints usage errors (exit 2) and exits
        except (KeyboardInterrupt, click.Abort) as exc:
            error: BaseException = exc
            code, message = ExitCode.INTERRUPTED, "interrupted"
        except Exception as exc:
            error = exc
            code, message = describe(exc)
        if isinstance(ctx.obj, App) and ctx.obj.traceback:
            import traceback

            traceback.print_exception(error)
        click.echo(f"Error: {message}", err=True)
        raise click.exceptions.Exit(code) from None


def describe(exc: Exception) -> tuple[ExitCode, str]:
    """The exit code and message for an exception raised by a command."""
    from signalos_cli.client import RETRY_STATUSES, ClientError

    if isinstance(exc, ClientError):
        if exc.status is None or exc.status in RETRY_STATUSES:
            note = ""
            if exc.sent:
                note = (
                    "; the request may have reached the daemon: check (signalos status, "
                    "signalos trades) before repeating it"
                )
            return ExitCode.UNREACHABLE, exc.message + note
        if exc.status == 401:
            hint = "; check --token-file, SIGNALOS_TOKEN_FILE or SIGNALOS_TOKEN"
            return ExitCode.UNAUTHORIZED, f"{exc.message} ({exc.code}){hint}"
        if exc.status == 403:
            return ExitCode.UNAUTHORIZED, f"{exc.message} ({exc.code})"
        return ExitCode.FAILED, f"{exc.message} ({exc.code})"
    if isinstance(exc, SettingsError):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, Failed):
        return ExitCode.FAILED, str(exc)
    if isinstance(exc, TimedOut):
        return ExitCode.TIMEOUT, str(exc)
    return ExitCode.FAILED, f"unexpected error: {exc!r} (run with -x for the traceback)"


@click.group(
    cls=SignalosGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.option("--url", metavar="URL", help="The daemon [env SIGNALOS_URL; http://127.0.0.1:8787]")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The daemon's local control socket, no token needed [env SIGNALOS_SOCKET; docs/cli.md]",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the token [env SIGNALOS_TOKEN_FILE, or the token in SIGNALOS_TOKEN]",
)
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document (docs/cli.md).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="HTTP timeout in seconds [env SIGNALOS_TIMEOUT; 10]",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    metavar="N",
    help="Retries after a connection error or 502/503/504 [env SIGNALOS_RETRIES; 2]",
)
@click.option(
    "--account", metavar="NAME", help="With an admin token: act on this account [SIGNALOS_ACCOUNT]"
)
@click.option("--source", hidden=True, help="X-SignalOS-Source: cli or cron [SIGNALOS_SOURCE]")
@click.option("-x", "--traceback", is_flag=True, help="Show the traceback of an error.")
@click.version_option(__version__, "-V", "--version", prog_name="signalos")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    socket_path: Path | None,
    token_file: Path | None,
    json_mode: bool,
    timeout: float | None,
    retries: int | None,
    account: str | None,
    source: str | None,
    traceback: bool,
) -> None:
    """SignalOS from the shell and cron: trading controls, trades, signals, the agent.

    With no URL configured it uses the daemon's local control socket if one exists
    (/run/signalos/signalosd.sock, then ./var/signalosd.sock: no token needed), else the
    daemon `make run` starts (127.0.0.1:8787) using ./var/admin.token.
    Data goes to stdout, messages and errors to stderr."""
    flags = {
        "url": url,
        "socket": socket_path,
        "token_file": token_file,
        "timeout": timeout,
        "retries": retries,
        "account": account,
        "source": source,
    }
    ctx.obj = App(flags, json_mode, traceback)


def main() -> None:
    cli(prog_name="signalos")
