"""Browser origins: who may use the daemon from a web page.

A browser attaches `Origin` to every WebSocket handshake and to cross-origin (and same-origin
non-GET) requests. Any page the user opens could otherwise drive the daemon through the
user's browser: a WebSocket is not bound by CORS at all, and a REST call with a token pasted
into a hostile page, or a simple POST, reaches the handler even when its reply cannot be read.
So a request whose `Origin` is neither the daemon's own (origin.py: the request's scheme and
Host header) nor listed in `allowed_origins` is refused with `403 forbidden_origin` before
anything runs, WebSocket upgrades (`/ws`, `/ws/agent`) included. A listed origin gets the
CORS headers (headers.py) on every reply, and its preflight (`OPTIONS` with
`Access-Control-Request-Method`) an answer without a token. A request without `Origin` (curl,
the CLI, the agent) is not affected.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from signalosd import keys
from signalosd.errors import ApiError, ErrorCode
from signalosd.models.origin import own_origin, parse_origin
from signalosd.web.headers import ALLOW_HEADERS, ALLOW_METHODS, PREFLIGHT_MAX_AGE_S

log = logging.getLogger("signalosd.http")
_SHOWN = 200  # at most this much of a client's Origin goes into a message


def _refusal(sent: str, normal: str | None, own: str | None) -> ApiError:
    shown = sent[:_SHOWN]
    if normal is None:
        return ApiError(
            ErrorCode.FORBIDDEN_ORIGIN,
            f"Origin {shown!r} is not of the form scheme://host[:port] (a sandboxed frame or a "
            "file:// page sends 'null'), so it cannot be allowed in allowed_origins; open the "
            f"dashboard from the daemon's own address ({own or 'its URL'})",
            {"origin": shown, "own": own, "setting": "allowed_origins"},
        )
    return ApiError(
        ErrorCode.FORBIDDEN_ORIGIN,
        f"Origin {shown} is not this daemon's own ({own}) and is not listed in "
        f'allowed_origins: to let pages from it in, add "{normal}" to allowed_origins '
        "(config file, or SIGNALOS_ALLOWED_ORIGINS) and restart signalosd",
        {"origin": shown, "own": own, "setting": "allowed_origins"},
    )


def _preflight() -> web.Response:
    """204 for a preflight: the CORS headers proper are added with every reply's (headers.py)."""
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return response


@web.middleware
async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    sent = request.headers.get("Origin")
    if sent is None:
        return await handler(request)
    normal = parse_origin(sent)
    own = own_origin(request.scheme, request.headers.get("Host", ""))
    listed = normal is not None and normal in request.app[keys.SETTINGS].allowed_origins
    if normal is None or (normal != own and not listed):
        log.info(
            "event=forbidden_origin method=%s path=%s origin=%r own=%r",
            request.method,
            request.path,
            sent[:_SHOWN],
            own,
        )
        raise _refusal(sent, normal, own)
    if normal != own:
        request[keys.CORS_ORIGIN] = sent  # a browser compares it with what it sent
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight()
    return await handler(request)
