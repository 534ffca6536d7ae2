"""Where `signalos tail` starts on its first connection (later ones resume from the cursor).

`since` and `last` exclude each other and override a cursor file (which is still updated):

- `since=S`: the events after seq S, then follow.
- `last=N`: the last N events this token sees that match `types`, as of the head announced in
  `authenticated.last_seq` (fewer if the log holds fewer), then follow. The start is found
  with `GET /api/events` (same visibility and type filter as the stream), scanning back from
  the head in growing windows, so a filter on a rare type stays exact. Pruned history counts
  as absent.
- neither, but `cursor_file` holds a seq: resume after it.
- otherwise: follow from the head at connect time (nothing old), or with `follow=False` the
  whole log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from signalos_cli.errors import ExitCode
from signalos_cli.stream.ending import Fatal
from signalos_cli.stream.reader import Closed

__all__ = ["EventLog", "start_after"]

PAGE = 1000  # GET /api/events page size (the daemon's maximum)


@dataclass(frozen=True)
class EventLog:
    """`GET /api/events` as the tail's token sees it, filtered by the tail's `types`."""

    http: aiohttp.ClientSession
    api: str  # the daemon's http(s) base url
    token: str | None  # None on the control socket: the daemon knows the user by uid
    types: Sequence[str]


async def start_after(
    log: EventLog,
    head: int,
    *,
    since: int | None,
    last: int | None,
    file_cursor: int | None,
    follow: bool,
) -> int:
    """The seq the first subscription starts after (`head`: `authenticated.last_seq`)."""
    if since is not None:
        return since
    if last is not None:
        return await _last_n_since(log, head, last)
    if file_cursor is not None:
        return file_cursor
    if follow:
        return head
    return 0


async def _last_n_since(log: EventLog, head: int, n: int) -> int:
    """The seq just before the last `n` visible, matching events up to `head`."""
    if n == 0:
        return head
    found: list[int] = []  # seqs of matching events in (lo, head], ascending
    lo, window = head, n
    while True:
        new_lo = max(0, lo - window)
        seqs, floor = await _seqs_between(log, new_lo, lo)
        found = seqs + found
        lo = max(new_lo, floor)
        if len(found) >= n:
            return found[-n] - 1
        if lo == 0 or floor > new_lo:  # the beginning of the (retained) log
            return lo
        window *= 4


async def _seqs_between(log: EventLog, after: int, upto: int) -> tuple[list[int], int]:
    """Seqs of the visible, matching events in (after, upto], and the start actually read
    (raised to the pruned boundary when the log no longer holds `after + 1`)."""
    seqs: list[int] = []
    start = cursor = after
    while cursor < upto:
        params: list[tuple[str, str]] = [("since", str(cursor)), ("limit", str(PAGE))]
        params += [("type", t) for t in log.types]
        async with log.http.get(
            f"{log.api}/api/events",
            params=params,
            headers={} if log.token is None else {"Authorization": f"Bearer {log.token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            status = resp.status
            try:
                body = json.loads(await resp.text())
            except ValueError:
                body = {}
        if status == 409 and _error_code(body) == "events_reset":
            details = body["error"].get("details") or {}
            pruned = int(details.get("pruned_through") or 0)
            if pruned <= cursor:  # a cursor past the head: nothing older to show
                return seqs, upto
            start = cursor = min(pruned, upto)
            continue
        if status in (401, 403):
            raise Fatal(
                ExitCode.UNAUTHORIZED, f"the daemon refused the token: {_error_message(body)}"
            )
        if status == 400:
            raise Fatal(ExitCode.USAGE, f"the daemon refused the filter: {_error_message(body)}")
        if status >= 500:
            raise Closed(f"GET /api/events answered HTTP {status}")
        if status != 200:
            raise Fatal(ExitCode.FAILED, f"GET /api/events: HTTP {status}: {_error_message(body)}")
        events = body.get("events") or []
        seqs.extend(e["seq"] for e in events if e["seq"] <= upto)
        nxt = int(body.get("last_seq", cursor))
        if nxt <= cursor:
            break
        cursor = nxt
    return seqs, start


def _error_code(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def _error_message(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", err))
    return str(body)[:200]
