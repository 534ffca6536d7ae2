"""OpenAPI 3.1 document generated from the route table and the pydantic models.

It documents the table it is given: the app's own (`keys.ROUTES`, see the /openapi.json
handler), so what is documented is what is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from signalosd import __version__
from signalosd.http.route import Route
from signalosd.models import ErrorReply

_REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    name = route.handler.__name__
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{name}_head" if route.method == "HEAD" else name,
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in route.query.items()
    ]
    if route.mutating:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "repeat a request safely: the first reply is returned",
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _schema(route.body, components)}},
        }
    error = {
        "description": "error",
        "content": {"application/json": {"schema": _schema(ErrorReply, components)}},
    }
    if route.websocket:
        op["responses"] = {"101": {"description": "switching to the WebSocket protocol"}}
    elif route.reply is not None:
        op["responses"] = {
            str(route.status): {
                "description": "ok",
                "content": {"application/json": {"schema": _schema(route.reply, components)}},
            },
            "default": error,
        }
        if route.status == 202:
            op["responses"]["200"] = {"description": "no change (changed: false)"}
    else:
        op["responses"] = {"200": {"description": "ok"}, "default": error}
    if route.role is not None:
        op["security"] = [{"bearer": []}]
        op["x-required-role"] = route.role.value
    return op


def build_spec(routes: Iterable[Route]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SignalOS daemon API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
