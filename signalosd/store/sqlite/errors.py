"""sqlite3.Error becomes StoreError at the edge of the SQLite store, so that nothing above the
store interface needs sqlite3 (the text and repr stay sqlite3's: see store/errors.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from signalosd.store.errors import StoreError


def as_store_error(exc: BaseException) -> BaseException:
    """`exc` as the store interface raises it: a sqlite3.Error wrapped, anything else as is
    (a domain error raised inside a transaction function reaches its caller unchanged)."""
    if isinstance(exc, sqlite3.Error):
        wrapped = StoreError(exc)
        wrapped.__cause__ = exc
        return wrapped
    return exc


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the sqlite3.Error of the block as a StoreError."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(exc) from exc
