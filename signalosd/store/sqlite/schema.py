"""The schema as the database itself declares it (PRAGMA table_info), read once per opened
connection after the migrations: which columns a table has, and which of them SQLite hands
back as floats. So neither list is kept by hand beside the migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass

# The tables whose rows queries write from a dict of column names (trades.py, commands.py).
WRITTEN_FROM_DICTS = ("trades", "signals", "agent_status")


def _real_affinity(declared: str) -> bool:
    """SQLite's rules for a column's type affinity (datatype3 §3.1), in their order."""
    t = declared.upper()
    if "INT" in t or any(s in t for s in ("CHAR", "CLOB", "TEXT")) or "BLOB" in t or not t:
        return False
    return any(s in t for s in ("REAL", "FLOA", "DOUB"))


@dataclass(frozen=True, slots=True)
class Schema:
    columns: dict[str, frozenset[str]]  # table -> its columns
    real: dict[str, frozenset[str]]  # table -> its columns of REAL affinity

    @classmethod
    def read(cls, conn: sqlite3.Connection, tables: Iterable[str] = WRITTEN_FROM_DICTS) -> Schema:
        columns: dict[str, frozenset[str]] = {}
        real: dict[str, frozenset[str]] = {}
        for table in tables:
            info = [(str(r[1]), str(r[2])) for r in conn.execute(f"PRAGMA table_info({table})")]
            columns[table] = frozenset(name for name, _ in info)
            real[table] = frozenset(name for name, declared in info if _real_affinity(declared))
        return cls(columns, real)

    def check(self, table: str, names: Collection[str]) -> None:
        """Refuse column names the table does not have: they would go into SQL as written."""
        known = self.columns[table]
        if not known.issuperset(names):
            unknown = ", ".join(repr(n) for n in sorted(set(names) - known))
            raise ValueError(f"table {table} has no column {unknown}")
