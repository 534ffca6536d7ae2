"""Logging: one line per significant event, stable key=value pairs, to stderr.

Three formats, chosen by `log_format` (`auto` picks one):
- `journal`: under systemd's journal (`$JOURNAL_STREAM` names our stderr), `<N>` priority
  prefixes and no timestamp: journald adds its own and reads the priority from the prefix;
- `text`: timestamped lines for a terminal or a plain log file;
- `json`: one JSON object per line for log shippers, with the key=value pairs as fields.

All three write the message as logfmt.message makes it: every argument of the record (`%s`,
`%r`) is one token, quoted and escaped when it is not a plain word, so a client-controlled
value (a path, a label, a reason) can neither start a line nor forge a field.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from signalosd.ops import logfmt

# syslog priorities journald understands in a `<N>` prefix
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def line(record: logging.LogRecord) -> str:
    """The record's message with every argument escaped (logfmt): what all three formats
    write, so that no client-controlled value can start a line or forge a field."""
    return logfmt.message(record.msg, record.args)


def _trace_lines(formatter: logging.Formatter, record: logging.LogRecord) -> list[str]:
    """The traceback's lines, each indented and with unprintable characters escaped: an
    exception's message may carry client data, and must not pass for a line of its own."""
    if not record.exc_info:
        return []
    text = formatter.formatException(record.exc_info)
    return [f"  {logfmt.escape_controls(each)}" for each in text.splitlines()]


_JSON_LINE_ENDS = {ord(ch): f"\\u{ord(ch):04x}" for ch in "\x85\u2028\u2029"}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = f"<{prio}>{record.name} {line(record)}"
        # one entry per line in the journal: keep the traceback's lines at the same priority
        text += "".join(f"\n<{prio}>{each}" for each in _trace_lines(self, record))
        return text


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message>`, the traceback indented below it."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{self.formatTime(record)} {record.levelname} {record.name} {line(record)}"
        return "\n".join([text, *_trace_lines(self, record)])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = line(record)
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        for key, value in logfmt.parse_pairs(message).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        # Non-ASCII stays readable, but not the characters some readers take for a line end.
        return json.dumps(doc, ensure_ascii=False).translate(_JSON_LINE_ENDS)


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
    return TextFormatter()


def setup(level: str, fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate ours (and has no request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
