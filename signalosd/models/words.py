"""Domain words the daemon, the CLI and the agent share: event types, WebSocket close codes and
actor kinds. One definition each, so a listener, a log line and the wire cannot disagree on a
spelling. No I/O here.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from signalosd.models.api import CommandStatus


class EventType(StrEnum):
    """Every type of event the daemon appends to the log (the audit log too)."""

    ACCOUNT_CREATED = "account_created"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    DATABASE_RESTORED = "database_restored"
    EVENTS_PRUNED = "events_pruned"
    # trading control
    EMERGENCY_STOP = "emergency_stop"
    TRADING_PAUSED = "trading_paused"
    TRADING_RESUMED = "trading_resumed"
    STEALTH_CHANGED = "stealth_changed"
    # signals and trades
    SIGNAL_CREATED = "signal_created"
    SIGNAL_SKIPPED = "signal_skipped"
    TRADE_OPENED = "trade_opened"
    TRADE_UPDATE = "trade_update"
    TRADE_CLOSED = "trade_closed"
    SYNC_COMPLETED = "sync_completed"
    # the outbox: command_<status> for each status a command reaches, and a late result
    COMMAND_QUEUED = "command_queued"
    COMMAND_SENT = "command_sent"
    COMMAND_ACKED = "command_acked"
    COMMAND_SUCCEEDED = "command_succeeded"
    COMMAND_FAILED = "command_failed"
    COMMAND_EXPIRED = "command_expired"
    COMMAND_CANCELLED = "command_cancelled"
    COMMAND_LATE_RESULT = "command_late_result"
    # the agent
    AGENT_CONNECTED = "agent_connected"
    AGENT_DISCONNECTED = "agent_disconnected"
    AGENT_MODE_MISMATCH = "agent_mode_mismatch"
    AGENT_MODE_CONVERGED = "agent_mode_converged"
    MT5_STATUS_UPDATE = "mt5_status_update"
    # The risk guard (docs/risk.md)
    RISK_LIMITS_CHANGED = "risk_limits_changed"
    RISK_WARNING = "risk_warning"
    RISK_LIMIT_BREACHED = "risk_limit_breached"
    RISK_RESET = "risk_reset"
    RISK_DATA_STALE = "risk_data_stale"
    RISK_DATA_FRESH = "risk_data_fresh"
    # Outgoing webhooks (docs/alerts.md)
    WEBHOOK_CREATED = "webhook_created"
    WEBHOOK_DELETED = "webhook_deleted"
    WEBHOOK_FAILED = "webhook_failed"

    @classmethod
    def for_command(cls, status: CommandStatus) -> EventType:
        """The event a command reaching `status` appends (`command_sent`, ...)."""
        return cls(f"command_{status.value}")

    @property
    def is_command(self) -> bool:
        """Whether this event reports a command's progress (its status or a late result)."""
        return self.value.startswith("command_")


COMMAND_EVENTS = frozenset(t for t in EventType if t.is_command)


class CloseCode(IntEnum):
    """WebSocket close codes, shared by the daemon's sessions and the CLI's clients."""

    GOING_AWAY = 1001  # the daemon is shutting down: reconnect
    POLICY = 1008  # a protocol violation the session cannot survive
    INTERNAL_ERROR = 1011  # the daemon failed the session (a stream resumes from its last seq)
    SLOW_CONSUMER = 4008  # fell behind: resume from the last seq received
    AUTH_FAILED = 4401  # token refused or revoked: do not retry with it
    REPLACED = 4409  # a newer agent session for the account took over


class ActorKind(StrEnum):
    """Who an event names as its actor (`Actor.kind`)."""

    SYSTEM = "system"  # the daemon itself (expiry, delivery, housekeeping, the risk guard)
    LOCAL = "local"  # a local user on the host (control socket, `signalosd token|restore`)
    TOKEN = "token"  # a client with an API token
