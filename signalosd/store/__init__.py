"""The only place with SQL. Handlers and services hand it whole-transaction functions."""

from signalosd.store.records import EventRecord
from signalosd.store.sqlite.db import Database, connect_sync, sync_transaction
from signalosd.store.sqlite.tx import Tx

__all__ = ["Database", "EventRecord", "Tx", "connect_sync", "sync_transaction"]
