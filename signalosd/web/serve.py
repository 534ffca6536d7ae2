"""The dashboard's static files: `GET /` (index.html) and `GET /static/{path}`.

No token: the page holds no data, it asks the API for it with the token the user pastes.
Only files of the index (files.py) are served: any other path, however spelt, and every
directory is the one 404 error, never a listing and never a 500.

Caching: `Cache-Control: no-cache` (a browser may keep a copy but revalidates it every time)
with the strong ETag, answered `304` on `If-None-Match`: after an upgrade no one runs
yesterday's JavaScript against today's API, and a reload still costs only a round trip per
file.
"""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.errors import ApiError, ErrorCode
from signalosd.web.files import INDEX, Asset

CACHE_CONTROL = "no-cache"


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or a list of entity tags, compared weakly (W/ ignored)."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _reply(request: web.Request, asset: Asset | None, missing: str) -> web.Response:
    if asset is None:
        raise ApiError(ErrorCode.NOT_FOUND, missing, {"path": request.path})
    headers = {"ETag": asset.etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("If-None-Match", ""), asset.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)  # HEAD: aiohttp sends no body


async def index(request: web.Request) -> web.Response:
    files = request.app[keys.STATIC]
    return _reply(
        request,
        files.find(INDEX),
        f"the dashboard is not installed here ({files.root / INDEX} is missing); reinstall "
        "signalos, or use the API and the CLI",
    )


async def static_file(request: web.Request) -> web.Response:
    return _reply(
        request,
        request.app[keys.STATIC].find(request.match_info["path"]),
        f"no such file: {request.path} (the dashboard's files are under /static/)",
    )
