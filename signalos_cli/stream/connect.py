"""Where and how the WebSocket commands (`tail`, `ws`) reach the daemon: its `/ws` URL, the
REST base beside it, the HTTP session (over TCP or the control socket) and the WebSocket
connection, and the `authenticate` message (a token, or nothing on the control socket).
"""

from __future__ import annotations

import aiohttp
from yarl import URL

MAX_MESSAGE = 64 * 1024 * 1024  # a reset carries a snapshot of every live trade


def stream_url(url: str) -> str:
    """http(s)://host:port[/prefix] (or ws(s)://…) → ws(s)://host:port[/prefix]/ws."""
    u = URL(url)
    scheme = {"http": "ws", "https": "wss"}.get(u.scheme, u.scheme)
    if scheme not in ("ws", "wss") or not u.host:
        raise ValueError(f"unsupported url {url!r} (use http://HOST:PORT or https://…)")
    path = u.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return str(u.with_scheme(scheme).with_path(path).with_query(None).with_fragment(None))


def api_base(url: str) -> str:
    """The daemon's http(s) base url (no trailing slash) for the REST calls."""
    u = URL(stream_url(url))
    scheme = "https" if u.scheme == "wss" else "http"
    return str(u.with_scheme(scheme).with_path(u.path[: -len("/ws")] or "/")).rstrip("/")


def unencrypted(url: str) -> str:
    """The url with ws/http instead of wss/https (for the control socket)."""
    u = URL(url)
    return str(u.with_scheme({"wss": "ws", "https": "http"}.get(u.scheme, u.scheme)))


def auth_data(token: str | None) -> dict[str, str]:
    """The `authenticate` message's data: the token, or nothing on the control socket (the
    daemon then authorises the connecting uid)."""
    return {} if token is None else {"token": token}


def client_session(socket: str | None, connect_timeout_s: float) -> aiohttp.ClientSession:
    """The HTTP session to the daemon: over TCP, or its control socket at `socket`. Only the
    connection has a deadline: a stream lasts as long as it lasts."""
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=connect_timeout_s,
        sock_connect=connect_timeout_s,
    )
    connector = None if socket is None else aiohttp.UnixConnector(socket)
    return aiohttp.ClientSession(timeout=timeout, connector=connector)


async def ws_connect(
    http: aiohttp.ClientSession, url: str, heartbeat_s: float
) -> aiohttp.ClientWebSocketResponse:
    """The WebSocket at `url`: pinged after `heartbeat_s` of silence, frames up to
    `MAX_MESSAGE`, the closing handshake given 2 s."""
    return await http.ws_connect(
        url,
        heartbeat=heartbeat_s,
        max_msg_size=MAX_MESSAGE,
        autoping=True,
        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
    )
