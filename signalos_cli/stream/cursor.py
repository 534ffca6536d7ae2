"""The cursor file of `signalos tail` (`cursor_file`): the last seq consumed, so that the next
run resumes after it.

After events are printed, `out` is flushed and then the last seq consumed is written to the
file (temp file + rename, every `flush_interval_s` and on exit), so the file never gets ahead
of the output: a crash can repeat the last ~0.1 s of events on the next run, never skip any.
A `reset` moves the cursor to the reset's `last_seq`; a `follow=False` run moves it to the head
it read up to, even when its filter matched nothing there.
"""

from __future__ import annotations

import os
from pathlib import Path

from signalos_cli.errors import ExitCode
from signalos_cli.stream.ending import Fatal

__all__ = ["CursorFile", "read_cursor", "write_cursor"]


def read_cursor(path: Path) -> int | None:
    """The seq stored in a cursor file (None when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Fatal(ExitCode.FAILED, f"cannot read the cursor file {path}: {exc.strerror}") from exc
    if not text.isdigit():
        raise Fatal(ExitCode.FAILED, f"the cursor file {path} does not hold a seq: {text[:40]!r}")
    return int(text)


def write_cursor(path: Path, seq: int) -> None:
    """Replace the cursor file atomically (write a temp file beside it, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{seq}\n", encoding="utf-8")
    os.replace(tmp, path)


class CursorFile:
    """A cursor file and the seq it holds (an unchanged cursor is not written again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: int | None = None  # what the file holds

    def load(self) -> int | None:
        """The stored seq (None: no file yet); its directory must exist."""
        parent = self.path.parent
        if not parent.is_dir():
            raise Fatal(ExitCode.FAILED, f"the cursor file's directory {parent} does not exist")
        self.saved = read_cursor(self.path)
        return self.saved

    def save(self, seq: int) -> None:
        """Record `seq` (call it only once the output up to `seq` has been flushed)."""
        if seq == self.saved:
            return
        try:
            write_cursor(self.path, seq)
        except OSError as exc:
            raise Fatal(
                ExitCode.FAILED, f"cannot write the cursor file {self.path}: {exc.strerror}"
            ) from exc
        self.saved = seq
