"""Type filters (DESIGN invariant 11): linear-time matching with the reference semantics (only
`*` is special), bounded size, a clear error for a bad filter on /ws and REST, and a hostile
filter that cannot freeze the event loop (nor another account's emergency stop with it)."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3

import pytest

from signalosd.models import type_filter
from signalosd.models.type_filter import MAX_PATTERN_LENGTH, MAX_PATTERNS, TypeFilter, glob_match
from tests.stream_client import append_events, kinds, open_stream


def reference(pattern: str, name: str) -> bool:
    """The semantics by definition (the old regex translation: fine on small inputs)."""
    regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def sqlite_glob(pattern: str, name: str) -> bool:
    """SQLite's GLOB with `?` and `[` made literal: a second, independent reference."""
    escaped = pattern.replace("[", "[[]").replace("?", "[?]")
    row = sqlite3.connect(":memory:").execute("SELECT ? GLOB ?", (name, escaped)).fetchone()
    return bool(row[0])


CASES = [
    # (pattern, name, matches)
    ("*", "", True),
    ("*", "anything_at_all", True),
    ("**", "x", True),
    ("***", "", True),
    ("", "", True),
    ("", "a", False),
    ("trade_update", "trade_update", True),
    ("trade_update", "trade_updates", False),
    ("trade_update", "xtrade_update", False),
    ("command_*", "command_queued", True),
    ("command_*", "command_", True),
    ("command_*", "commander", False),
    ("*_update", "mt5_status_update", True),
    ("*_update", "_update", True),
    ("*_update", "update", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "acb", False),
    ("a*a", "a", False),  # prefix and suffix may not overlap
    ("a*a", "aa", True),
    ("ab*ba", "aba", False),
    ("*ab*ab*", "abab", True),
    ("*ab*ab*", "aabb", False),
    ("*aab*", "aaab", True),  # the leftmost `aa` is not the one that ends the match
    ("t**e", "te", True),
    ("*a*a*a*a*a*a*b", "a" * 30, False),
    ("*a*a*a*a*a*a*b", "a" * 30 + "b", True),
    # only `*` is special: `?` and `[...]` are plain characters
    ("trading?paused", "trading?paused", True),
    ("trading?paused", "trading_paused", False),
    ("command_[q]ueued", "command_[q]ueued", True),
    ("command_[q]ueued", "command_queued", False),
    ("?*", "x", False),
    ("?*", "?x", True),
    ("[*]", "[abc]", True),
    ("[*]", "a", False),
    ("a.c", "abc", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), CASES)
def test_the_linear_matcher_agrees_with_the_reference_semantics(pattern, name, expected):
    assert reference(pattern, name) is expected  # the table itself is right
    assert sqlite_glob(pattern, name) is expected
    assert glob_match(pattern, name) is expected
    assert TypeFilter([pattern])(name) is expected


def test_the_linear_matcher_agrees_with_the_reference_on_random_patterns():
    rng = random.Random(1009)
    for _ in range(3000):
        pattern = "".join(rng.choice("ab*?[") for _ in range(rng.randint(0, 7)))
        name = "".join(rng.choice("ab?[") for _ in range(rng.randint(0, 8)))
        assert glob_match(pattern, name) is reference(pattern, name), (pattern, name)


def test_a_filter_of_several_patterns_matches_any_of_them_and_remembers_its_verdicts():
    matches = TypeFilter(["trading_*", "emergency_stop", "*_update"])
    names = ["trading_paused", "emergency_stop", "trade_update", "command_queued", "emergency"]
    assert matches.select(names) == ["trading_paused", "emergency_stop", "trade_update"]
    assert matches.select(reversed(names)) == ["trade_update", "emergency_stop", "trading_paused"]
    assert TypeFilter(["a", "b"]).exact == ["a", "b"]
    assert matches.exact is None


def test_the_worst_allowed_filter_is_matched_quickly():
    """32 patterns of 64 characters built to make a backtracking matcher explode, against
    every event type of a big log: a linear matcher needs milliseconds (a backtracking one
    would need longer than the age of the universe for the first one)."""
    patterns = ["*" * (MAX_PATTERN_LENGTH - 1) + "z", "*a" * (MAX_PATTERN_LENGTH // 2)]
    patterns += ["*ab" * 21 + "z"] * (MAX_PATTERNS - 2)
    matches = type_filter.parse(patterns)
    assert matches is not None
    names = [f"type_{i}_" + "ab" * 20 for i in range(2000)]
    assert matches.select(names) == []  # and the pytest timeout did not fire


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (["****************!"], "'****************!' contains '!'"),
        (["trading?paused"], "contains '?'"),
        (["command_[q]ueued"], "contains '[]'"),
        (["Trade_update"], "contains 'T'"),
        (["trade update"], "contains ' '"),
        ([""], "is empty"),
        (["x" * (MAX_PATTERN_LENGTH + 1)], f"at most {MAX_PATTERN_LENGTH}"),
        ([f"t{i}" for i in range(MAX_PATTERNS + 1)], f"at most {MAX_PATTERNS} type filters"),
    ],
)
def test_a_bad_filter_is_refused_naming_what_is_wrong(types, message):
    with pytest.raises(type_filter.FilterError, match=re.escape(message)):
        type_filter.parse(types)


def test_the_largest_allowed_filter_and_the_every_type_filters():
    biggest = ["x" * MAX_PATTERN_LENGTH] * MAX_PATTERNS
    assert type_filter.parse(biggest) is not None
    assert type_filter.parse(None) is None
    assert type_filter.parse([]) is None
    assert type_filter.parse(["command_*", "**"]) is None  # a bare * already takes everything


# ---- /ws subscribe ------------------------------------------------------------------------


@pytest.mark.timeout(30)  # the old regex matcher hung here (a frozen loop: no asyncio timeout)
async def test_a_hostile_filter_does_not_freeze_the_loop_or_another_accounts_stop(daemon):
    viewer = await daemon.token("viewer")
    other = await daemon.token("operator", account="other")
    hostile = ["*" * (MAX_PATTERN_LENGTH - 1) + "z"] * (MAX_PATTERNS - 1) + ["test_*"]
    async with open_stream(daemon, viewer) as stream:
        await stream.subscribe(types=hostile)
        assert await stream.sync() == []
        async with asyncio.timeout(10):
            # Visible to the viewer, so matched against its filter as it is published...
            (seq,) = await append_events(daemon, 1)
            # ...and the loop still serves: another account's emergency stop, then this
            # stream's own ping, answered after the event it was sent.
            status, body = await daemon.request(
                "POST", "/api/trading/emergency-stop", other, json={"reason": "test"}
            )
            assert status in (200, 202), body
            got = await stream.sync()
    assert [(m["type"], m["seq"]) for m in got] == [("test_event", seq)]


async def test_a_filter_with_other_characters_gets_an_error_naming_it(daemon):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(since=0, types=["command_*", "****************!"])
        (error,) = await stream.sync()
        await stream.subscribe(since=0, types=["trading_*"])  # still free to subscribe
        await stream.sync()
        await append_events(daemon, 1, type_="trading_paused")
        live = await stream.sync()

    assert error["type"] == "error"
    assert error["data"]["code"] == "validation_error"
    assert "'****************!'" in error["data"]["message"]
    assert "a-z, 0-9 and _" in error["data"]["message"]
    assert kinds(live) == ["trading_paused"]


@pytest.mark.parametrize(
    "types",
    [
        [f"t{i}" for i in range(MAX_PATTERNS + 1)],
        ["x" * (MAX_PATTERN_LENGTH + 1)],
        [""],
    ],
    ids=["too many", "too long", "empty"],
)
async def test_a_filter_over_the_bounds_gets_an_error(daemon, types):
    async with open_stream(daemon, daemon.admin) as stream:
        await stream.subscribe(types=types)
        (error,) = await stream.sync()
    assert error["data"]["code"] == "validation_error"
    assert error["data"]["message"].startswith("invalid subscribe: types: ")


# ---- GET /api/events?type= ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("type=****************!", "'****************!'"),
        ("type=trading_*,trading%3Fpaused", "'trading?paused'"),
        ("&".join(f"type=t{i}" for i in range(MAX_PATTERNS + 1)), f"at most {MAX_PATTERNS}"),
        (f"type={'x' * (MAX_PATTERN_LENGTH + 1)}", f"at most {MAX_PATTERN_LENGTH}"),
    ],
)
async def test_a_bad_type_query_is_a_422_naming_the_filter(daemon, query, named):
    status, body = await daemon.request("GET", f"/api/events?{query}", daemon.admin)
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("query parameter 'type': ")
    assert named in error["message"]
    assert error["details"]["fields"][0]["field"] == "type"


async def test_the_worst_allowed_type_query_is_served(daemon):
    await append_events(daemon, 50)
    hostile = ["*" * (MAX_PATTERN_LENGTH - 1) + "z"] * (MAX_PATTERNS - 1) + ["test_*"]
    async with asyncio.timeout(10):
        status, body = await daemon.request(
            "GET", "/api/events", daemon.admin, params=[("type", t) for t in hostile]
        )
    assert status == 200, body
    assert [e["type"] for e in body["events"]] == ["test_event"] * 50
