"""The file-level backup mechanics of the store's backend, as `signalosd backup|restore`
(ops/backup.py) use them: a consistent copy, a check of a copy, what a file holds, and
renumbering the event log after a restore. Failures are raised as StoreError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from signalosd.store.tx import Tx


@dataclass(frozen=True)
class Snapshot:
    """What the copy holds: the event log's head when the snapshot was taken."""

    head_seq: int


@dataclass(frozen=True)
class Inspection:
    integrity: str  # "ok", or the backend's first complaints
    head_seq: int  # the highest event seq ever assigned
    events: int
    first_seq: int | None
    last_seq: int | None
    migrations: list[str]


class FileBackup(Protocol):
    def copy(
        self,
        source: Path,
        target: Path,
        *,
        pages: int | None = None,
        progress: Callable[[int, int, int], object] | None = None,
    ) -> Snapshot:
        """Copy the database at `source` into the (new, empty) file `target` as one
        consistent snapshot, `pages` pages per step (None: the backend's default), calling
        `progress(status, remaining, total)` after each step. The daemon may run meanwhile."""
        ...

    def inspect(self, path: Path) -> Inspection:
        """Open a copy and check it: integrity, the event log's extent, the migrations."""
        ...

    def head_seq_of(self, path: Path) -> int | None:
        """The event head of a database file, or None when it cannot be read."""
        ...

    def modes_of(self, path: Path) -> dict[str, tuple[str, int]]:
        """Each account's trading mode and halt generation in a database file ({} when it
        cannot be read)."""
        ...

    def restart_numbering(self, path: Path, base: int, event: Callable[[Tx], object]) -> None:
        """After a restore: continue the event log at `base`, mark everything up to it as
        gone, and run `event` in the same transaction."""
        ...
