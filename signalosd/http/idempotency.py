"""`Idempotency-Key`: a repeated mutating request gets the first reply back, byte for byte.

The first reply is stored in the same transaction as the change it reports, so a client that
retries after a lost reply acts no second time. The key is scoped to the account, and bound to
the request it came with (method, path, query and body): the same key on another request is
refused rather than answered with an unrelated reply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from aiohttp import web

from signalosd.errors import ApiError, ErrorCode
from signalosd.store import Tx

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def key_of(request: web.Request) -> str | None:
    """The request's key, checked; None without one."""
    key = request.headers.get(HEADER)
    if key is not None and not _KEY.match(key):
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"{HEADER} must be 1-255 printable ASCII characters without spaces "
            "(a UUID is a good choice)",
        )
    return key


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply as sent (and as stored for a key): its status and its encoded body."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Idempotent:
    """One keyed request: its key and the fingerprint of what it asks."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, request: web.Request, key: str, body: bytes) -> Idempotent:
        parts = [request.method.encode(), request.path.encode(), request.query_string.encode()]
        return cls(key, hashlib.sha256(b"\0".join([*parts, body])).hexdigest())

    def prior(self, tx: Tx, account_id: int) -> Reply | None:
        """The reply stored for this key, or None the first time; an error when the key was
        used for a different request."""
        prior = tx.idempotent_reply(account_id, self.key)
        if prior is None:
            return None
        if prior["fingerprint"] != self.fingerprint:
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request",
                {"key": self.key},
            )
        return Reply(prior["status"], bytes(prior["body"]))

    def remember(self, tx: Tx, account_id: int, reply: Reply) -> None:
        tx.save_idempotent_reply(account_id, self.key, self.fingerprint, reply.status, reply.body)
