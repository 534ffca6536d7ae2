"""The one error type of the daemon and its fixed codes.

Every failure that reaches a client is an `ApiError`; one middleware renders it as
`{"error": {"code", "message", "details"}}`. Codes are stable: clients branch on them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    INVALID_JSON = "invalid_json"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    FORBIDDEN_ORIGIN = "forbidden_origin"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TRADE_NOT_OPEN = "trade_not_open"
    TRADE_CLOSING = "trade_closing"
    HALT_CONFIRMATION_REQUIRED = "halt_confirmation_required"
    MODE_CONFLICT = "mode_conflict"
    RISK_LATCHED = "risk_latched"
    EVENTS_RESET = "events_reset"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    VALIDATION_ERROR = "validation_error"
    INVALID_STOPS = "invalid_stops"
    INVALID_VOLUME = "invalid_volume"
    INTERNAL_ERROR = "internal_error"
    NOT_READY = "not_ready"


STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.FORBIDDEN_ORIGIN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TRADE_NOT_OPEN: 409,
    ErrorCode.TRADE_CLOSING: 409,
    ErrorCode.HALT_CONFIRMATION_REQUIRED: 409,
    ErrorCode.MODE_CONFLICT: 409,
    ErrorCode.RISK_LATCHED: 409,
    ErrorCode.EVENTS_RESET: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.INVALID_STOPS: 422,
    ErrorCode.INVALID_VOLUME: 422,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.NOT_READY: 503,
}


class ApiError(Exception):
    """A failure with a stable code, a sentence for people and machine-readable details."""

    def __init__(self, code: ErrorCode, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details if details is not None else {}

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": str(self.code), "message": self.message, "details": self.details}}


def not_found(what: str, ident: object) -> ApiError:
    """404 for a missing or foreign object: the same answer either way so ids never leak."""
    return ApiError(ErrorCode.NOT_FOUND, f"{what} {ident} not found", {"id": str(ident)})
