"""The only place with SQL. Handlers and services hand it whole-transaction functions."""

from .db import Database, connect_sync, sync_transaction
from .records import EventRecord
from .tx import Tx

__all__ = ["Database", "EventRecord", "Tx", "connect_sync", "sync_transaction"]
