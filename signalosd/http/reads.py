"""Long REST reads (event pages, trade and signal lists, the account history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from signalosd import keys
from signalosd.store import Tx

T = TypeVar("T")


async def long_read(request: web.Request, fn: Callable[[Tx], T]) -> T:
    """A long REST read for the caller's token: paced (`heavy_read_rate_per_token`), then on
    the scan lane (at most `heavy_reads_per_token` at once), never on the token checks' lane."""
    owner = request[keys.PRINCIPAL].token_id
    await request.app[keys.PACER].turn(owner)
    result: T = await request.app[keys.DB].scan(fn, owner=owner)
    return result
