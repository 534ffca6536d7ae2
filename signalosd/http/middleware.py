"""Request middlewares: request id + access log, the one error shape, and authorisation."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from signalosd import keys
from signalosd.auth import local
from signalosd.auth.tokens import Principal, bearer
from signalosd.errors import ApiError, ErrorCode, not_found
from signalosd.http.responses import json_response
from signalosd.http.route import Route
from signalosd.models import Role

log = logging.getLogger("signalosd.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def error_response(err: ApiError, request_id: str | None = None) -> web.Response:
    response = json_response(err.to_dict(), status=err.status)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One log line per request, with a request id that is echoed or generated. The path is
    percent-decoded (`%0A` is a newline): like every argument, logs.py escapes it."""
    incoming = request.headers.get("X-Request-ID", "")
    # fullmatch: `$` would let a trailing newline through
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    request[keys.REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    finally:
        seconds = time.perf_counter() - started
        request.app[keys.METRICS].observe_http(request, status, seconds)
        principal = request.get(keys.PRINCIPAL)
        log.info(
            "event=http_request request_id=%s method=%s path=%s status=%d duration_ms=%.2f "
            "token_id=%s",
            request_id,
            request.method,
            request.path,
            status,
            seconds * 1000,
            principal.token_id if principal else "-",
        )


def _http_error(exc: web.HTTPException, request: web.Request) -> ApiError:
    if exc.status == 404:
        return ApiError(
            ErrorCode.NOT_FOUND,
            f"no such endpoint: {request.method} {request.path} (see /openapi.json)",
        )
    if exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", set()))
        return ApiError(
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
            {"allowed": allowed},
        )
    if exc.status == 413:
        limit = request.app[keys.SETTINGS].max_body_bytes
        return ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body is larger than the limit of {limit} bytes",
            {"limit": limit},
        )
    return ApiError(ErrorCode.BAD_REQUEST, f"bad request: {exc.reason}")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes `{"error": {"code", "message", "details"}}`; nothing else leaks."""
    request_id = request.get(keys.REQUEST_ID)
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_http_error(exc, request), request_id)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("event=unhandled_error request_id=%s path=%s", request_id, request.path)
        return error_response(
            ApiError(
                ErrorCode.INTERNAL_ERROR,
                f"internal error; the daemon log has details under request id {request_id}",
            ),
            request_id,
        )


def _route_of(request: web.Request) -> Route | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return request.app[keys.ROUTES].get((request.method, resource.canonical))


async def _target_account(request: web.Request, principal: Principal) -> int:
    """The account a request acts on: the token's own, or (admin only) `?account=NAME`.
    A non-admin naming another account gets 404, exactly as for a missing one."""
    name = request.query.get("account")
    if name is None or name == principal.account:
        return principal.account_id
    if principal.role is not Role.ADMIN:
        raise not_found("account", name)
    row = await request.app[keys.DB].read(lambda tx: tx.account_by_name(name))
    if row is None:
        raise not_found("account", name)
    return int(row["id"])


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = _route_of(request)
    if route is None or route.role is None:
        return await handler(request)
    header = request.headers.get("Authorization")
    cred = local.peer(request) if header is None else None
    if cred is not None:  # the local control socket, no token: the peer's uid decides
        principal = await local.verify(request, cred)
    else:
        principal = await request.app[keys.AUTH].verify(bearer(header))
    if not principal.allows(route.role) and not (route.agent_ok and principal.role is Role.AGENT):
        who = (
            f"local user {principal.label}" if principal.is_local else f"token {principal.token_id}"
        )
        raise ApiError(
            ErrorCode.FORBIDDEN,
            f"{request.method} {route.path} needs a token with the {route.role.value} role; "
            f"{who} has the {principal.role.value} role (create one with "
            f"'signalosd token create --role {route.role.value}')",
            {"needed": route.role.value, "role": principal.role.value},
        )
    request[keys.PRINCIPAL] = principal
    request.app[keys.GUARD].admit(request.protocol)  # no longer counts as unauthenticated
    request[keys.ACCOUNT_ID] = await _target_account(request, principal)
    return await handler(request)
