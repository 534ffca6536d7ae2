"""`signalosd token|backup|restore`: the commands that work on the database file itself,
whether the daemon runs or not (restore: only when it does not)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from signalosd.auth import accounts
from signalosd.clock import SystemClock
from signalosd.config import ConfigError, Settings, load_settings
from signalosd.errors import ApiError
from signalosd.models import Role
from signalosd.store import StoreError
from signalosd.store.open import sync_transaction

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_LISTEN = 0, 1, 2, 3


def settings_or_exit(config: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(config, flags=flags)
    except ConfigError as exc:
        click.echo(f"signalosd: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def command_settings(ctx: click.Context, config: Path | None, state_dir: Path | None) -> Settings:
    """The settings for a subcommand: its own --config/--state-dir over the group's flags."""
    parent = ctx.obj or {"config": None, "flags": {}}
    flags = dict(parent["flags"])
    if state_dir is not None:
        flags["state_dir"] = state_dir
    return settings_or_exit(config or parent["config"], **flags)


@click.group("token")
@click.option("--config", type=click.Path(path_type=Path), default=None, help="TOML settings file.")
@click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None, help="Directory of the database."
)
@click.pass_context
def token(ctx: click.Context, config: Path | None, state_dir: Path | None) -> None:
    """Create, list and revoke API tokens (works whether the daemon runs or not)."""
    ctx.obj = command_settings(ctx, config, state_dir)


def _fail(message: str) -> NoReturn:
    click.echo(f"signalosd: {message}", err=True)
    sys.exit(EXIT_FAILURE)


def _existing_store(settings: Settings) -> Settings:
    """List and revoke must not quietly create an empty database in a mistyped --state-dir."""
    if not settings.db_path.exists():
        _fail(f"no database at {settings.db_path}; check --state-dir (or --config)")
    return settings


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
        with sync_transaction(settings, SystemClock()) as tx:
            made = accounts.create_token(tx, account, Role(role), label, accounts.local_actor())
    except ApiError as exc:
        _fail(exc.message)
    except (StoreError, OSError) as exc:
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
        with sync_transaction(_existing_store(settings), SystemClock()) as tx:
            account_id = None
            if account is not None:
                row = tx.account_by_name(account)
                if row is None:
                    _fail(f"account {account} not found")
                account_id = int(row["id"]) if row else None
            rows = tx.list_tokens(account_id)
    except (StoreError, OSError) as exc:
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
        with sync_transaction(_existing_store(settings), SystemClock()) as tx:
            done = accounts.revoke_token(tx, token_id, accounts.local_actor())
    except ApiError as exc:
        _fail(exc.message)
    except (StoreError, OSError) as exc:
        _fail(f"cannot write {settings.db_path}: {exc} (check --state-dir and permissions)")
    click.echo(
        f"revoked token {token_id}" if done["changed"] else f"token {token_id} was already revoked",
        err=True,
    )


@click.command("backup")
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
    from signalosd.ops.backup import (  # keeps the daemon's start-up imports unchanged
        BackupError,
        backup,
    )

    settings = command_settings(ctx, config, state_dir)
    try:
        done = backup(settings.db_path, dest, force=force)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(f"signalosd: {done.summary()}", err=True)


@click.command("restore")
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
    from signalosd.ops.backup import BackupError, restore
    from signalosd.ops.state_lock import StateDirBusy, hold

    settings = command_settings(ctx, config, state_dir)
    try:
        with hold(settings.state_dir, "restore"):
            done = restore(src, settings.db_path)
    except (BackupError, StateDirBusy) as exc:
        _fail(str(exc))
    except (StoreError, OSError) as exc:
        _fail(f"restore into {settings.db_path} failed: {exc}")
    click.echo(f"signalosd: {done.summary()}", err=True)
    for line in done.warnings():
        click.echo(f"signalosd: warning: {line}", err=True)
