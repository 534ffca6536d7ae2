"""Running a request's state change: the caller's context, one write transaction, the reply."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from signalosd import keys, strict_json
from signalosd.domain.context import Context
from signalosd.domain.outcomes import Outcome
from signalosd.http import outcomes
from signalosd.http.idempotency import REPLAYED_HEADER, Idempotent, Reply, key_of
from signalosd.http.params import source
from signalosd.store import Tx


def context(request: web.Request) -> Context:
    """The authorised caller (auth middleware) acting on the request's account."""
    principal = request[keys.PRINCIPAL]
    actor = principal.actor_model(source(request))
    return Context(request[keys.ACCOUNT_ID], actor, request.app[keys.POLICY])


async def mutate(request: web.Request, fn: Callable[[Tx, Context], Outcome]) -> web.Response:
    """Run a state change in one transaction and reply with what it committed.

    With an `Idempotency-Key`, the first reply is stored in the same transaction as the change,
    so a repeat (a retry after a lost reply) gets those bytes back and acts no second time."""
    key = key_of(request)
    ctx = context(request)
    keyed = None if key is None else Idempotent.of(request, key, await request.read())

    def run(tx: Tx) -> tuple[Reply, bool]:
        if keyed is not None and (prior := keyed.prior(tx, ctx.account_id)) is not None:
            return prior, True
        outcome = fn(tx, ctx)
        reply = Reply(outcomes.status(outcome), strict_json.dumps(outcomes.body(outcome)).encode())
        if keyed is not None:
            keyed.remember(tx, ctx.account_id, reply)
        return reply, False

    reply, replayed = await request.app[keys.DB].write(run)
    response = web.Response(status=reply.status, body=reply.body, content_type="application/json")
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
