"""The only network code of the one-shot commands: standard-library HTTP, one exception type.

No aiohttp here, so `signalos stop` starts in the time of click + http.client. Every mutating
request carries an `Idempotency-Key` (a uuid4) that a retry reuses: the daemon answers a repeat
with the first reply instead of acting twice, so a lost reply never closes a trade twice.
Retries happen only after a connection error or a 502/503/504, `retries` times, with a short
backoff; any other answer is final. With `socket=PATH` the same HTTP goes over the daemon's local
control socket (AF_UNIX) instead, where the daemon knows the user by uid and needs no token;
before anything is sent on it, the listening process must run as root, the current user or the
service user (socket_trust.peer_problem), or nothing is sent and the command fails.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl  # http.client imports it anyway: no start-up cost
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from signalos_cli.socket_trust import DEFAULT_SERVICE_USER, peer_problem

RETRY_STATUSES = frozenset({502, 503, 504})
# Connection failures after which the request certainly did not reach the daemon.
_NOT_SENT = (ConnectionRefusedError, FileNotFoundError, PermissionError)
UNTRUSTED_HINT = (
    "the daemon's certificate is not trusted here: if it is self-signed or from a private CA, "
    "set SSL_CERT_FILE to that CA's certificate (PEM)"
)
BACKOFF_S = 0.2  # then 0.4, 0.8, … capped at 2 s


class ClientError(Exception):
    """A request that did not get a 2xx. `status` is None when no HTTP answer came at all
    (refused, reset, timed out); otherwise `code`/`message`/`details` are the daemon's error."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str = "unreachable",
        details: Any = None,
        sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details if details is not None else {}
        self.sent = sent  # a mutating request may have reached the daemon before the failure


class UntrustedSocketError(ConnectionError):
    """The process on the other end of the control socket may not be signalosd: nothing was
    sent to it."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix stream socket (the daemon's local control socket), to a listener that
    runs as root, the current user or `service_user` only."""

    def __init__(self, path: str, timeout: float, service_user: str = DEFAULT_SERVICE_USER) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path
        self.service_user = service_user

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
            why = peer_problem(sock, self.service_user)
            if why is not None:
                raise UntrustedSocketError(why)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def path_part(value: object) -> str:
    """One path segment from user input (an id can never climb to another endpoint)."""
    return quote(str(value), safe="")


class Client:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float,
        retries: int,
        source: str,
        account: str | None = None,
        user_agent: str = "signalos-cli",
        sleep: Callable[[float], None] = time.sleep,
        socket: str | None = None,
        service_user: str = DEFAULT_SERVICE_USER,
    ) -> None:
        parts = urlsplit(url)
        self._socket = socket
        self._service_user = service_user
        self.url = f"unix:{socket}" if socket is not None else url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._base = "" if socket is not None else parts.path.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._account = account
        self._sleep = sleep
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent,
            "X-SignalOS-Source": source,
        }
        if token is not None:  # over the control socket the daemon may go by the uid instead
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None

    # ---- the verbs ----------------------------------------------------------------------------

    def get(self, path: str, query: Mapping[str, str] | None = None, wait: float = 0.0) -> Any:
        """GET; `wait` extends the socket timeout for a long-poll of that many seconds."""
        return self._call("GET", path, query, None, {}, self._timeout + wait)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._mutate("POST", path, body)

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._mutate("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self._mutate("DELETE", path, None)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _mutate(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        return self._call(method, path, None, payload, headers, self._timeout)

    # ---- one request, with retries ------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> Any:
        params = dict(query or {})
        if self._account is not None:
            params["account"] = self._account
        target = self._base + path + (f"?{urlencode(params)}" if params else "")
        mutating = method != "GET"
        failure: ClientError | None = None
        maybe_sent = False  # for the message: could an earlier attempt have been applied?
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(min(BACKOFF_S * 2 ** (attempt - 1), 2.0))
            try:
                status, reason, ctype, data = self._once(method, target, payload, headers, timeout)
            except UntrustedSocketError as exc:
                self.close()
                raise ClientError(
                    f"not using the control socket {self._socket}: {exc}; it may not be "
                    "signalosd, so nothing was sent to it (if it is, set service_user to the "
                    "user signalosd runs as; or use --url with a token)"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                failure = self._unreachable(exc, timeout)
                maybe_sent |= mutating and not isinstance(exc, _NOT_SENT)
                continue
            if status in RETRY_STATUSES:
                err = _error(status, reason, ctype, data)
                said = err.message if err.code == f"http_{status}" else f"{err.message} ({status})"
                failure = ClientError(
                    f"signalosd at {self.url} is not available: {said}",
                    status,
                    err.code,
                    err.details,
                )
                maybe_sent |= mutating
                continue
            if status >= 400:
                raise _error(status, reason, ctype, data)
            try:
                return json.loads(data)
            except ValueError:
                raise ClientError(
                    f"{self.url} answered HTTP {status} with something that is not JSON "
                    f"({ctype or 'no content type'}): is it signalosd?",
                    status,
                    "bad_reply",
                ) from None
        assert failure is not None
        failure.sent = maybe_sent
        raise failure

    def _once(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, str, str, bytes]:
        conn = self._conn
        if conn is None and self._socket is not None:
            conn = self._conn = UnixHTTPConnection(self._socket, timeout, self._service_user)
        elif conn is None:
            factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = factory(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        conn.request(method, target, body=payload, headers=self._headers | headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.close()
        return resp.status, resp.reason, resp.getheader("Content-Type", ""), data

    def _unreachable(self, exc: BaseException, timeout: float) -> ClientError:
        if isinstance(exc, TimeoutError):
            what = f"no answer within {timeout:g} s"
        elif isinstance(exc, http.client.RemoteDisconnected):
            what = "the connection closed without a reply"
        else:
            what = str(exc) or type(exc).__name__
        if isinstance(exc, ssl.SSLCertVerificationError):
            what += f"; {UNTRUSTED_HINT}"
        if self._socket is not None and isinstance(exc, PermissionError):
            what += (
                "; only root and members of the socket's group (signalos) may use it: "
                "usermod -aG signalos $USER and log in again, or use --url with a token"
            )
        return ClientError(f"cannot reach signalosd at {self.url}: {what}")


def _error(status: int, reason: str, ctype: str, data: bytes) -> ClientError:
    """The daemon's `{"error": {code, message, details}}`, or what a proxy said instead."""
    body: Any = None
    if "json" in ctype:
        try:
            body = json.loads(data)
        except ValueError:
            body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return ClientError(err["message"], status, str(err.get("code")), err.get("details"))
    return ClientError(f"HTTP {status} {reason}".strip(), status, f"http_{status}")
