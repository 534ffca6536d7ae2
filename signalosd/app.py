"""create_app(settings): the only module that wires the daemon together.

Resources open in dependency order in cleanup contexts (database, then background tasks) and
close in reverse; `on_shutdown` answers pending long-polls at once and closes every WebSocket
with 1001, concurrently and under a deadline, before the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from signalosd import keys
from signalosd.alerts.registry import Webhooks
from signalosd.auth import accounts
from signalosd.auth.tokens import TokenAuth
from signalosd.clock import Clock, SystemClock
from signalosd.config import Settings
from signalosd.http import middleware
from signalosd.http.pacing import Pacer
from signalosd.http.routes import add_routes, build_routes
from signalosd.live import risk_timer
from signalosd.live.agent_hub import AgentHub
from signalosd.live.bus import EventBus
from signalosd.live.risk_watch import RiskWatch
from signalosd.models import CloseCode
from signalosd.ops import maintenance, state_lock
from signalosd.ops.guard import ConnectionGuard
from signalosd.ops.metrics import Metrics
from signalosd.ops.notify import StatusReporter
from signalosd.outbox import deadlines
from signalosd.outbox.deadlines import CommandPolicy
from signalosd.outbox.delivery import DELIVERY_ACTOR, Delivery
from signalosd.outbox.waiters import CommandWaiters
from signalosd.store import Database
from signalosd.store.open import open_store
from signalosd.web import cors, headers
from signalosd.web.files import StaticFiles
from signalosd.ws import agent_session, revocation, stream
from signalosd.ws.agent_session import DeliveryFactory
from signalosd.ws.session import close_with_deadline

log = logging.getLogger("signalosd")


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The database, opened only while this process holds the state directory's lock."""
    settings = app[keys.SETTINGS]
    with state_lock.hold(settings.state_dir, "start signalosd"):
        async for _ in _open_database(app):
            yield


async def _open_database(app: web.Application) -> AsyncIterator[None]:
    settings, db, bus = app[keys.SETTINGS], app[keys.DB], app[keys.BUS]
    db.on_commit = bus.publish
    await db.open()
    bus.published_seq = await db.read(lambda tx: tx.head_seq())
    if await db.write(lambda tx: accounts.bootstrap(tx, settings.admin_token_path)):
        log.info(
            "event=bootstrap account=%s admin_token_file=%s",
            accounts.DEFAULT_ACCOUNT,
            settings.admin_token_path,
        )
    await risk_timer.load(db, app[keys.RISK])
    log.info("event=database_open path=%s last_seq=%d", db.path, bus.published_seq)
    yield
    await app[keys.AUTH].drain()
    await db.close()
    log.info("event=database_closed path=%s", db.path)


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("event=background_job_failed job=%s", name)


async def _background(app: web.Application) -> AsyncIterator[None]:
    settings, db = app[keys.SETTINGS], app[keys.DB]
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(
            _every(
                settings.maintenance_interval_s,
                lambda: maintenance.run_once(db, settings),
                "maintenance",
            )
        ),
        loop.create_task(
            _every(settings.external_poll_interval_s, db.poll_external, "poll_external")
        ),
        loop.create_task(
            # WAL checkpoints off the writer (wal_autocheckpoint = 0): store/sqlite/db.py.
            _every(settings.wal_checkpoint_interval_s, db.checkpoint, "wal_checkpoint")
        ),
        loop.create_task(
            _every(
                settings.risk_check_interval_s,
                lambda: risk_timer.check(db, app[keys.RISK], app[keys.POLICY], settings),
                "risk_check",
            )
        ),
        loop.create_task(
            _every(
                settings.expiry_sweep_interval_s,
                lambda: deadlines.expire_commands(db, app[keys.POLICY]),
                "expire_commands",
            )
        ),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in [*tasks, *app[keys.BACKGROUND]]:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _alerts(app: web.Application) -> AsyncIterator[None]:
    """The webhooks' workers: started once the database is open (and the bus knows its head),
    stopped before it closes, each cancelled under a deadline (a receiver that never answers
    cannot hold the shutdown)."""
    webhooks = app[keys.WEBHOOKS]
    await webhooks.start()
    yield
    await webhooks.stop()


async def _release_waiters(app: web.Application) -> None:
    app[keys.WAITERS].release_all()


async def _close_websockets(app: web.Application) -> None:
    open_sockets: weakref.WeakSet[web.WebSocketResponse] = app[keys.WEBSOCKETS]
    sockets = list(open_sockets)
    if not sockets:
        return
    deadline = app[keys.SETTINGS].ws_close_timeout_s
    log.info("event=closing_websockets count=%d deadline_s=%g", len(sockets), deadline)
    await asyncio.gather(
        *(
            close_with_deadline(s, CloseCode.GOING_AWAY, "server shutting down", deadline)
            for s in sockets
        ),
        return_exceptions=True,
    )


def _deliveries(
    db: Database, clock: Clock, settings: Settings, policy: CommandPolicy
) -> DeliveryFactory:
    """What each agent session sends its commands with."""

    def delivery(
        account_id: int,
        send: Callable[[dict[str, Any]], None],
        token_id: str,
        journal_keep_s: float,
        on_revoked: Callable[[], None],
    ) -> Delivery:
        return Delivery(
            account_id,
            db,
            clock,
            settings,
            policy,
            send,
            DELIVERY_ACTOR,
            token_id,
            journal_keep_s,
            on_revoked,
        )

    return delivery


def create_app(
    settings: Settings, clock: Clock | None = None, status: StatusReporter | None = None
) -> web.Application:
    """The daemon as an aiohttp app. `status` (systemd's STATUS= line, from `__main__`) is told
    of every event and can ask whether an account's agent is connected."""
    clock = clock or SystemClock()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # The Origin check runs inside `errors` (its refusal is the one error shape) and before
        # `authorize` (a foreign page learns nothing, not even whether its token is good).
        middlewares=[
            middleware.request_log,
            middleware.errors,
            cors.check_origin,
            middleware.authorize,
        ],
    )
    app.on_response_prepare.append(headers.on_prepare)  # every reply, a WebSocket's 101 too
    db = open_store(settings, clock)
    bus = EventBus()
    waiters = CommandWaiters(db)
    bus.listen(waiters.on_event)
    hub = AgentHub(clock, settings.status_event_interval_s)
    bus.listen(hub.on_event)
    app[keys.AGENTS] = hub
    app[keys.RISK] = RiskWatch(started_at=clock.now())
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.DB] = db
    app[keys.BUS] = bus
    app[keys.AUTH] = TokenAuth(db, settings.token_touch_interval_s)
    app[keys.WAITERS] = waiters
    app[keys.POLICY] = CommandPolicy(
        settings.open_trade_ttl_s, settings.command_ttl_s, settings.command_expiry_grace_s
    )
    app[keys.DELIVERIES] = _deliveries(db, clock, settings, app[keys.POLICY])
    app[keys.WEBSOCKETS] = weakref.WeakSet()
    app[keys.BACKGROUND] = set()
    app[keys.STREAMS] = {}
    bus.listen(revocation.close_revoked(app))
    app[keys.STARTED_AT] = time.monotonic()
    app[keys.GUARD] = ConnectionGuard(settings.max_unauthenticated_connections)
    app[keys.PACER] = Pacer(settings.heavy_read_rate_per_token)
    metrics = Metrics(clock, bus, hub, app[keys.WEBSOCKETS])
    bus.listen(metrics.on_event)
    app[keys.METRICS] = metrics
    if status is not None:
        status.agent_connected = lambda account_id: hub.session(account_id) is not None
        bus.listen(status.on_event)
    webhooks = Webhooks(db, clock, settings, lambda: bus.published_seq)
    bus.listen(webhooks.on_event)
    app[keys.WEBHOOKS] = webhooks
    app[keys.STATIC] = StaticFiles()
    app[keys.ROUTES] = add_routes(app, build_routes(stream.stream, agent_session.agent_stream))
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_alerts)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_release_waiters)
    app.on_shutdown.append(_close_websockets)
    return app
