"""StoreError: a storage failure, whatever the backend, so that nothing above the store
interface needs the backend's own exception types (sqlite3.Error today)."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do its work: the database cannot be opened or created, the disk is
    full, the file is corrupt or not a database, a lock was held past the busy timeout.

    Raised from the backend's own error (kept as `cause` and `__cause__`). Its text and repr
    are that error's, so the messages and log lines (`error=%r`) built from it read exactly as
    they did when the backend's exception reached them."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(*cause.args)
        self.cause = cause

    def __str__(self) -> str:
        return str(self.cause)

    def __repr__(self) -> str:
        return repr(self.cause)
