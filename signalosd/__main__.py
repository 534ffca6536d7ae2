"""signalosd: run the daemon, or manage tokens on its database.

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration, 3 cannot listen
(address in use, permission denied).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, accounts
from .clock import SystemClock
from .config import ConfigError, Settings, load_settings
from .errors import ApiError
from .logs import setup as setup_logging
from .models import Role
from .notify import Notifier
from .state_lock import StateDirBusy
from .store import sync_transaction

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_LISTEN = 0, 1, 2, 3
log = logging.getLogger("signalosd")


def _settings(config: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(config, flags=flags)
    except ConfigError as exc:
        click.echo(f"signalosd: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then shut down in logged phases. A second signal forces exit.

    Under systemd (`Type=notify`) it also reports READY=1 once the database is open and the
    listeners are bound, keeps STATUS= current, pings the watchdog and says STOPPING=1.
    """
    notifier = Notifier()
    # Pinged from the start: opening (and migrating) the database runs in the store's own
    # thread, so a slow start does not trip the watchdog but a blocked event loop does.
    watchdog = asyncio.get_running_loop().create_task(notifier.watchdog_loop())
    try:
        return await _serve(settings, notifier)
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        notifier.close()


def _address_text(address: Any) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def _serve(settings: Settings, notifier: Notifier) -> int:
    # Imported here so that `signalosd token …` starts without loading the server stack.
    from aiohttp import web

    from . import control_socket, keys
    from .app import create_app
    from .notify import StatusReporter

    app = create_app(settings)
    hub = app[keys.AGENTS]
    reporter = StatusReporter(notifier, lambda account_id: hub.session(account_id) is not None)
    app[keys.BUS].listen(reporter.on_event)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout_s
    )
    try:
        await runner.setup()
    except StateDirBusy as exc:
        log.error("event=startup_failed state_dir=%s error=%s", settings.state_dir, exc)
        notifier.status(f"failed: {exc}")
        return EXIT_FAILURE
    except (sqlite3.Error, OSError) as exc:
        log.error(
            "event=startup_failed state_dir=%s error=%r hint=%s",
            settings.state_dir,
            exc,
            "check that --state-dir exists or can be created and is writable",
        )
        notifier.status(f"failed: cannot open the database in {settings.state_dir}: {exc}")
        return EXIT_FAILURE
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        log.error(
            "event=listen_failed host=%s port=%d error=%s hint=%s",
            settings.host,
            settings.port,
            exc.strerror or exc,
            "is another signalosd running? use --port",
        )
        notifier.status(f"failed: cannot listen on {settings.host}:{settings.port}: {exc}")
        await runner.cleanup()
        return EXIT_LISTEN
    try:
        control_path = await control_socket.start(runner, settings)
    except OSError as exc:
        log.error(
            "event=listen_failed socket=%s error=%s hint=%s",
            settings.control_socket_path,
            exc.strerror or exc,
            'set control_socket to another path, or "off"',
        )
        notifier.status(f"failed: cannot listen on {settings.control_socket_path}: {exc}")
        await runner.cleanup()
        return EXIT_LISTEN
    tcp_addresses = [a for a in runner.addresses if not isinstance(a, str)]  # not the socket

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("event=forced_exit signal=%s", signal.Signals(signum).name)
            os._exit(EXIT_FAILURE)
        log.info("event=shutdown_requested signal=%s", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    # Logged only once SIGTERM is handled: a supervisor that stops us as soon as it sees this
    # line gets the orderly shutdown, not the default action (death by signal, exit -15).
    for address in tcp_addresses:
        host, port = address[:2]
        log.info("event=listening url=http://%s:%d version=%s", host, port, __version__)
    if control_path is not None:
        control_socket.log_listening(control_path)
    reporter.listening = ", ".join(_address_text(a) for a in tcp_addresses)
    try:
        modes = await app[keys.DB].read(
            lambda tx: [
                (int(a["id"]), str(a["name"]), str(tx.get_state(int(a["id"]))["mode"]))
                for a in tx.list_accounts()
            ]
        )
        reporter.load(modes)
    except sqlite3.Error as exc:  # only the STATUS= text suffers; serving goes on
        log.warning("event=status_modes_unreadable error=%r", exc)
    reporter.start()
    notifier.ready(reporter.text())
    await stop.wait()
    notifier.stopping("stopping: closing connections and the database")
    log.info("event=shutdown phase=stop_accepting")
    await runner.cleanup()  # stop listening, close websockets, finish requests, close database
    if control_path is not None:
        control_socket.remove(control_path)
    log.info("event=shutdown phase=done")
    return EXIT_OK


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML settings file (default /etc/signalos/signalosd.toml if it exists).",
)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8787; 0: any).")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of the database and admin.token (default /var/lib/signalos).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Log verbosity (default info).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json", "journal"]),
    default=None,
    help="Log lines: journal (<N> priorities, under systemd), text (timestamped), json; "
    "auto picks journal or text (default auto).",
)
@click.option(
    "--check-config", is_flag=True, help="Validate the settings, print them as JSON and exit."
)
@click.version_option(__version__, prog_name="signalosd")
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    host: str | None,
    port: int | None,
    state_dir: Path | None,
    log_level: str | None,
    log_format: str | None,
    check_config: bool,
) -> None:
    """The SignalOS daemon. Without a subcommand it runs the server.

    Settings: defaults < --config file < SIGNALOS_* environment < flags.
    Exit codes: 0 stopped cleanly, 1 failed, 2 bad usage or configuration, 3 cannot listen.
    """
    flags = {
        "host": host,
        "port": port,
        "state_dir": state_dir,
        "log_level": log_level,
        "log_format": log_format,
    }
    ctx.obj = {"config": config, "flags": flags}
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(config, **flags)
    if check_config:
        click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
        return
    setup_logging(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(serve(settings)))


@cli.group()
@click.option("--config", type=click.Path(path_type=Path), default=None, help="TOML settings file.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None, help="Directory of the database."
)
@click.pass_context
def token(ctx: click.Context, config: Path | None, state_dir: Path | None) -> None:
    """Create, list and revoke API tokens (works whether the daemon runs or not)."""
    parent = ctx.obj or {"config": None, "flags": {}}
    flags = dict(parent["flags"])
    if state_dir is not None:
        flags["state_dir"] = state_dir
    ctx.obj = _settings(config or parent["config"], **flags)


def _fail(message: str) -> NoReturn:
    click.echo(f"signalosd: {message}", err=True)
    sys.exit(EXIT_FAILURE)


def _existing_db(settings: Settings) -> Path:
    """List and revoke must not quietly create an empty database in a mistyped --state-dir."""
    if not settings.db_path.exists():
        _fail(f"no database at {settings.db_path}; check --state-dir (or --config)")
    return settings.db_path


@token.command("create")
@click.option("--account", required=True, help="Account name (created if it does not exist).")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.OPERATOR.value,
    show_default=True,
    help="What the token may do.",
)
@click.option("--label", default="", help="Who or what uses it (shown in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead.")
@click.pass_obj
def token_create(settings: Settings, account: str, role: str, label: str, as_json: bool) -> None:
    """Create a token and print it once (it is stored only as a hash)."""
    try:
        with sync_transaction(settings.db_path, SystemClock()) as tx:
            made = accounts.create_token(tx, account, Role(role), label, accounts.local_actor())
    except ApiError as exc:
        _fail(exc.message)
    except (sqlite3.Error, OSError) as exc:
        _fail(f"cannot write {settings.db_path}: {exc} (check --state-dir and permissions)")
    if as_json:
        click.echo(json.dumps(made))
        return
    if made["account_created"]:
        click.echo(f"created account {account}", err=True)
    click.echo(
        f"created token {made['id']} ({made['role']}) for account {account}; "
        "it is shown only this once:",
        err=True,
    )
    click.echo(made["token"])


@token.command("list")
@click.option("--account", default=None, help="Only this account's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def token_list(settings: Settings, account: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    try:
        with sync_transaction(_existing_db(settings), SystemClock()) as tx:
            account_id = None
            if account is not None:
                row = tx.account_by_name(account)
                if row is None:
                    _fail(f"account {account} not found")
                account_id = int(row["id"]) if row else None
            rows = tx.list_tokens(account_id)
    except (sqlite3.Error, OSError) as exc:
        _fail(f"cannot read {settings.db_path}: {exc} (check --state-dir and permissions)")
    if as_json:
        click.echo(json.dumps(rows))
        return
    cols = ["id", "account", "role", "label", "created_at", "last_used_at", "revoked_at"]
    table = [[str(r[c] or "-") for c in cols] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in table)) for i, c in enumerate(cols)]
    for line in [cols, *table]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def token_revoke(settings: Settings, token_id: str) -> None:
    """Revoke a token by id; it stops working at once, also in a running daemon."""
    try:
        with sync_transaction(_existing_db(settings), SystemClock()) as tx:
            done = accounts.revoke_token(tx, token_id, accounts.local_actor())
    except ApiError as exc:
        _fail(exc.message)
    except (sqlite3.Error, OSError) as exc:
        _fail(f"cannot write {settings.db_path}: {exc} (check --state-dir and permissions)")
    click.echo(
        f"revoked token {token_id}" if done["changed"] else f"token {token_id} was already revoked",
        err=True,
    )


@cli.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--config", type=click.Path(path_type=Path), default=None, help="TOML settings file.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None, help="Directory of the database."
)
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@click.pass_context
def backup_command(
    ctx: click.Context, dest: Path, config: Path | None, state_dir: Path | None, force: bool
) -> None:
    """Copy the database to the file DEST, consistently, with the daemon running or not.

    The copy is checked (integrity_check) before it replaces DEST; a one-line summary goes to
    stderr. Restore: see docs/operations.md.
    """
    from .backup import BackupError, backup  # keeps the daemon's start-up imports unchanged

    parent = ctx.obj or {"config": None, "flags": {}}
    flags = dict(parent["flags"])
    if state_dir is not None:
        flags["state_dir"] = state_dir
    settings = _settings(config or parent["config"], **flags)
    try:
        done = backup(settings.db_path, dest, force=force)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(f"signalosd: {done.summary()}", err=True)


@cli.command("restore")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--config", type=click.Path(path_type=Path), default=None, help="TOML settings file.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None, help="Directory of the database."
)
@click.pass_context
def restore_command(
    ctx: click.Context, src: Path, config: Path | None, state_dir: Path | None
) -> None:
    """Replace the database with the backup SRC (stop the daemon first).

    The replaced database is moved aside, not deleted. New events continue above every seq
    handed out before, so clients resuming from before the restore get an explicit reset.
    """
    from .backup import BackupError, restore
    from .state_lock import StateDirBusy, hold

    parent = ctx.obj or {"config": None, "flags": {}}
    flags = dict(parent["flags"])
    if state_dir is not None:
        flags["state_dir"] = state_dir
    settings = _settings(config or parent["config"], **flags)
    try:
        with hold(settings.state_dir, "restore"):
            done = restore(src, settings.db_path)
    except (BackupError, StateDirBusy) as exc:
        _fail(str(exc))
    except (sqlite3.Error, OSError) as exc:
        _fail(f"restore into {settings.db_path} failed: {exc}")
    click.echo(f"signalosd: {done.summary()}", err=True)


def main() -> None:
    cli(prog_name="signalosd")


if __name__ == "__main__":
    main()
