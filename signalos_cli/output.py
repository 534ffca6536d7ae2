"""What the CLI prints: data to stdout (tables, or one JSON document with --json), messages
and errors to stderr. Colour only on a terminal, never with NO_COLOR (click does not check it),
never with TERM=dumb, never in JSON, and not when the config file says `color = false`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

Cell = str | tuple[str, str | None]  # text, or (text, colour)


def color_allowed(setting: bool, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if not setting or env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


class Output:
    def __init__(self, *, json_mode: bool, color: bool) -> None:
        self.json_mode = json_mode
        self.color = color and not json_mode

    def emit(self, doc: Any, human: Callable[[], None]) -> None:
        """One JSON document with --json, else the human rendering."""
        if self.json_mode:
            click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            human()

    def line(self, text: str = "") -> None:
        click.echo(text, color=self.color)

    def note(self, text: str) -> None:
        """A message for the person (stderr), never data."""
        click.echo(text, err=True)

    def progress(self, text: str) -> None:
        """A message worth showing only to someone watching (stderr is a terminal)."""
        if sys.stderr.isatty():
            click.echo(text, err=True)

    def style(self, text: str, fg: str | None) -> str:
        return click.style(text, fg=fg) if self.color and fg else text

    def pairs(self, rows: Iterable[tuple[str, Cell]]) -> None:
        items = list(rows)
        width = max((len(k) for k, _ in items), default=0)
        for key, value in items:
            text, fg = (value, None) if isinstance(value, str) else value
            self.line(f"{key.ljust(width)}  {self.style(text, fg)}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Cell]], empty: str) -> None:
        if not rows:
            self.note(empty)
            return
        cells = [[(c, None) if isinstance(c, str) else c for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            widths = [max(w, len(text)) for w, (text, _) in zip(widths, row, strict=True)]
        self.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in cells:
            parts = [
                self.style(text.ljust(w), fg) for (text, fg), w in zip(row, widths, strict=True)
            ]
            self.line("  ".join(parts).rstrip())


# ---- formatting of values -----------------------------------------------------------------------


def num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return str(value)


def money(value: Any) -> Cell:
    if value is None:
        return "-"
    number = float(value)
    return (f"{number:.2f}", "green" if number > 0 else "red" if number < 0 else None)


def when(ts: Any) -> str:
    """`2026-01-05T09:00:00.123Z` → `2026-01-05 09:00:00Z` (UTC)."""
    if not ts:
        return "-"
    text = str(ts)
    return f"{text[:19].replace('T', ' ')}Z" if len(text) >= 19 else text


def flat(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Cell]]:
    """Nested mappings as `a.b  value` rows (for `health`)."""
    rows: list[tuple[str, Cell]] = []
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flat(value, f"{name}.") if value else [(name, "-")]
        elif isinstance(value, bool):
            rows.append((name, "yes" if value else "no"))
        elif isinstance(value, list):
            rows.append((name, ", ".join(num(v) for v in value) or "-"))
        else:
            rows.append((name, num(value)))
    return rows
