"""The request context records its actor exactly as events have always stored it: the actor
JSON is in every event and command, so its keys, their order and its values never change."""

from __future__ import annotations

import pytest

from signalosd import strict_json
from signalosd.auth import accounts
from signalosd.auth.tokens import Principal
from signalosd.domain.context import Context
from signalosd.models import Actor, ActorKind, Role


@pytest.mark.parametrize(
    ("token_id", "stored"),
    [
        (
            "tok_0123456789ab",
            '{"kind":"token","id":"tok_0123456789ab","label":"desk","role":"operator",'
            '"source":"cron"}',
        ),
        (
            "local:uid:1000",
            '{"kind":"local","id":"uid:1000","label":"desk","role":"operator","source":"cron"}',
        ),
    ],
)
def test_a_requests_actor_is_recorded_as_its_principal_says(token_id: str, stored: str) -> None:
    principal = Principal(token_id, 1, "default", Role.OPERATOR, "desk")
    ctx = Context(1, Actor.model_validate(principal.actor("cron")), policy=None)  # type: ignore[arg-type]
    assert strict_json.dumps(ctx.recorded_actor) == stored
    assert ctx.actor.kind in (ActorKind.TOKEN, ActorKind.LOCAL)


def test_the_daemons_own_actors_keep_their_few_keys() -> None:
    assert strict_json.dumps(accounts.SYSTEM_ACTOR) == (
        '{"kind":"system","id":null,"label":"signalosd"}'
    )
    assert list(accounts.local_actor()) == ["kind", "id", "label", "source"]


def test_an_actor_without_a_session_dumps_no_session_key() -> None:
    """`session` (an agent session's events) appears only when there is one."""
    plain = Actor(kind=ActorKind.TOKEN, id="tok_1", label="desk", role="agent", source="ws")
    assert "session" not in plain.model_dump()
    assert plain.model_copy(update={"session": "s1"}).model_dump()["session"] == "s1"
