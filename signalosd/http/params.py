"""Query, path and header parameters, checked: a bad one is a 4xx naming it, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from signalosd.errors import ApiError, ErrorCode, not_found
from signalosd.models import Source

SOURCE_HEADER = "X-SignalOS-Source"


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
    """Where the request says it comes from (`X-SignalOS-Source`, default api), for its actor."""
    raw = request.headers.get(SOURCE_HEADER, Source.API.value).lower()
    try:
        return Source(raw).value
    except ValueError:
        allowed = ", ".join(s.value for s in Source)
        raise ApiError(
            ErrorCode.BAD_REQUEST, f"header {SOURCE_HEADER} must be one of {allowed} (got {raw!r})"
        ) from None
