"""Prometheus metrics: one `CollectorRegistry` per app (never the process-global one, so that
several apps in one process, as in the tests, keep separate counts).

Counters and histograms are fed by a bus listener (command outcomes, delivery latency, events)
and by the request-log middleware (HTTP latency); they never touch SQL. Gauges that describe
the present (queue depths, agents, WebSocket clients) are computed at scrape time: the handler
reads the database once (`read_scrape`), then renders synchronously with that snapshot.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from signalosd.clock import Clock
from signalosd.domain import risk_guard
from signalosd.live.agent_hub import AgentHub
from signalosd.live.bus import EventBus
from signalosd.models import COMMAND_EVENTS, CommandStatus, CommandType, EventType, Mode
from signalosd.store import EventRecord, Tx

OUTCOMES = tuple(
    s.value
    for s in (
        CommandStatus.SUCCEEDED,
        CommandStatus.FAILED,
        CommandStatus.EXPIRED,
        CommandStatus.CANCELLED,
    )
)
# Anything else (aiohttp accepts any token as a method) is "other": unauthenticated clients
# must not be able to add label values at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Delivery: milliseconds on a live session (event timestamps have millisecond resolution),
# up to an hour for a command queued while the agent was offline.
DELIVERY_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
# Commands whose queued time is remembered until they finish; past this, the oldest are
# forgotten (their latency is not observed) so that memory stays bounded.
PENDING_MAX = 10_000


@dataclass(slots=True)
class _Pending:
    type: str
    queued_at: datetime
    sent: bool = False
    acked: bool = False


class AccountRow(NamedTuple):
    id: int
    name: str
    agent_last_seen: str | None
    mode: str
    agent_mode_mismatch: bool  # the agent's reported mode is not the daemon's (agent_state)
    risk: dict[str, Any]  # the risk guard's part of health: guarded, stale, latched


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape reads from the database."""

    commands: list[tuple[str, str, int]]  # (type, status, count)
    accounts: list[AccountRow]


def read_scrape(tx: Tx) -> Scrape:
    """Every account's rows: only metrics and admin tokens scrape (see api/system.metrics)."""
    accounts = []
    for row in tx.list_accounts():
        account_id = int(row["id"])
        stored = tx.agent_status(account_id) or {}
        accounts.append(
            AccountRow(
                account_id,
                str(row["name"]),
                stored.get("last_seen"),
                str(tx.get_state(account_id)["mode"]),
                bool(stored.get("mode_mismatch")),
                risk_guard.health(tx, account_id),
            )
        )
    return Scrape(tx.command_counts(), accounts)


def http_route(request: web.Request) -> str:
    """The matched resource's template (`/api/trades/{id}`), never the raw path; "other" when
    nothing matched (404, 405)."""
    match_info = request.match_info
    resource = match_info.route.resource
    if resource is None or match_info.http_exception is not None:
        return "other"
    return resource.canonical


class _Live:
    """Scrape-time series: the database snapshot plus what lives in memory."""

    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        hub: AgentHub,
        websockets: weakref.WeakSet[web.WebSocketResponse],
    ) -> None:
        self._clock, self._bus, self._hub, self._websockets = clock, bus, hub, websockets
        self.scrape: Scrape | None = None

    def collect(self) -> Iterable[Metric]:
        bus = self._bus
        yield GaugeMetricFamily(
            "signalos_websocket_clients",
            "Open WebSocket connections (/ws and /ws/agent).",
            value=len(self._websockets),
        )
        yield CounterMetricFamily(
            "signalos_slow_consumer_closes",
            "WebSocket clients closed with 4008 for falling behind.",
            value=bus.slow_consumer_closes,
        )
        yield GaugeMetricFamily(
            "signalos_event_last_seq", "Seq of the last published event.", value=bus.published_seq
        )
        scrape = self.scrape
        if scrape is None:
            return
        commands = GaugeMetricFamily(
            "signalos_commands",
            "Commands in the outbox by type and status (finished ones until retention).",
            labels=["type", "status"],
        )
        for type_, status, n in scrape.commands:
            commands.add_metric([type_, status], n)
        yield commands
        connected = GaugeMetricFamily(
            "signalos_agent_connected",
            "1 while the account's desktop agent has a live session.",
            labels=["account"],
        )
        last_seen = GaugeMetricFamily(
            "signalos_agent_last_seen_seconds",
            "Seconds since the account's agent last sent anything (absent: never seen).",
            labels=["account"],
        )
        modes = GaugeMetricFamily(
            "signalos_trading_mode",
            "1 for the account's current trading mode, 0 for the others.",
            labels=["account", "mode"],
        )
        mismatch = GaugeMetricFamily(
            "signalos_agent_mode_mismatch",
            "1 while the agent reports a trading mode (or halt generation) other than the "
            "daemon's that no unfinished command explains.",
            labels=["account"],
        )
        latched = GaugeMetricFamily(
            "signalos_risk_tripped",
            "1 while the risk guard's trip is latched for the account (trading halted until it "
            "is cleared and resumed), 0 otherwise; absent for an account without limits.",
            labels=["account"],
        )
        stale = GaugeMetricFamily(
            "signalos_risk_data_stale",
            "1 while the risk guard has no recent account status with trades open.",
            labels=["account"],
        )
        now = self._clock.now()
        for account_id, name, stored, mode, differs, risk in scrape.accounts:
            if risk["guarded"]:
                latched.add_metric([name], 1 if risk["latched"] else 0)
                stale.add_metric([name], 1 if risk["stale"] else 0)
            for each in Mode:
                modes.add_metric([name, each.value], 1 if each.value == mode else 0)
            mismatch.add_metric([name], 1 if differs else 0)
            connected.add_metric([name], 1 if self._hub.session(account_id) else 0)
            seen = self._hub.last_seen(account_id)
            if seen is None and stored:
                seen = datetime.fromisoformat(stored)
            if seen is not None:
                last_seen.add_metric([name], max((now - seen).total_seconds(), 0.0))
        yield connected
        yield last_seen
        yield modes
        yield mismatch
        yield latched
        yield stale


class Metrics:
    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        hub: AgentHub,
        websockets: weakref.WeakSet[web.WebSocketResponse],
    ) -> None:
        self.registry = registry = CollectorRegistry()
        self.commands = Counter(
            "signalos_commands",
            "Commands finished, by type and outcome (succeeded, failed, expired, cancelled).",
            ["type", "outcome"],
            registry=registry,
        )
        for type_ in CommandType:  # every pair from zero, so rate() and alerts have a baseline
            for outcome in OUTCOMES:
                self.commands.labels(type_.value, outcome)
        self.delivery = Histogram(
            "signalos_command_delivery_seconds",
            "From command_queued to the first command_sent (stage=sent) and to command_acked "
            "(stage=acked), by the daemon's clock.",
            ["type", "stage"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "signalos_events", "Events appended to the log, by type.", ["type"], registry=registry
        )
        self._event_counters: dict[str, Counter] = {}
        self.http = Histogram(
            "signalos_http_request_duration_seconds",
            "HTTP request latency by method, route template and status (WebSocket sessions are "
            "not counted).",
            ["method", "route", "status"],
            registry=registry,
        )
        self._live = _Live(clock, bus, hub, websockets)
        registry.register(self._live)
        # Read /proc at scrape time; with ProcSubset=pid (no /proc/stat) the process series are
        # simply absent (DESIGN §7).
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self._pending: dict[str, _Pending] = {}  # by command id, until the command finishes

    def render(self, scrape: Scrape) -> bytes:
        """The text exposition with this scrape's database snapshot (no await in between, so
        concurrent scrapes cannot mix their snapshots)."""
        self._live.scrape = scrape
        try:
            return generate_latest(self.registry)
        finally:
            self._live.scrape = None

    def observe_http(self, request: web.Request, status: int, seconds: float) -> None:
        if status == 101:
            return  # a WebSocket session: its duration is the connection's lifetime
        method = request.method if request.method in METHODS else "other"
        self.http.labels(method, http_route(request), str(status)).observe(seconds)

    def on_event(self, event: EventRecord) -> None:
        """Bus listener (synchronous, after commit)."""
        kind = event.type
        counter = self._event_counters.get(kind)
        if counter is None:  # labels() costs ~1 us; this runs once per event
            counter = self._event_counters[kind] = self.events.labels(kind)
        counter.inc()
        if kind not in COMMAND_EVENTS:
            return
        data = json.loads(event.data_json)
        command_id = data.get("command_id")
        if not isinstance(command_id, str):
            return
        if kind == EventType.COMMAND_QUEUED:
            if len(self._pending) >= PENDING_MAX:
                del self._pending[next(iter(self._pending))]
            self._pending[command_id] = _Pending(str(data.get("type")), _parse(event.ts))
            return
        outcome = kind.removeprefix("command_")
        if outcome in OUTCOMES:
            self._pending.pop(command_id, None)
            self.commands.labels(str(data.get("type")), outcome).inc()
            return
        pending = self._pending.get(command_id)
        if pending is None:
            return  # queued before this process started
        if kind == EventType.COMMAND_SENT and not pending.sent:  # the first send, not redeliveries
            pending.sent = True
            self._observe(pending, "sent", event.ts)
        elif kind == EventType.COMMAND_ACKED and not pending.acked:
            pending.acked = True
            self._observe(pending, "acked", event.ts)

    def _observe(self, pending: _Pending, stage: str, ts: str) -> None:
        seconds = (_parse(ts) - pending.queued_at).total_seconds()
        self.delivery.labels(pending.type, stage).observe(max(seconds, 0.0))


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)
