"""JSON replies, encoded strictly (no NaN or Infinity ever reaches a client)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signalosd import strict_json


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=strict_json.dumps(body).encode(),
        content_type="application/json",
    )
