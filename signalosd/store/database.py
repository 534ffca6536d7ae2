"""Database: the interface of the daemon's store, whatever its backend.

Every read and write is a whole-transaction function handed to the store (`write`, `read`,
`scan`), run start to finish in one transaction on the store's side, never interleaved with
another's statements. The events a write appended are given to `on_commit` only after its
COMMIT, in commit order, together with those other processes committed (`signalosd token`).
Storage failures are raised as StoreError (errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from signalosd.clock import Clock
from signalosd.store.records import EventRecord
from signalosd.store.tx import Tx

T = TypeVar("T")


class Database(Protocol):
    """The daemon's store: made by `store.open.open_store`, opened by the app's cleanup
    context, closed after every client has gone."""

    # Receives each committed batch of events, in commit order (the app sets the bus here).
    on_commit: Callable[[list[EventRecord]], None]

    @property
    def path(self) -> Path:
        """Where the data lives (the database file), for log lines."""
        ...

    @property
    def clock(self) -> Clock: ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None:
        """Create or migrate the schema and start serving reads and writes."""
        ...

    async def close(self) -> None: ...

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one write transaction; publish its events after COMMIT."""
        ...

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """A short point read (a token, an account, the trading state, a command's status)
        in one consistent read transaction. Long reads must use `scan`: anything slow here
        would delay every token check."""
        ...

    async def scan(self, fn: Callable[[Tx], T], *, owner: str | None = None) -> T:
        """A long read (a page of events, a snapshot, a list) in one read transaction, on
        a lane of its own; at most a few at once per `owner` (a token id)."""
        ...

    async def poll_external(self) -> None:
        """Publish events committed by other processes while this one was idle."""
        ...

    async def checkpoint(self) -> bool:
        """Background housekeeping of the storage (run every `wal_checkpoint_interval_s`);
        whether it did anything."""
        ...
