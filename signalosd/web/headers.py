"""The headers every response carries, pages and API alike, errors and 404s included.

- `Content-Security-Policy`: the dashboard loads only its own files (no inline script or
  style, no eval, no CDN) and talks only to its own origin; nothing may frame it
  (clickjacking an emergency stop). On API replies it costs a few bytes and makes a JSON
  reply opened as a page inert.
- `X-Content-Type-Options: nosniff`: a reply is never run as a script or style unless its
  Content-Type says so.
- `Referrer-Policy: no-referrer`: the daemon's URLs never leak to another site.

Added in `on_response_prepare` (app.py), so a response a handler prepares itself (a
WebSocket's 101) gets them too; listeners.py adds them to the parser's own error replies,
which are written outside the app.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from signalosd import keys

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# What a page of a listed origin (cors.py) may send and read.
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-SignalOS-Source, X-Request-ID"
EXPOSE_HEADERS = "Idempotent-Replayed, X-Request-ID"
ALLOW_METHODS = "GET, HEAD, POST, PUT, DELETE"
PREFLIGHT_MAX_AGE_S = 600


def add_security_headers(headers: MutableMapping[str, str]) -> None:
    headers.update(SECURITY_HEADERS)


def add_cors_headers(headers: MutableMapping[str, str], origin: str) -> None:
    """A reply a page of `origin` (a listed one) may read."""
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    vary = headers.get("Vary")
    headers["Vary"] = "Origin" if not vary else f"{vary}, Origin"


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's `on_response_prepare` signal: just before the status line is written."""
    add_security_headers(response.headers)
    origin = request.get(keys.CORS_ORIGIN)
    if origin is not None:
        add_cors_headers(response.headers, origin)
