"""The agent's on-disk state: what it executed, and what must survive a restart.

One SQLite file in the agent's state dir (WAL, `synchronous=FULL`: a row written is on disk
before the broker is called). Every write goes straight through; reads come from the file too,
so a crash never loses more than the statement in flight.

- executed commands: `command_id` → type, status (`executing` | `done`), result. A command is
  recorded as `executing` *before* the broker is called and `done` with its result after, so a
  redelivered command is never run twice (at most once) and its stored result is re-sent. A
  command found `executing` when the journal is opened was interrupted by a crash: it is marked
  failed ("agent restarted while executing; check the position") and never run again blindly.
- mode (running / paused / halted: an agent restarted after an emergency stop stays halted)
  and the halt generation it knows (the fence: an entry or resume issued in an older
  generation is refused), stealth flag, virtual SL/TP per ticket, trailing settings per
  ticket, ticket → trade id.

Executed commands are kept `KEEP_EXECUTED` (the agent's hello tells the daemon, which never
sends anything older), emergency stops for good: redelivering one is always recognised.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from signalosd.clock import iso
from signalosd.models import DEFAULT_JOURNAL_KEEP_S, CommandType, Mode

INTERRUPTED = "agent restarted while executing; check the position"
KEEP_EXECUTED = timedelta(seconds=DEFAULT_JOURNAL_KEEP_S)  # long past any redelivery

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executed (
    command_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('executing', 'done')),
    result TEXT,
    started_at TEXT NOT NULL,
    executed_at TEXT
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS virtual_levels (ticket INTEGER PRIMARY KEY, sl REAL, tp REAL);
CREATE TABLE IF NOT EXISTS trailing (
    ticket INTEGER PRIMARY KEY, distance REAL NOT NULL, step REAL, best REAL
);
CREATE TABLE IF NOT EXISTS tickets (ticket INTEGER PRIMARY KEY, trade_id INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Executed:
    command_id: str
    type: str
    result: dict[str, Any] | None  # None while executing


@dataclass(frozen=True, slots=True)
class Levels:
    """Virtual SL/TP kept by the agent instead of the broker (None: no level)."""

    sl: float | None
    tp: float | None


@dataclass(frozen=True, slots=True)
class Trailing:
    distance: float
    step: float | None  # minimum SL improvement; None: any improvement
    best: float | None  # best price seen when the SL last moved


def _now() -> str:
    return iso(datetime.now(UTC))


def failed_result(command_id: str, error: str, retcode: int | None = None) -> dict[str, Any]:
    return {"command_id": command_id, "ok": False, "error": error, "retcode": retcode, "data": {}}


class Journal:
    """Write-through state in `<state_dir>/agent.sqlite3`. Safe to share between threads."""

    FILENAME = "agent.sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self.interrupted = self._recover()
        self._prune()

    @classmethod
    def open(cls, state_dir: Path) -> Journal:
        return cls(Path(state_dir) / cls.FILENAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- executed commands ---------------------------------------------------------------

    def _recover(self) -> list[str]:
        """Commands a crash interrupted: failed, with a result telling the operator to look."""
        ids = [r[0] for r in self._read("SELECT command_id FROM executed WHERE status='executing'")]
        for command_id in ids:
            self.finish(command_id, failed_result(command_id, INTERRUPTED))
        return ids

    def _prune(self) -> None:
        cutoff = iso(datetime.now(UTC) - KEEP_EXECUTED)
        self._write(
            "DELETE FROM executed WHERE status='done' AND executed_at < ? AND type != ?",
            (cutoff, CommandType.EMERGENCY_STOP.value),
        )

    def executed(self, command_id: str) -> Executed | None:
        rows = self._read("SELECT type, result FROM executed WHERE command_id = ?", (command_id,))
        if not rows:
            return None
        type_, result = rows[0]
        return Executed(command_id, type_, json.loads(result) if result is not None else None)

    def begin(self, command_id: str, type_: str) -> bool:
        """Record that the command is about to run; False if it was already recorded."""
        inserted = self._write(
            "INSERT OR IGNORE INTO executed (command_id, type, status, started_at) "
            "VALUES (?, ?, 'executing', ?)",
            (command_id, type_, _now()),
        )
        return inserted == 1

    def finish(self, command_id: str, result: dict[str, Any]) -> None:
        self._write(
            "UPDATE executed SET status='done', result=?, executed_at=? WHERE command_id=?",
            (json.dumps(result, separators=(",", ":")), _now(), command_id),
        )

    # ---- settings ------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def _set(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def mode(self) -> Mode:
        return Mode(self._get("mode") or Mode.RUNNING.value)

    def set_mode(self, mode: Mode) -> None:
        self._set("mode", mode.value)

    @property
    def halt_gen(self) -> int:
        """The newest halt generation this agent knows of (0: none yet)."""
        return int(self._get("halt_gen") or 0)

    def fence(self, halt_gen: object) -> None:
        """An emergency stop of generation `halt_gen` arrived: halted from now on, and every
        entry or resume of an older generation is refused (the generation never goes down
        here; a stop without a whole-number generation, from an older daemon, keeps the one
        known). Both in one transaction: a crash leaves both or neither."""
        gen = halt_gen if isinstance(halt_gen, int) else 0
        self._set_together(
            lambda known: {"mode": Mode.HALTED.value, "halt_gen": str(max(known, gen))}
        )

    def adopt(self, mode: Mode, halt_gen: int) -> None:
        """The daemon's `welcome`: its mode and halt generation replace ours (the daemon is
        the source of truth; a generation lower than ours means its database was restored)."""
        self._set_together(lambda _known: {"mode": mode.value, "halt_gen": str(halt_gen)})

    def _set_together(self, values: Callable[[int], dict[str, str]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM settings WHERE key = 'halt_gen'")
                known = row.fetchone()
                for key, value in values(int(known[0]) if known else 0).items():
                    self._db.execute(
                        "INSERT INTO settings (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    def stealth(self) -> bool:
        return self._get("stealth") == "1"

    def set_stealth(self, enabled: bool) -> None:
        self._set("stealth", "1" if enabled else "0")

    # ---- per-ticket state ----------------------------------------------------------------

    def virtual(self, ticket: int) -> Levels | None:
        return self.all_virtual().get(ticket)

    def all_virtual(self) -> dict[int, Levels]:
        rows = self._read("SELECT ticket, sl, tp FROM virtual_levels")
        return {int(t): Levels(sl, tp) for t, sl, tp in rows}

    def set_virtual(self, ticket: int, sl: float | None, tp: float | None) -> None:
        self._write(
            "INSERT OR REPLACE INTO virtual_levels (ticket, sl, tp) VALUES (?, ?, ?)",
            (ticket, sl, tp),
        )

    def clear_virtual(self, ticket: int) -> None:
        self._write("DELETE FROM virtual_levels WHERE ticket = ?", (ticket,))

    def trailing(self, ticket: int) -> Trailing | None:
        return self.all_trailing().get(ticket)

    def all_trailing(self) -> dict[int, Trailing]:
        rows = self._read("SELECT ticket, distance, step, best FROM trailing")
        return {int(t): Trailing(d, s, b) for t, d, s, b in rows}

    def set_trailing(self, ticket: int, trailing: Trailing) -> None:
        self._write(
            "INSERT OR REPLACE INTO trailing (ticket, distance, step, best) VALUES (?, ?, ?, ?)",
            (ticket, trailing.distance, trailing.step, trailing.best),
        )

    def trade_id(self, ticket: int) -> int | None:
        rows = self._read("SELECT trade_id FROM tickets WHERE ticket = ?", (ticket,))
        return int(rows[0][0]) if rows else None

    def ticket_for_trade(self, trade_id: int) -> int | None:
        rows = self._read("SELECT ticket FROM tickets WHERE trade_id = ?", (trade_id,))
        return int(rows[0][0]) if rows else None

    def all_trade_ids(self) -> dict[int, int]:
        return {int(t): int(i) for t, i in self._read("SELECT ticket, trade_id FROM tickets")}

    def set_trade_id(self, ticket: int, trade_id: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO tickets (ticket, trade_id) VALUES (?, ?)", (ticket, trade_id)
        )

    def forget(self, ticket: int) -> None:
        """A closed (and reported) position: drop everything kept for its ticket."""
        with self._lock:
            for table in ("virtual_levels", "trailing", "tickets"):
                self._db.execute(f"DELETE FROM {table} WHERE ticket = ?", (ticket,))

    def prune(self, open_tickets: set[int]) -> None:
        """Drop per-ticket state of positions no longer open (left over by a crash)."""
        known = set(self.all_virtual()) | set(self.all_trailing()) | set(self.all_trade_ids())
        for ticket in known - open_tickets:
            self.forget(ticket)
