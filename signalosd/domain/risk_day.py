"""When the risk guard's trading day starts: the daily reset, in the trader's time zone.

Prop firms reset the daily loss at a wall-clock time in their zone (midnight in Prague, say),
so the instant moves by an hour twice a year. A reset time the clocks skip that day (the
spring-forward hour) happens when they jump; one they pass twice (the fall-back hour) happens
the first time. Pure functions over aware datetimes; no I/O.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _utc(day: date, at: time, zone: ZoneInfo, fold: int) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).replace(fold=fold).astimezone(UTC)


def reset_on(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of the reset on local date `day`."""
    at = time(hour, minute)
    first = _utc(day, at, zone, fold=0)
    if first.astimezone(zone).replace(tzinfo=None) == datetime.combine(day, at):
        return first  # the wall time exists (if twice, fold=0 is its first occurrence)
    # Skipped: fold=1 reads the time with the offset from before the jump, fold=0 with the one
    # after, and the jump lies between. Find it to the second (the gap is an hour at most).
    low, high = _utc(day, at, zone, fold=1), first
    if low > high:
        low, high = high, low
    wanted = datetime.combine(day, at)
    while (high - low) > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wanted:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def day_start(now: datetime, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """The last reset at or before `now` (aware): where today's anchor belongs."""
    local_day = now.astimezone(zone).date()
    for back in range(3):
        start = reset_on(local_day - timedelta(days=back), hour, minute, zone)
        if start <= now:
            return start
    raise AssertionError("a reset happens every day")  # pragma: no cover


def next_reset(now: datetime, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """The first reset after `now` (aware): when a daily trip clears; the next local day's."""
    today = day_start(now, hour, minute, zone).astimezone(zone).date()
    return reset_on(today + timedelta(days=1), hour, minute, zone)
