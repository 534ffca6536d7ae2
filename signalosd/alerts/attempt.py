"""One delivery attempt: POST the alert under a deadline and say what went wrong, if anything.

A 2xx answer is a delivery; anything else (another status, a refused connection, no answer
within the deadline, a TLS failure) is a failed attempt, described in a short line that never
holds the URL's path or query (where chat services keep their credential). Redirects are not
followed: a receiver that moved is a configuration to fix, not a place to send secrets to.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from signalosd.alerts.formats import Request

_ERROR_MAX = 300


def _scrubbed(message: str, url: str, shown: str) -> str:
    message = message.replace(url, shown)
    parts = urlsplit(url)
    for secret in (parts.path, parts.query):
        if len(secret) > 1:
            message = message.replace(secret, "/…")
    message = " ".join(message.split())
    return message if len(message) <= _ERROR_MAX else message[: _ERROR_MAX - 1] + "…"


async def post(
    session: aiohttp.ClientSession, url: str, shown: str, request: Request, timeout_s: float
) -> str | None:
    """None when the receiver accepted the alert, else what went wrong. `shown` is the URL
    as it may be logged (redacted)."""
    try:
        async with session.post(
            url,
            data=request.body,
            headers=request.headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            if 200 <= resp.status < 300:
                return None
            return _scrubbed(f"HTTP {resp.status} {resp.reason or ''}".strip(), url, shown)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except asyncio.CancelledError:
        raise
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return _scrubbed(f"{type(exc).__name__}: {exc}", url, shown)
