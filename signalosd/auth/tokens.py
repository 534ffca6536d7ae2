"""Tokens and roles: issue, verify, and who may do what.

A token is shown once; only its SHA-256 is stored. Roles rank viewer < operator < admin. Two
roles stand apart and open one door each (besides admin, who opens every door): `agent`, the
desktop agent's endpoints; `metrics`, /metrics, whose process-wide series describe every account,
so only a scraper made for it (or an admin) may read them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from signalosd.errors import ApiError, ErrorCode
from signalosd.models import Actor, ActorKind, Role
from signalosd.store import Database, Tx

TOKEN_PREFIX = "sos_"
LOCAL_TOKEN_PREFIX = "local:"  # Principal.token_id of a local user on the control socket
_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
_APART = (Role.AGENT, Role.METRICS)  # outside the ranking: their own door, or admin


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue_token(tx: Tx, account_id: int, role: Role, label: str) -> tuple[str, str]:
    """Create a token in `tx`; return (token id, the secret). The secret is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(6)
    tx.insert_token(token_id, account_id, role.value, label, hash_token(raw))
    return token_id, raw


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the token's identity and home account (or, with token_id
    "local:uid:N", a local user on the control socket; see auth/local.py)."""

    token_id: str
    account_id: int
    account: str
    role: Role
    label: str

    def allows(self, needed: Role) -> bool:
        if needed in _APART:
            return self.role in (needed, Role.ADMIN)
        if self.role in _APART:
            return False
        return _RANK[self.role] >= _RANK[needed]

    @property
    def is_local(self) -> bool:
        """A user on the local control socket (by peer credentials), not a token."""
        return self.token_id.startswith(LOCAL_TOKEN_PREFIX)

    def actor_model(self, source: str) -> Actor:
        """Who acted (`source`: the client's kind, a `Source` value). Made once per mutating
        request (about 4 us; validating is faster than pydantic's model_construct here)."""
        if self.is_local:
            kind, id_ = ActorKind.LOCAL, self.token_id.removeprefix(LOCAL_TOKEN_PREFIX)
        else:
            kind, id_ = ActorKind.TOKEN, self.token_id
        return Actor(kind=kind, id=id_, label=self.label, role=self.role.value, source=source)

    def actor(self, source: str) -> dict[str, Any]:
        """Who acted, as events record it."""
        return self.actor_model(source).recorded()


def unauthorized(message: str) -> ApiError:
    return ApiError(ErrorCode.UNAUTHORIZED, message)


class TokenAuth:
    """Verifies bearer tokens against the database on every request (so a revocation made by
    `signalosd token revoke` takes effect at once) and records `last_used_at`, at most once per
    `touch_interval` per token, off the request path."""

    def __init__(self, db: Database, touch_interval: float) -> None:
        self._db = db
        self._touch_interval = touch_interval
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def verify(self, raw: str | None) -> Principal:
        if not raw:
            raise unauthorized(
                "missing token: send 'Authorization: Bearer <token>' "
                "(create one with 'signalosd token create')"
            )
        digest = hash_token(raw)
        row = await self._db.read(lambda tx: tx.token_by_hash(digest))
        if row is None or not hmac.compare_digest(row["hash"], digest):
            raise unauthorized("invalid token: check the token, or create a new one")
        if row["revoked_at"] is not None:
            raise unauthorized(
                f"token {row['id']} was revoked at {row['revoked_at']}; use another token"
            )
        self._touch(row["id"])
        return Principal(
            row["id"], row["account_id"], row["account"], Role(row["role"]), row["label"]
        )

    def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        last = self._touched.get(token_id)
        if last is not None and now - last < self._touch_interval:
            return
        self._touched[token_id] = now
        task = asyncio.get_running_loop().create_task(
            self._db.write(lambda tx: tx.touch_token(token_id))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Let pending last-used writes finish before the database closes."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return value.strip()
