"""Request bodies: strict JSON, validated against the route's request model."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from signalosd import strict_json
from signalosd.errors import ApiError, ErrorCode

M = TypeVar("M", bound=BaseModel)


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
