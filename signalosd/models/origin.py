"""Origins as browsers send them: parsing, normalising, and the daemon's own origin.

Pure functions (no I/O, nothing of the app): config.py validates `allowed_origins` with them.
An origin is compared as text once normalised: scheme and host in lower case, the port left
out when it is the scheme's default (`http://Desk:80` is `http://desk`), IPv6 hosts in
brackets. Only http and https: `null` (a sandboxed frame, a file:// page) is never anyone's.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORT = {"http": 80, "https": 443}
# What a host may hold once split off: a DNS name, an IPv4 address, or an IPv6 one in brackets.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])")


def parse_origin(text: str) -> str | None:
    """`scheme://host[:port]` normalised, or None when `text` is not exactly an origin (a
    path, a query, credentials, a trailing slash, another scheme, `null`)."""
    if len(text) > 300 or not text.isascii() or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or parts.path or parts.query or parts.fragment:
        return None
    if "?" in text or "#" in text or "@" in parts.netloc or not parts.hostname or port == 0:
        return None
    return _join(scheme, parts.hostname, port)


def own_origin(scheme: str, host_header: str) -> str | None:
    """The origin a browser sends for a page this request's server served: the request's
    scheme (the connection's: https when the daemon itself speaks TLS) and its Host header.
    Behind a reverse proxy that keeps the Host header, the host is the public one; when the
    proxy also ends TLS the scheme differs, so its origin is listed in `allowed_origins`."""
    if not host_header:
        return None
    return parse_origin(f"{scheme}://{host_header}")


def _join(scheme: str, host: str, port: int | None) -> str | None:
    host = host.lower()
    if ":" in host:  # urlsplit drops the brackets of an IPv6 literal
        host = f"[{host}]"
    if not _HOST.fullmatch(host):
        return None
    if port is None or port == _DEFAULT_PORT[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
