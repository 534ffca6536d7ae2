"""What every one-shot command gets: the settings, the output and the client, each built on
first use (so `--help` needs no token and a broken config file does not stop `signalos agent`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from signalos_cli import settings as settings_mod
from signalos_cli.client import Client
from signalos_cli.errors import Failed
from signalos_cli.output import Output, color_allowed
from signalos_cli.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class App:
    def __init__(self, flags: dict[str, Any], json_mode: bool, traceback: bool) -> None:
        self.flags = flags
        self.json_mode = json_mode
        self.traceback = traceback
        self._settings: Settings | None = None
        self._out: Output | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            paths = [settings_mod.SYSTEM_CONFIG, settings_mod.user_config_path(os.environ)]
            self._settings = settings_mod.resolve(self.flags, os.environ, paths)
        return self._settings

    @property
    def out(self) -> Output:
        if self._out is None:
            color = False if self.json_mode else color_allowed(self.settings.color)
            self._out = Output(json_mode=self.json_mode, color=color)
        return self._out

    def _local(self) -> bool:
        """Over the control socket the daemon knows the user by uid: a token only if one was
        configured (it then wins), never the implicit ./var/admin.token."""
        s = self.settings
        return s.socket is not None and not s.explicit_token()

    def stream_token(self) -> str | None:
        """The token for `/ws` (None on the control socket without a configured token)."""
        return None if self._local() else self.settings.token()

    def stream_socket(self) -> str | None:
        """The control socket the WebSocket commands connect through, if any."""
        return None if self.settings.socket is None else str(self.settings.socket)

    def client(self) -> Client:
        if self._client is None:
            from signalosd import __version__

            s = self.settings
            self._client = Client(
                s.url,
                None if self._local() else s.token(),
                timeout=s.timeout,
                retries=s.retries,
                source=s.source,
                account=s.account,
                user_agent=f"signalos-cli/{__version__}",
                socket=None if s.socket is None else str(s.socket),
                service_user=s.service_user,
            )
        return self._client


pass_app = click.make_pass_decorator(App)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    app = ctx.find_object(App)
    if value and app is not None:
        app.json_mode = True


def json_option(f: F) -> F:
    """`--json` after the command name too: `signalos trades --json`."""
    option = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print one JSON document (see docs/cli.md).",
    )
    return option(f)


def yes_option(f: F) -> F:
    """`--yes`: what a script passes to confirm (see `confirm`)."""
    option = click.option(
        "--yes", "-y", is_flag=True, help="Do not ask (required when stdin is not a terminal)."
    )
    return option(f)


def needs_terminal() -> None:
    """Without --yes a confirmation needs someone at a terminal: refuse (exit 2) otherwise."""
    if not sys.stdin.isatty():
        raise click.UsageError("stdin is not a terminal: pass --yes to confirm (nothing was sent)")


def ask(question: str, declined: str) -> None:
    """Ask on the terminal (default no); declining is a failure (exit 1) saying `declined`."""
    if not click.confirm(question, default=False, err=True):
        raise Failed(declined)
