"""The CLI's exit codes and the outcomes that are not a network error.

One set of exit codes for every command, the one-shot ones, the streaming ones (`tail`, `ws`)
and the agent. `cli.py` is the one place that turns these exceptions (and
`client.ClientError`) into a message and an exit code; command modules only raise them.
"""

from __future__ import annotations

from enum import IntEnum  # click imports enum already: no start-up cost


class ExitCode(IntEnum):
    """What the process's exit status means (`signalos --help` lists them)."""

    OK = 0  # done, or already so (a no-op)
    FAILED = 1  # the daemon or the broker refused, or the command did not succeed
    USAGE = 2  # bad flags, missing --yes, bad configuration, no token
    UNREACHABLE = 3  # no answer from the daemon (refused, timeout, 502/503/504 after retries)
    UNAUTHORIZED = 4  # token refused (401, close 4401) or role too low (403)
    REPLACED = 5  # agent: a newer agent session for this account took over (close 4409)
    TIMEOUT = 124  # --wait gave up before the agent reported a result
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    BROKEN_PIPE = 141  # tail: the output was closed
    TERMINATED = 143  # tail, ws: SIGTERM


class Failed(Exception):
    """The daemon answered but what was asked did not happen (exit 1)."""


class TimedOut(Exception):
    """`--wait` ran out of time; the command may still run later (exit 124)."""


class SettingsError(Exception):
    """A bad flag value, environment variable or config file, or no token (exit 2)."""
