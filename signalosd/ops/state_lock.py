"""One process at a time per state directory: a daemon, or a restore.

Two daemons on one database would both deliver the outbox to agents; a restore under a running
daemon would swap the file under its open connections. An advisory lock (flock) on
`<state_dir>/signalosd.lock` prevents both; the kernel releases it when the process dies, so a
crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "signalosd.lock"


class StateDirBusy(Exception):
    """Another process holds the state directory."""


@contextmanager
def hold(state_dir: Path, doing: str) -> Iterator[None]:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirBusy(
                f"cannot {doing}: another signalosd process is using {state_dir} "
                f"(it holds {path}); stop it first"
            ) from None
        yield
    finally:
        os.close(fd)
