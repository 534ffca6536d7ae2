"""How an event records who acted: the actor JSON of a token and of a local user is stored
in every event, so its keys, their order and its values never change."""

from __future__ import annotations

import pytest

from signalosd import strict_json
from signalosd.auth.tokens import Principal
from signalosd.models import Role, Source


@pytest.mark.parametrize(
    ("token_id", "role", "source", "stored"),
    [
        (
            "tok_0123456789ab",
            Role.OPERATOR,
            Source.API.value,
            '{"kind":"token","id":"tok_0123456789ab","label":"desk","role":"operator",'
            '"source":"api"}',
        ),
        (
            "tok_0123456789ab",
            Role.AGENT,
            Source.WS,
            '{"kind":"token","id":"tok_0123456789ab","label":"desk","role":"agent","source":"ws"}',
        ),
        (
            "local:uid:1000",
            Role.ADMIN,
            Source.LOCAL.value,
            '{"kind":"local","id":"uid:1000","label":"desk","role":"admin","source":"local"}',
        ),
    ],
)
def test_a_principal_is_recorded_as_the_same_actor_json(
    token_id: str, role: Role, source: str, stored: str
) -> None:
    principal = Principal(token_id, 1, "default", role, "desk")
    assert strict_json.dumps(principal.actor(source)) == stored
