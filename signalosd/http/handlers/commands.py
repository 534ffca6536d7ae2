"""The outbox over REST: a command's status, with a long-poll for its outcome."""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.errors import not_found
from signalosd.http.params import float_param
from signalosd.http.responses import json_response


async def get_command(request: web.Request) -> web.Response:
    """`?wait=S` waits (at most `command_wait_max_s`) until the command is finished."""
    account_id = request[keys.ACCOUNT_ID]
    command_id = request.match_info["id"]
    settings = request.app[keys.SETTINGS]
    wait = float_param(request, "wait", 0.0, 0.0, settings.command_wait_max_s)
    if wait > 0:
        command = await request.app[keys.WAITERS].wait(account_id, command_id, wait)
    else:
        command = await request.app[keys.DB].read(lambda tx: tx.get_command(account_id, command_id))
    if command is None:
        raise not_found("command", command_id)
    return json_response({"command": command})
