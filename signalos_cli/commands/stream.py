"""`signalos tail` and `signalos ws`: the two commands that hold a WebSocket open.

Only these (and `agent`) load aiohttp, inside the command, so one-shot commands start fast.
The engines are `tail.py` and `wstester.py`; this module maps options to their arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from signalos_cli.context import App, json_option, pass_app
from signalos_cli.output import color_allowed


@click.command()
@click.option(
    "--since",
    type=click.IntRange(min=0),
    metavar="SEQ",
    help="Print the events after SEQ, then follow.",
)
@click.option(
    "-n",
    "last",
    type=click.IntRange(min=0),
    metavar="N",
    help="Print the last N events, then follow.",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="T",
    help="Only events of this type (repeatable; * is a wildcard: 'trade_*').",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep following, or stop at the head of the log as of connecting.",
)
@click.option(
    "--cursor-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resume after the seq stored here, and store the last printed seq.",
)
@json_option
@pass_app
def tail(
    app: App,
    since: int | None,
    last: int | None,
    types: tuple[str, ...],
    follow: bool,
    cursor_file: Path | None,
) -> None:
    """Follow the live event stream (like journalctl -f), never missing an event.

    Reconnects with backoff (1 s -> 30 s) and resumes after the last seq it printed, across
    dropped connections and daemon restarts. Connection states go to stderr.

    \b
    Exit codes: 0 done (--no-follow), 1 error, 2 usage, 3 daemon unreachable (--no-follow),
    4 token refused, 130 interrupted, 141 output closed, 143 terminated."""
    import asyncio

    from signalos_cli.stream.tail import tail as run_tail

    if since is not None and last is not None:
        raise click.UsageError("--since and -n exclude each other")
    s = app.settings
    color = not app.json_mode and color_allowed(s.color)
    code = asyncio.run(
        run_tail(
            s.url,
            app.stream_token(),
            socket=app.stream_socket(),
            since=since,
            last=last,
            types=list(types),
            follow=follow,
            cursor_file=cursor_file,
            as_json=app.json_mode,
            color=color,
            out=sys.stdout,
            err=sys.stderr,
        )
    )
    raise SystemExit(code)


@click.command()
@click.option("--no-auth", is_flag=True, help="Do not send authenticate first.")
@pass_app
def ws(app: App, no_auth: bool) -> None:
    """The WebSocket tester: print every frame the daemon sends (one JSON per line) and send
    the JSON lines given on stdin (blank lines and lines starting with # are skipped).

    \b
    Example:  echo '{"type": "subscribe", "data": {"since": 0}}' | signalos ws
    Exit codes: 0 end of input or server close, 2 usage, 3 unreachable, 130 interrupted."""
    import asyncio

    from signalos_cli.stream.wstester import ws_tester

    token = None if no_auth else app.stream_token()
    code = asyncio.run(
        ws_tester(
            app.settings.url,
            token,
            inp=sys.stdin,
            out=sys.stdout,
            err=sys.stderr,
            authenticate=not no_auth,
            socket=app.stream_socket(),
        )
    )
    raise SystemExit(code)
