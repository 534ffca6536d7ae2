"""What every handler needs: the caller's context, body and query parsing, mutation replies."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from signalosd import keys, strict_json
from signalosd.domain.context import Context
from signalosd.domain.outcomes import Outcome
from signalosd.errors import ApiError, ErrorCode, not_found
from signalosd.http import outcomes
from signalosd.models import Actor, Source
from signalosd.store import Tx

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
SOURCE_HEADER = "X-SignalOS-Source"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=strict_json.dumps(body).encode(),
        content_type="application/json",
    )


def validation_error(exc: ValidationError, where: str) -> ApiError:
    """422 naming each bad field by its path, so a client can point at it."""
    fields = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or where,
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False)
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(ErrorCode.VALIDATION_ERROR, f"invalid {where}: {summary}", {"fields": fields})


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request body as `model`. An empty body is `{}`: every body field is optional or
    checked by the model itself."""
    raw = await request.read()
    if raw.strip():
        # pydantic's parser keeps the last of duplicate keys and reads NaN: refuse both first.
        try:
            strict_json.loads(raw)
        except strict_json.JsonError as exc:
            raise ApiError(
                ErrorCode.INVALID_JSON,
                f"request body is not valid JSON ({exc}); send a JSON object",
            ) from None
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ApiError(
                ErrorCode.INVALID_JSON,
                f"request body is not valid JSON ({first['msg']}); send a JSON object",
            ) from None
        if first["type"] == "model_type":
            raise ApiError(
                ErrorCode.VALIDATION_ERROR, "request body must be a JSON object", {"fields": []}
            ) from None
        raise validation_error(exc, "request body") from None


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"query parameter '{name}' must be a whole number from {lo} to {hi} (got {raw!r})",
            {"fields": [{"field": name, "message": f"expected {lo}..{hi}", "type": "range"}]},
        )
    return value


def float_param(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:  # NaN fails too
        raise ApiError(
            ErrorCode.VALIDATION_ERROR,
            f"query parameter '{name}' must be a number from {lo:g} to {hi:g} (got {raw!r})",
            {"fields": [{"field": name, "message": f"expected {lo:g}..{hi:g}", "type": "range"}]},
        )
    return value


def _bad_time(name: str, raw: str, why: str) -> ApiError:
    return ApiError(
        ErrorCode.VALIDATION_ERROR,
        f"query parameter '{name}' must be an ISO 8601 time such as 2026-01-05T09:00:00Z "
        f"({why}; got {raw[:64]!r})",
        {"fields": [{"field": name, "message": why, "type": "datetime"}]},
    )


def time_param(request: web.Request, name: str, default: datetime) -> datetime:
    """An ISO 8601 time from the query (UTC when it names no offset), to the millisecond
    (the store's precision), between 1970 and 9999."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad_time(name, raw, "not a date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = datetime.min.replace(tzinfo=UTC)  # refused just below
    if not 1970 <= value.year <= 9998:
        raise _bad_time(name, raw, "years 1970 to 9998 only")
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def list_param(request: web.Request, name: str) -> list[str]:
    """A repeatable, comma-separable query parameter: `?type=a&type=b` or `?type=a,b`."""
    return [part for raw in request.query.getall(name, []) for part in raw.split(",") if part]


def path_id(request: web.Request, what: str) -> int:
    """A numeric id from the path; anything else cannot name an object, so it is a 404."""
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise not_found(what, raw)
    return int(raw)


def source(request: web.Request) -> str:
    raw = request.headers.get(SOURCE_HEADER, Source.API.value).lower()
    try:
        return Source(raw).value
    except ValueError:
        allowed = ", ".join(s.value for s in Source)
        raise ApiError(
            ErrorCode.BAD_REQUEST, f"header {SOURCE_HEADER} must be one of {allowed} (got {raw!r})"
        ) from None


async def long_read(request: web.Request, fn: Callable[[Tx], T]) -> T:
    """A long REST read for the caller's token: paced (`heavy_read_rate_per_token`), then on
    the scan lane (at most `heavy_reads_per_token` at once), never on the token checks' lane."""
    owner = request[keys.PRINCIPAL].token_id
    await request.app[keys.PACER].turn(owner)
    result: T = await request.app[keys.DB].scan(fn, owner=owner)
    return result


def ctx(request: web.Request) -> Context:
    principal = request[keys.PRINCIPAL]
    actor = Actor.model_validate(principal.actor(source(request)))
    return Context(request[keys.ACCOUNT_ID], actor, request.app[keys.POLICY])


async def mutate(request: web.Request, fn: Callable[[Tx, Context], Outcome]) -> web.Response:
    """Run a state change in one transaction and reply with what it committed.

    With an `Idempotency-Key`, the first reply is stored in the same transaction as the change,
    so a repeat (a retry after a lost reply) gets those bytes back and acts no second time."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            "Idempotency-Key must be 1-255 printable ASCII characters without spaces "
            "(a UUID is a good choice)",
        )
    c = ctx(request)
    body = await request.read()
    fingerprint = hashlib.sha256(
        b"\0".join(
            [request.method.encode(), request.path.encode(), request.query_string.encode(), body]
        )
    ).hexdigest()

    def run(tx: Tx) -> tuple[int, bytes, bool]:
        if key is not None:
            prior = tx.idempotent_reply(c.account_id, key)
            if prior is not None:
                if prior["fingerprint"] != fingerprint:
                    raise ApiError(
                        ErrorCode.IDEMPOTENCY_KEY_REUSED,
                        "this Idempotency-Key was already used for a different request; "
                        "use a new key for a new request",
                        {"key": key},
                    )
                return prior["status"], bytes(prior["body"]), True
        outcome = fn(tx, c)
        status, data = outcomes.status(outcome), strict_json.dumps(outcomes.body(outcome)).encode()
        if key is not None:
            tx.save_idempotent_reply(c.account_id, key, fingerprint, status, data)
        return status, data, False

    status, data, replayed = await request.app[keys.DB].write(run)
    response = web.Response(status=status, body=data, content_type="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
