"""Revoking a token ends every session that used it, at once (invariant 11).

A bus listener: a `token_revoked` event (from the daemon's own API, or committed by
`signalosd token revoke` on the database file, which the daemon picks up within
`external_poll_interval_s`) closes the token's `/ws` streams and `/ws/agent` session with
4401. An agent session also stops being sent commands and having its reports applied: its
next batch finds the revocation in its own transaction (see agent_inbox.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from signalosd import keys
from signalosd.models import CloseCode, EventType
from signalosd.store import EventRecord


def close_revoked(app: web.Application) -> Callable[[EventRecord], None]:
    def on_event(event: EventRecord) -> None:
        if event.type != EventType.TOKEN_REVOKED:
            return
        token_id = json.loads(event.data_json).get("token_id")
        for stream in list(app[keys.STREAMS].get(token_id, ())):
            stream.close(CloseCode.AUTH_FAILED, "token revoked")
        for session in app[keys.AGENTS].sessions():
            if session.principal.token_id == token_id:
                session.revoke()

    return on_event
