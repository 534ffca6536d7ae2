"""Logging: one line per significant event, stable key=value pairs, to stderr.

Three formats, chosen by `log_format` (`auto` picks one):
- `journal`: under systemd's journal (`$JOURNAL_STREAM` names our stderr), `<N>` priority
  prefixes and no timestamp: journald adds its own and reads the priority from the prefix;
- `text`: timestamped lines for a terminal or a plain log file;
- `json`: one JSON object per line for log shippers, with the key=value pairs as fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

FORMATS = ("auto", "text", "json", "journal")
# syslog priorities journald understands in a `<N>` prefix
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = f"<{prio}>{record.name} {record.getMessage()}"
        if record.exc_info:
            # one entry per line in the journal: keep the traceback's lines at the same priority
            trace = self.formatException(record.exc_info)
            text += "".join(f"\n<{prio}>{line}" for line in trace.splitlines())
        return text


def _pairs(message: str) -> dict[str, str]:
    """The `key=value` pairs of a log line. By our convention a value is one word, or a quoted
    string as `%r` writes it (`hint='use --port'`), which may hold spaces; quotes are removed."""
    out: dict[str, str] = {}
    words = message.split(" ")
    i = 0
    while i < len(words):
        key, sep, value = words[i].partition("=")
        i += 1
        if not (sep and key.isidentifier()):
            continue
        quote = value[:1]
        if quote in ("'", '"'):
            # Join words up to the one that closes the quote (not an escaped quote).
            while not _closes(value, quote) and i < len(words):
                value += " " + words[i]
                i += 1
            if _closes(value, quote):
                value = value[1:-1]
        out[key] = value
    return out


def _closes(value: str, quote: str) -> bool:
    return len(value) >= 2 and value.endswith(quote) and not value.endswith("\\" + quote)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        for key, value in _pairs(message).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def under_journal(env: Mapping[str, str], stream: Any = None) -> bool:
    """True when stderr is the journal stream systemd handed us ($JOURNAL_STREAM = dev:inode)."""
    value = env.get("JOURNAL_STREAM", "")
    dev, _, inode = value.partition(":")
    if not (dev.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(inode))


def formatter(fmt: str, env: Mapping[str, str] | None = None) -> logging.Formatter:
    env = os.environ if env is None else env
    if fmt == "auto":
        fmt = "journal" if under_journal(env) else "text"
    if fmt == "journal":
        return JournalFormatter()
    if fmt == "json":
        json_formatter = JsonFormatter()
        json_formatter.converter = time.gmtime  # the "Z" in ts means UTC
        return json_formatter
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")


def setup(level: str, fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate ours (and has no request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
