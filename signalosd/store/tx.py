"""Tx: the interface of one store transaction, as domain code sees it.

A whole-transaction function receives a Tx and does its reads, decisions and writes in it,
atomically, without knowing the backend. The queries are split by area (accounts.py,
trades.py, commands.py, upkeep.py, risk.py, webhooks.py); this module adds the transaction
itself (its fixed time, savepoints) and the event log, and puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from signalosd.models.type_filter import TypeFilter
from signalosd.store.accounts import AccountQueries
from signalosd.store.commands import CommandQueries
from signalosd.store.records import EventRecord
from signalosd.store.risk import RiskQueries
from signalosd.store.trades import TradeQueries
from signalosd.store.upkeep import HistoryQueries, RetentionQueries
from signalosd.store.webhooks import WebhookQueries


class EventQueries(Protocol):
    """The transaction's fixed time, its savepoints and the event log."""

    @property
    def now(self) -> str:
        """This transaction's time (clock.iso text), the same for every row it writes."""
        ...

    @property
    def now_dt(self) -> datetime:
        """`now` as a datetime, for arithmetic (deadlines, intervals)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """One item of a batch on its own: if it raises, only it is undone (its events too)
        and the rest of the transaction goes ahead."""
        ...

    def append_event(
        self, account_id: int | None, type_: str, data: dict[str, Any], actor: dict[str, Any]
    ) -> EventRecord:
        """Append an event; it is published only once the transaction has committed."""
        ...

    def head_seq(self) -> int:
        """The highest seq ever assigned (pruning does not lower it)."""
        ...

    def pruned_through(self) -> int:
        """Every event with seq <= this has been deleted by retention."""
        ...

    def read_events(
        self,
        after: int,
        limit: int,
        account_ids: Sequence[int] | None,
        types: TypeFilter | None = None,
        upto: int | None = None,
    ) -> list[EventRecord]:
        """At most `limit` events with seq > after (and <= upto), in seq order, visible to
        `account_ids` (None: all) and matching `types` (None: all; a filtered read needs
        `upto`, which bounds it)."""
        ...


class Tx(
    EventQueries,
    AccountQueries,
    TradeQueries,
    CommandQueries,
    RetentionQueries,
    HistoryQueries,
    RiskQueries,
    WebhookQueries,
    Protocol,
):
    """Every query of the daemon inside one transaction."""
