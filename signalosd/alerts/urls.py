"""A webhook's URL: checked before it is stored, redacted wherever it is shown but once.

Chat services put their credential in the URL itself (Slack's `/services/T…/B…/secret`,
Telegram's `/bot<token>/sendMessage`), so the URL is as secret as the signing secret: the
creation reply shows it whole, every listing, event and log line only `scheme://host[:port]/…`.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from signalosd.models.webhooks import URL_MAX_LENGTH

SCHEMES = ("http", "https")


def problem(url: str) -> str | None:
    """What is wrong with `url` as a webhook's address (None: nothing), in words that say
    what to send instead."""
    if len(url) > URL_MAX_LENGTH:
        return f"the URL is {len(url)} characters long; at most {URL_MAX_LENGTH}"
    if not url.isprintable() or any(ch.isspace() for ch in url):
        return "the URL contains spaces or control characters; percent-encode them"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"the URL cannot be parsed ({exc}); write scheme://host[:port]/path"
    if parts.scheme.lower() not in SCHEMES:
        shown = parts.scheme or "none"
        return f"the URL's scheme is {shown!r}; use http:// or https://"
    if "@" in parts.netloc:
        return (
            "the URL has user info (user:password@); put credentials in the path or the "
            "query as the receiver documents, or use the webhook's secret"
        )
    if not parts.hostname:
        return "the URL has no host; write scheme://host[:port]/path"
    if "#" in url:
        return "the URL has a fragment (#...), which is never sent to the receiver; remove it"
    if port == 0:
        return "the URL's port is 0; leave it out or give the receiver's port"
    return None


def redact(url: str) -> str:
    """`scheme://host[:port]/…`: where it goes, without what may be a credential."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    shown = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    if parts.path not in ("", "/") or parts.query:
        shown += "/…"
    return shown


def query_value(url: str, name: str) -> str | None:
    """The first value of the query parameter `name` (Telegram's `chat_id`), if any."""
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None
