"""One route of the REST table, and the table an app serves.

Kept apart from the table itself (`routes.py`, which imports every handler) so that what reads
routes (the auth middleware, the OpenAPI generator) imports no handler, and no handler imports
the table: /openapi.json documents the table the app was built with (`keys.ROUTES`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from signalosd.models import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, kw_only=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: Role | None  # None: no token (public, or authenticated in-band like /ws)
    summary: str
    body: type[BaseModel] | None = None
    reply: type[BaseModel] | None = None  # every 2xx JSON body is one (test_reply_models.py)
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    websocket: bool = False
    agent_ok: bool = False  # an agent token may call it too (signal sources on the desk)
    # aiohttp's pattern when `path` (the canonical one, as documented) is not enough to match:
    # `{path:.+}` spans several segments.
    pattern: str | None = None

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


class RouteTable(Mapping[tuple[str, str], Route]):
    """The routes an app serves, by (method, path as documented), in the table's order."""

    __slots__ = ("_by_key", "_spec")

    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_key = {(route.method, route.path): route for route in routes}
        self._spec: dict[str, Any] | None = None

    def __getitem__(self, key: tuple[str, str]) -> Route:
        return self._by_key[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def spec(self, build: Callable[[Iterable[Route]], dict[str, Any]]) -> dict[str, Any]:
        """The OpenAPI document `build` makes of these routes, made on first use and kept:
        it takes about 0.1 s, too long to repeat for each request of a public endpoint."""
        if self._spec is None:
            self._spec = build(self.values())
        return self._spec
