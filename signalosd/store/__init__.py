"""The storage interface: the only way the daemon reaches its data. Domain code hands the
store whole-transaction functions over `Tx`; `open.py` makes the store the settings choose
(its SQLite implementation lives in `sqlite/`, which nothing above this interface imports)."""

from signalosd.store.database import Database
from signalosd.store.errors import StoreError
from signalosd.store.records import EventRecord
from signalosd.store.tx import Tx

__all__ = ["Database", "EventRecord", "StoreError", "Tx"]
