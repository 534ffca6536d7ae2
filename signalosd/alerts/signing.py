"""Signing a webhook's body so the receiver can tell it came from this daemon, unchanged.

`X-SignalOS-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with the
webhook's secret (the GitHub webhooks convention, so receivers' existing verifiers fit).
Verify it with `hmac.compare_digest` over the raw body, before parsing it (docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-SignalOS-Signature"
SECRET_BYTES = 32


def new_secret() -> str:
    """A secret for a webhook created without one (url-safe text, 32 random bytes)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, body: bytes) -> str:
    """The header's value for `body` signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` with `secret` (constant time)."""
    return hmac.compare_digest(signature(secret, body), header)
