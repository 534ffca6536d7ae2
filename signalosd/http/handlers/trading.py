"""Trading controls: emergency stop, pause, resume, stealth, state, force-sync."""

from __future__ import annotations

from aiohttp import web

from signalosd import keys
from signalosd.domain import control
from signalosd.http.body import parse_body
from signalosd.http.mutate import mutate
from signalosd.http.responses import json_response
from signalosd.models import (
    EmergencyStopRequest,
    EmptyRequest,
    PauseRequest,
    ResumeRequest,
    StealthRequest,
)


async def emergency_stop(request: web.Request) -> web.Response:
    req = await parse_body(request, EmergencyStopRequest)
    return await mutate(request, lambda tx, c: control.emergency_stop(tx, c, req))


async def pause(request: web.Request) -> web.Response:
    req = await parse_body(request, PauseRequest)
    return await mutate(request, lambda tx, c: control.pause(tx, c, req))


async def resume(request: web.Request) -> web.Response:
    req = await parse_body(request, ResumeRequest)
    return await mutate(request, lambda tx, c: control.resume(tx, c, req))


async def stealth_toggle(request: web.Request) -> web.Response:
    req = await parse_body(request, StealthRequest)
    return await mutate(request, lambda tx, c: control.set_stealth(tx, c, req))


async def force_sync(request: web.Request) -> web.Response:
    await parse_body(request, EmptyRequest)
    return await mutate(request, control.force_sync)


async def state(request: web.Request) -> web.Response:
    account_id = request[keys.ACCOUNT_ID]
    return json_response(await request.app[keys.DB].read(lambda tx: tx.get_state(account_id)))
