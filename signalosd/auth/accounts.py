"""Accounts and tokens: first-start bootstrap and the `signalosd token` operations.

Each function runs inside one transaction (the daemon's writer, or `sync_transaction` for the
CLI, which works on the database file whether the daemon runs or not).
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Any

from signalosd.auth.tokens import issue_token
from signalosd.errors import ApiError, ErrorCode
from signalosd.models import Actor, ActorKind, EventType, Role, Source, system_actor
from signalosd.store import Tx

DEFAULT_ACCOUNT = "default"
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SYSTEM_ACTOR = system_actor("signalosd")


def local_actor() -> dict[str, Any]:
    """The person at this host's shell, for changes made with `signalosd token …`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return Actor(
        kind=ActorKind.LOCAL, id=f"uid:{os.getuid()}", label=user, source=Source.CLI
    ).recorded()


def _check_name(name: str) -> None:
    if not _ACCOUNT_NAME.match(name):
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"invalid account name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )


def write_secret(path: Path, secret: str) -> None:
    """Write a token file readable by its owner only, replacing any old one atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def bootstrap(tx: Tx, token_path: Path) -> bool:
    """On an empty database: create account `default` and an admin token in `token_path`.

    The file is written before COMMIT: if the commit fails, the next start simply does it again.
    """
    if tx.has_accounts():
        return False
    account_id = tx.create_account(DEFAULT_ACCOUNT, SYSTEM_ACTOR)
    token_id, secret = issue_token(tx, account_id, Role.ADMIN, "bootstrap admin")
    tx.append_event(
        account_id,
        EventType.TOKEN_CREATED,
        {"token_id": token_id, "role": Role.ADMIN.value, "label": "bootstrap admin"},
        SYSTEM_ACTOR,
    )
    write_secret(token_path, secret)
    return True


def create_token(
    tx: Tx, account: str, role: Role, label: str, actor: dict[str, Any]
) -> dict[str, Any]:
    """A new token (creating the account if needed). The secret is in the result only."""
    _check_name(account)
    row = tx.account_by_name(account)
    created_account = row is None
    account_id = tx.create_account(account, actor) if row is None else int(row["id"])
    token_id, secret = issue_token(tx, account_id, role, label)
    tx.append_event(
        account_id,
        EventType.TOKEN_CREATED,
        {"token_id": token_id, "role": role.value, "label": label},
        actor,
    )
    return {
        "id": token_id,
        "token": secret,
        "account": account,
        "role": role.value,
        "label": label,
        "account_created": created_account,
    }


def revoke_token(tx: Tx, token_id: str, actor: dict[str, Any]) -> dict[str, Any]:
    row = tx.revoke_token(token_id)
    if row is None:
        raise ApiError(
            ErrorCode.NOT_FOUND, f"token {token_id} not found; see 'signalosd token list'"
        )
    already = row["revoked_at"] is not None
    if not already:
        tx.append_event(
            row["account_id"],
            EventType.TOKEN_REVOKED,
            {"token_id": token_id, "role": row["role"], "label": row["label"]},
            actor,
        )
    return {"id": token_id, "changed": not already}
