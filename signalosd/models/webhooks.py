"""Outgoing webhooks on the wire (docs/alerts.md): the request that creates one, the replies,
and the words (`WebhookFormat`). No I/O here.

The event globs are checked by the same rules as `/api/events?type=` (type_filter.py), so a
webhook can never hold a pattern the linear-time matcher would refuse. The URL is checked at
the edge (alerts/urls.py), where it is also redacted for every reply but the creation's.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from signalosd.models.api import REQUEST_CONFIG
from signalosd.models.type_filter import FilterError
from signalosd.models.type_filter import parse as parse_types
from signalosd.models.words import EventType


class WebhookFormat(StrEnum):
    """The body a receiver expects: ours (`json`) or a chat service's incoming-webhook shape."""

    JSON = "json"
    SLACK = "slack"
    DISCORD = "discord"
    TELEGRAM = "telegram"
    NTFY = "ntfy"


# What a webhook created without `events` is sent: what a trader must hear about at once.
DEFAULT_EVENTS: tuple[str, ...] = (
    EventType.EMERGENCY_STOP.value,
    "risk_*",
    EventType.AGENT_DISCONNECTED.value,
    EventType.COMMAND_FAILED.value,
)
URL_MAX_LENGTH = 2048
SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 256


class WebhookRequest(BaseModel):
    """POST /api/webhooks. `account` (a name) limits it to that account's events (and the
    system-wide ones, as that account's tokens see them); absent, every account's."""

    model_config = REQUEST_CONFIG
    url: str = Field(min_length=1, max_length=URL_MAX_LENGTH)
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1)
    format: WebhookFormat = WebhookFormat.JSON
    secret: str | None = Field(
        default=None, min_length=SECRET_MIN_LENGTH, max_length=SECRET_MAX_LENGTH
    )
    account: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        try:
            parse_types(value)
        except FilterError as exc:
            raise ValueError(str(exc)) from None
        return list(dict.fromkeys(value))  # a repeated pattern adds nothing


class Webhook(BaseModel):
    """A webhook as listed: the URL redacted (it may hold a token), the secret never shown."""

    id: int
    url: str
    events: list[str]
    format: WebhookFormat
    account: str | None
    has_secret: bool
    created_at: str
    delivered_seq: int
    pending: int  # matching events after delivered_seq (counted over at most scan_max_rows)
    last_error: str | None
    last_attempt_at: str | None
    failures: int  # failed attempts since the last delivery (0: healthy)


class WebhookCreated(BaseModel):
    """The creation reply: the only one with the full URL and the secret."""

    webhook: Webhook
    url: str
    secret: str


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class WebhookDeleted(BaseModel):
    webhook: Webhook
    deleted: bool
