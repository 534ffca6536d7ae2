"""Where and how the WebSocket commands (`tail`, `ws`) reach the daemon: its `/ws` URL, the
REST base beside it, and the `authenticate` message (a token, or nothing on the control socket).
"""

from __future__ import annotations

from yarl import URL


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
