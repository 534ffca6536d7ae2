"""The daemon's front door: its listening sockets and what every connection meets on arrival.

- **A header deadline.** aiohttp closes a connection whose next request has not fully arrived
  (request line and headers) `keepalive_timeout` seconds after it was accepted or after its
  previous response; its default is 3630 s, so silent sockets and headers trickled a byte at
  a time stayed open for an hour. Here it is `http_header_timeout_s`. A request being handled
  (a long-poll, an open WebSocket) is never cut by it. With TLS the handshake gets the same
  deadline (`ssl_handshake_timeout`).
- **A cap on unauthenticated connections** (guard.py): every connection is shown to the
  app's ConnectionGuard when it arrives and when it leaves.
- **aiohttp's own parser errors** (oversized line, bad method, malformed headers) are answered
  in the daemon's one error shape with one log line, instead of text/plain and a traceback.

Why a BaseSite subclass rather than `loop.create_server` next to the runner: the site is
registered with the runner, so `runner.cleanup()` still stops listening before it closes
connections and `runner.addresses` still lists it, exactly as for aiohttp's own sites; only
the protocol factory differs (our RequestHandler subclass, built with the guard).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl
import uuid
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from signalosd import keys
from signalosd.errors import ApiError, ErrorCode
from signalosd.http.responses import json_response
from signalosd.ops.guard import ConnectionGuard
from signalosd.web.headers import add_security_headers

log = logging.getLogger("signalosd")
http_log = logging.getLogger("signalosd.http")  # where middleware.request_log writes too
# asyncio uses the listen() backlog also as how many connections it accepts in one go, before
# any of them reaches the guard: a burst can hold cap + BACKLOG descriptors for a moment. 128
# (aiohttp's default) keeps that far below a 1024 file limit; a bigger queue would not.
BACKLOG = 128
# Below this soft limit of open files the daemon warns at start (the unit sets 65536).
FILE_LIMIT_WANTED = 4096


class FrontDoorHandler(web.RequestHandler):
    """aiohttp's connection protocol, told to the guard and answering parser errors in JSON."""

    __slots__ = ("_guard",)

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._guard.arrived(self, cast(asyncio.Transport, transport))

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.left(self)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Called by aiohttp outside our middlewares: for a request its parser refused (400)
        and for an exception that escaped every middleware (500). Always closes the connection.
        """
        if request.writer.output_size > 0:  # as aiohttp: a reply is half sent, nothing to add
            raise ConnectionError("response already started, cannot send the error")
        request_id = uuid.uuid4().hex
        if status < 500:
            reason = _parser_reason(exc, message)
            err = ApiError(
                ErrorCode.BAD_REQUEST,
                f"the request is not valid HTTP/1.1 ({reason}); send a request line and "
                "headers within the limits (docs/api.md, Errors)",
                {"reason": reason},
            )
            # The same event as middleware.request_log's line, so one query finds every
            # request; client bytes only ever appear escaped (%r).
            http_log.info(
                "event=http_request request_id=%s method=- path=- status=%d token_id=- "
                "peer=%r error=%r",
                request_id,
                status,
                request.remote,
                reason,
            )
        else:
            err = ApiError(
                ErrorCode.INTERNAL_ERROR,
                f"internal error; the daemon log has details under request id {request_id}",
            )
            if isinstance(exc, ConnectionError):
                # The client went away mid-request (or the guard closed it): nobody to answer,
                # nothing wrong with us, and a flood of these must not become one of tracebacks.
                http_log.debug("event=client_gone request_id=%s error=%r", request_id, str(exc))
            else:  # a bug of ours, not the client's: this one keeps its traceback
                http_log.error(
                    "event=unhandled_error request_id=%s status=%d",
                    request_id,
                    status,
                    exc_info=exc,
                )
        response = json_response(err.to_dict(), status=status)
        response.headers["X-Request-ID"] = request_id
        add_security_headers(response.headers)  # written outside the app: no on_response_prepare
        response.force_close()
        return response


def _parser_reason(exc: BaseException | None, message: str | None) -> str:
    """What was wrong, in a few words; never the client's bytes themselves."""
    if isinstance(exc, LineTooLong):
        return f"the request line or a header is longer than {exc.args[1]} bytes"
    if isinstance(exc, BadHttpMethod):
        if "HTTPS" in exc.message:
            return "TLS sent to a plain-HTTP port: use http://, or set tls_cert/tls_key"
        return "bad method in the request line"
    text = exc.message if isinstance(exc, HttpProcessingError) else message or ""
    # llhttp's messages are "<reason>:\n\n  b'<client bytes>'\n  ^": keep the reason only.
    first = (text or "malformed request").splitlines()[0].rstrip(":")
    return first[:200]


class GuardedSite(web.BaseSite):
    """A TCP address (host, port) or an already bound socket (sock), served with
    FrontDoorHandler: the guard of `runner.app` and its `http_header_timeout_s`."""

    __slots__ = ("_app", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.AppRunner,
        *,
        host: str | None = None,
        port: int = 0,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = BACKLOG,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._app = runner.app
        self._host, self._port, self._sock = host, port, sock

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        if self._sock is None:
            return f"{scheme}://{self._host}:{self._port}"
        address = self._sock.getsockname()
        if isinstance(address, str):  # AF_UNIX, written as aiohttp's SockSite does
            return f"{scheme}://unix:{address}:"
        return f"{scheme}://{address[0]}:{address[1]}"

    async def start(self) -> None:
        await super().start()  # registers the site with the runner (stopped by cleanup())
        loop = asyncio.get_running_loop()
        manager = self._runner.server
        assert manager is not None, "runner.setup() first"
        guard = self._app[keys.GUARD]
        deadline = self._app[keys.SETTINGS].http_header_timeout_s

        def protocol() -> FrontDoorHandler:
            return FrontDoorHandler(
                manager, guard, loop=loop, keepalive_timeout=deadline, access_log=None
            )

        tls: dict[str, Any] = {}
        if self._ssl_context is not None:
            tls = {"ssl": self._ssl_context, "ssl_handshake_timeout": deadline}
        if self._sock is not None:
            self._server = await loop.create_server(
                protocol, sock=self._sock, backlog=self._backlog, **tls
            )
        else:
            self._server = await loop.create_server(
                protocol, self._host, self._port, backlog=self._backlog, **tls
            )


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard one, and return it.

    Each connection is a file descriptor; a daemon started by hand inherits a soft limit of
    1024 that a few hundred WebSocket subscribers and a burst of connects could exhaust (then
    even the emergency stop cannot be accepted). Under systemd LimitNOFILE= sets both.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20  # Linux's default nr_open
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("event=open_files_limit_raised from=%d to=%d", soft, target)
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("event=open_files_limit_kept soft=%d hard=%d error=%r", soft, hard, exc)
    if soft != resource.RLIM_INFINITY and soft < FILE_LIMIT_WANTED:
        log.warning(
            "event=open_files_limit_low soft=%d hint=%r",
            soft,
            f"each connection is an open file: raise the limit to {FILE_LIMIT_WANTED} or more "
            "(LimitNOFILE= in the unit, ulimit -n by hand)",
        )
    return int(soft)
