"""`signalos agent`: the desktop agent (see docs/agent.md).

Exit codes of `signalos agent`: 0 stopped by SIGTERM/SIGINT, 1 error (the broker could not be
reached, …), 2 usage, 4 the daemon refused the token (close 4401: do not restart),
5 replaced by a newer agent session for this account (close 4409: do not restart).
aiohttp is imported only when the agent runs, never by the one-shot commands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from signalos_cli.errors import ExitCode
from signalos_cli.settings import DEFAULT_URL

if TYPE_CHECKING:
    from signalos_cli.agent.broker import Broker

STATE_DIR_HELP = (
    "The agent's state: executed commands, mode, virtual stops, paper account "
    "[default: $STATE_DIRECTORY under systemd, else $XDG_STATE_HOME/signalos/agent "
    "(~/.local/state/signalos/agent); on Windows %LOCALAPPDATA%\\signalos\\agent]"
)


def default_state_dir(env: Mapping[str, str], windows: bool = os.name == "nt") -> Path:
    """Where the agent keeps its journal and local mode when --state-dir is not given: one
    absolute place per user (or the unit's StateDirectory=), never relative to wherever it was
    started, so that a restart from another directory still knows which commands it executed
    and that it was halted."""
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]  # several dirs: the first
    if systemd and os.path.isabs(systemd):
        return Path(systemd)
    if windows:
        local = env.get("LOCALAPPDATA", "")
        base = Path(local) if local and os.path.isabs(local) else Path.home() / "AppData" / "Local"
        return base / "signalos" / "agent"
    xdg = env.get("XDG_STATE_HOME", "")  # the spec: a relative value is to be ignored
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "signalos" / "agent"


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if not value:
        raise click.UsageError(f"the {what} file {path} is empty")
    return value


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        return _read_secret(token_file, "token")
    token = os.environ.get("SIGNALOS_TOKEN", "").strip()
    if not token:
        raise click.UsageError(
            "no agent token: give --token-file, or set SIGNALOS_TOKEN_FILE or SIGNALOS_TOKEN"
        )
    return token


@click.command(short_help="Run the desktop agent (MT5 or paper broker).")
@click.option(
    "--broker", type=click.Choice(["paper", "mt5"]), required=True, help="Where to trade."
)
@click.option(
    "--url",
    envvar="SIGNALOS_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The daemon (also SIGNALOS_URL).",
)
@click.option(
    "--token-file",
    envvar="SIGNALOS_TOKEN_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding an agent token (also SIGNALOS_TOKEN_FILE; or SIGNALOS_TOKEN).",
)
@click.option(
    "--state-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help=STATE_DIR_HELP,
)
@click.option("--mt5-login", help="MT5 account number (default: the terminal's).")
@click.option(
    "--mt5-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the MT5 password.",
)
@click.option("--mt5-server", help="MT5 trade server, e.g. MetaQuotes-Demo.")
@click.option("--mt5-path", help="Path to terminal64.exe (default: the installed one).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def agent(
    broker: str,
    url: str,
    token_file: Path | None,
    state_dir: Path | None,
    mt5_login: str | None,
    mt5_password_file: Path | None,
    mt5_server: str | None,
    mt5_path: str | None,
    log_level: str,
) -> None:
    """Run the desktop agent: execute the daemon's commands on MT5 or the paper broker."""
    import asyncio  # the agent's imports stay out of the other commands' start-up time

    from signalos_cli.agent.broker import BrokerError
    from signalos_cli.agent.connection import AgentStopped
    from signalosd.ops import logs

    token = _token(token_file)
    logs.setup(log_level)
    if state_dir is None:
        state_dir = default_state_dir(os.environ)
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise click.UsageError(
            f"cannot create the agent's state directory {state_dir}: {exc.strerror}; "
            "give --state-dir DIR"
        ) from exc
    the_broker: Broker
    if broker == "paper":
        from signalos_cli.agent.paper import PaperBroker

        try:
            the_broker = PaperBroker(state_path=state_dir / "paper.json")
        except BrokerError as exc:
            raise click.ClickException(exc.message) from exc
    else:
        from signalos_cli.agent.mt5 import Mt5Broker

        password = _read_secret(mt5_password_file, "MT5 password") if mt5_password_file else None
        the_broker = Mt5Broker(mt5_login, password, mt5_server, mt5_path)
    try:
        asyncio.run(_run(url, token, the_broker, state_dir))
    except AgentStopped as exc:
        click.echo(f"agent: stopped: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except BrokerError as exc:
        retcode = f" (retcode {exc.retcode})" if exc.retcode is not None else ""
        click.echo(f"agent: broker error: {exc.message}{retcode}", err=True)
        raise SystemExit(ExitCode.FAILED) from None
    except ValueError as exc:  # a bad --url
        raise click.UsageError(str(exc)) from exc


async def _run(url: str, token: str, broker: Broker, state_dir: Path) -> None:
    """Run until SIGTERM/SIGINT (close the connection with 1000, exit 0); a second signal
    forces the exit."""
    import asyncio
    import signal

    from signalos_cli.agent.options import Options
    from signalos_cli.agent.runner import run_agent
    from signalosd.ops import logs

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(ExitCode.FAILED)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    options = None
    if logs.under_journal(os.environ):
        # The journal already gets the connection states as log lines (event=connected,
        # event=disconnected …): the terminal's "agent: …" lines would only repeat them.
        options = Options(on_state=lambda _line: None)
    await run_agent(url, token, broker, state_dir, options=options, stop=stop)
