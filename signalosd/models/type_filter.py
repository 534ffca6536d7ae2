"""Event type filters (`command_*`, `emergency_stop`): validated, bounded, matched in linear time.

Why not a regex or fnmatch: translated to a regex, a glob like `****************!` backtracks
exponentially, and it runs inside the event loop for every published event, so one viewer's
filter could freeze the daemon (and every other account's emergency stop with it). Here a
pattern is split at `*` into literal parts: the first must be a prefix, the last a suffix and
the middle ones are found left to right with `str.find` (taking the leftmost occurrence of each
part is always optimal), so a match costs O(len(name) * len(pattern)) at worst, with no
backtracking. Runs of `*` collapse by themselves (they leave empty parts).

Only `*` is special; every other character is literal. The live fan-out (bus.py) and the
replay/REST reads (store/sqlite/base.py) use the same `TypeFilter`, so they choose exactly the same
events. What a client may send is bounded: at most `MAX_PATTERNS` patterns of at most
`MAX_PATTERN_LENGTH` characters from `ALPHABET` (the characters event types are made of).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

MAX_PATTERNS = 32
MAX_PATTERN_LENGTH = 64
ALPHABET = frozenset(string.ascii_lowercase + string.digits + "_*")
_MEMO_MAX = 512  # distinct event types remembered per filter (the daemon uses a few dozen)


class FilterError(ValueError):
    """A type filter a client sent is refused; the message names it and says what to fix."""


def glob_match(pattern: str, name: str) -> bool:
    """Whether `name` matches `pattern`, where `*` matches any run of characters (also none)
    and every other character only itself. Linear: no backtracking."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return name == pattern
    first, last = parts[0], parts[-1]
    if len(name) < len(first) + len(last) or not name.startswith(first):
        return False
    if not name.endswith(last):
        return False
    pos, end = len(first), len(name) - len(last)
    for part in parts[1:-1]:
        if not part:
            continue  # `**`
        found = name.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


class TypeFilter:
    """A compiled list of patterns; calling it with an event type says whether it matches.

    Exact names are a set lookup; the verdict for each type seen is remembered (up to
    `_MEMO_MAX` types), so the fan-out pays one dict lookup per event and subscriber."""

    __slots__ = ("_exact", "_globs", "_memo", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._exact = frozenset(p for p in self.patterns if "*" not in p)
        self._globs = tuple(dict.fromkeys(p for p in self.patterns if "*" in p))
        self._memo: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        verdict = self._memo.get(name)
        if verdict is None:
            verdict = name in self._exact or any(glob_match(g, name) for g in self._globs)
            if len(self._memo) < _MEMO_MAX:
                self._memo[name] = verdict
        return verdict

    @property
    def exact(self) -> list[str] | None:
        """The names, when no pattern has a wildcard (then membership is all there is)."""
        return None if self._globs else sorted(self._exact)

    def select(self, names: Iterable[str]) -> list[str]:
        """The names among `names` that match (for the store: which types to read)."""
        return [name for name in names if self(name)]

    def __repr__(self) -> str:
        return f"TypeFilter({list(self.patterns)!r})"


def _problem(pattern: object) -> str | None:
    if not isinstance(pattern, str):
        return f"type filter {pattern!r} is not a string"
    if not pattern:
        return "a type filter is empty; leave it out, or use '*' for every type"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (
            f"type filter {pattern[:MAX_PATTERN_LENGTH]!r}... is {len(pattern)} characters long; "
            f"at most {MAX_PATTERN_LENGTH}"
        )
    bad = sorted(set(pattern) - ALPHABET)
    if bad:
        return (
            f"type filter {pattern!r} contains {''.join(bad)!r}; event types use only a-z, "
            "0-9 and _, and * is the only wildcard"
        )
    return None


def parse(types: Sequence[str] | None) -> TypeFilter | None:
    """A client's type filter, checked and compiled; None (no list, or an empty one, or one
    with a bare `*`) means every type. Raises FilterError naming the first bad pattern."""
    if not types:
        return None
    if len(types) > MAX_PATTERNS:
        raise FilterError(
            f"at most {MAX_PATTERNS} type filters (got {len(types)}); use * wildcards "
            "(e.g. command_*) to cover several types with one"
        )
    for pattern in types:
        problem = _problem(pattern)
        if problem is not None:
            raise FilterError(problem)
    if any(set(p) == {"*"} for p in types):
        return None
    return TypeFilter(types)
