"""signalosd: run the daemon, or manage tokens on its database.

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration, 3 cannot listen
(address in use, permission denied).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from signalosd import __version__
from signalosd.config import ConfigError, Settings
from signalosd.ops.admin_cli import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_LISTEN,
    EXIT_OK,
    backup_command,
    restore_command,
    settings_or_exit,
    token,
)
from signalosd.ops.logs import setup as setup_logging
from signalosd.ops.notify import Notifier
from signalosd.ops.state_lock import StateDirBusy
from signalosd.ops.tls import in_clear_beyond_loopback, server_context

if TYPE_CHECKING:  # aiohttp is imported when serving only (see _serve)
    from aiohttp import web
from signalosd.store import StoreError

log = logging.getLogger("signalosd")


async def serve(settings: Settings, tls: ssl.SSLContext | None = None) -> int:
    """Run until SIGTERM/SIGINT, then shut down in logged phases. A second signal forces exit.

    Under systemd (`Type=notify`) it also reports READY=1 once the database is open and the
    listeners are bound, keeps STATUS= current, pings the watchdog and says STOPPING=1.
    """
    notifier = Notifier()
    # Pinged from the start: opening (and migrating) the database runs in the store's own
    # thread, so a slow start does not trip the watchdog but a blocked event loop does.
    watchdog = asyncio.get_running_loop().create_task(notifier.watchdog_loop())
    try:
        return await _serve(settings, notifier, tls)
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        notifier.close()


def _address_text(address: Any) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def _listen_failed(
    notifier: Notifier, runner: web.AppRunner, where: str, exc: OSError
) -> int:
    """After a bind that failed (logged by the caller with its own hint): say it in STATUS=,
    close what was opened, exit 3."""
    notifier.status(f"failed: cannot listen on {where}: {exc}")
    await runner.cleanup()
    return EXIT_LISTEN


async def _serve(settings: Settings, notifier: Notifier, tls: ssl.SSLContext | None) -> int:
    # Imported here so that `signalosd token …` starts without loading the server stack.
    from aiohttp import web

    from signalosd import keys
    from signalosd.app import create_app
    from signalosd.ops import control_socket, listeners
    from signalosd.ops.notify import StatusReporter

    listeners.raise_file_limit()
    reporter = StatusReporter(notifier)
    app = create_app(settings, status=reporter)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout_s
    )
    try:
        await runner.setup()
    except StateDirBusy as exc:
        log.error("event=startup_failed state_dir=%s error=%r", settings.state_dir, str(exc))
        notifier.status(f"failed: {exc}")
        return EXIT_FAILURE
    except (StoreError, OSError) as exc:
        log.error(
            "event=startup_failed state_dir=%s error=%r hint=%r",
            settings.state_dir,
            exc,
            "check that --state-dir exists or can be created and is writable",
        )
        notifier.status(f"failed: cannot open the database in {settings.state_dir}: {exc}")
        return EXIT_FAILURE
    # Everything made so far lives as long as the process: the garbage collector need never
    # scan it again, so a full collection costs what the live connections cost, not the whole
    # heap (a pause the emergency stop that happens to trigger it would wait through).
    gc.collect()
    gc.freeze()
    if in_clear_beyond_loopback(settings.host, tls):
        log.warning(
            "event=listening_in_clear host=%s hint=%r",
            settings.host,
            "tokens and trading commands will cross the network unencrypted: set tls_cert and "
            "tls_key, or keep host on 127.0.0.1 behind a TLS proxy (docs/operations.md)",
        )
    site = listeners.GuardedSite(runner, host=settings.host, port=settings.port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        log.error(
            "event=listen_failed host=%s port=%d error=%r hint=%r",
            settings.host,
            settings.port,
            exc.strerror or str(exc),
            "is another signalosd running? use --port",
        )
        return await _listen_failed(notifier, runner, f"{settings.host}:{settings.port}", exc)
    try:
        control_path = await control_socket.start(runner, settings)
    except OSError as exc:
        log.error(
            "event=listen_failed socket=%s error=%r hint=%r",
            settings.control_socket_path,
            exc.strerror or str(exc),
            'set control_socket to another path, or "off"',
        )
        return await _listen_failed(notifier, runner, str(settings.control_socket_path), exc)
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
        log.info(
            "event=listening url=%s://%s:%d version=%s",
            "https" if tls else "http",
            host,
            port,
            __version__,
        )
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
    except StoreError as exc:  # only the STATUS= text suffers; serving goes on
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


def tls_or_exit(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the TCP port (None: plain HTTP); a bad certificate or key is exit 2,
    before anything is opened or bound."""
    try:
        return server_context(settings)
    except ConfigError as exc:
        click.echo(f"signalosd: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


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
    "--dev",
    "dev_mode",
    is_flag=True,
    default=None,
    help="Development mode: the dashboard shows its WebSocket tester (setting dev_mode).",
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
    dev_mode: bool | None,
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
        "dev_mode": dev_mode or None,  # without --dev the file and environment decide
    }
    ctx.obj = {"config": config, "flags": flags}
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(config, **flags)
    tls = tls_or_exit(settings)
    if check_config:
        click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
        return
    setup_logging(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(serve(settings, tls)))


cli.add_command(token)
cli.add_command(backup_command)
cli.add_command(restore_command)


def main() -> None:
    cli(prog_name="signalosd")


if __name__ == "__main__":
    main()
