"""REST: the route table, OpenAPI, middleware, request parsing, idempotency and the handlers."""
