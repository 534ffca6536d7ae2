"""What a request's domain function did, as data: the edge decides how to say it.

REST (http/outcomes.py) answers 202 when a command was queued for the agent and 200 when only
the daemon's own state changed (or nothing did); the domain only says which happened.
Rows (`state`, `command`, `signal`) are the store's, as committed in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StateChange:
    """A mode or stealth change, or its repeat (`changed` False): the state as committed, the
    daemon's own words for what happened, and the agent's command when one was queued."""

    state: dict[str, Any]
    changed: bool
    message: str
    command: dict[str, Any] | None = None
    # Emergency stop only: the ids of the unfinished entries and resumes it cancelled.
    cancelled_commands: list[str] | None = None

    @property
    def queued(self) -> bool:
        return self.command is not None


@dataclass(frozen=True, slots=True)
class CommandQueued:
    """A command queued for the agent (trade management, force-sync)."""

    command: dict[str, Any]
    message: str | None = None  # the daemon's words for what happens next, when it has some

    @property
    def queued(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class SignalTaken:
    """A signal as stored (accepted or skipped), or the earlier one it repeats (`duplicate`),
    with its entry command when it has one: queued now unless `duplicate`."""

    signal: dict[str, Any] | None
    duplicate: bool
    command: dict[str, Any] | None = None

    @property
    def queued(self) -> bool:
        return self.command is not None and not self.duplicate


Outcome = StateChange | CommandQueued | SignalTaken
