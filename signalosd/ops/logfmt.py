"""Log values as `key=value` tokens that no client can break out of.

Every log line is a template we wrote plus values (`%s`, `%r` arguments), and many values come
from clients: a request path (percent-decoded, so `%0A` is a real newline), a token label, a
reason, what an agent says about itself. Written as they are, a newline starts a forged line
(under journald with any `<N>` priority it likes) and a `key=value` lookalike lands before the
real fields. So every argument of every record is made one token here, once, for all three
formats (logs.py): a plain word stays as it is (`path=/api/trades`); anything else (spaces,
quotes, `=`, `<`, `\\`, control or other unprintable characters, nothing at all) becomes one
double-quoted token with C-style escapes (`path="/livez\\n<2>signalosd event=x"`). Numbers and
None need nothing. `parse_pairs` reads such a line back into fields for the JSON format.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Mapping
from typing import Any

# A plain word: nothing that separates, quotes, assigns, escapes, or opens a `<N>` prefix.
_PLAIN = re.compile(r"[^\s\"'\\=<>]+")
_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Safe as they print: nothing a client can shape into a separator.
_VERBATIM = (bool, int, float, type(None))


def quote(text: str) -> str:
    """`text` as one log token: itself when it is a plain printable word, else quoted."""
    if text and _PLAIN.fullmatch(text) and text.isprintable():
        return text
    return '"' + "".join(_escape_char(ch) for ch in text) + '"'


def _escape_char(ch: str) -> str:
    simple = _SIMPLE_ESCAPES.get(ch)
    if simple is not None:
        return simple
    if ch.isprintable():  # non-ASCII letters stay readable; U+2028, NEL, bidi controls do not
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """Unprintable characters escaped, nothing quoted (for a template or a traceback line)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


class Pairs(str):
    """`key=value …` already made of quoted tokens (see `pairs`): logged as it is."""

    __slots__ = ()


def pairs(fields: Mapping[str, object]) -> Pairs:
    """Several fields as one argument (`log.info("event=x %s", pairs(counts))`), each value
    quoted like any other argument."""
    return Pairs(" ".join(f"{key}={_token(value, str)}" for key, value in fields.items()))


class _Value:
    """An argument as `%s` and `%r` see it: the quoted token of its str() or repr()."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return _token(self.value, str)

    def __repr__(self) -> str:
        # A string's repr would only add Python quotes around what quote() quotes anyway.
        return _token(self.value, str if isinstance(self.value, str) else repr)


def _token(value: object, show: Any) -> str:
    if isinstance(value, Pairs):
        return str(value)
    if isinstance(value, _VERBATIM):
        return str(value)
    return quote(value if isinstance(value, str) and show is str else show(value))


def _wrap(value: object) -> object:
    return value if isinstance(value, _VERBATIM) else _Value(value)


def message(msg: object, args: Any) -> str:
    """The record's line: the template with every argument made one token, and any
    unprintable character left in the template itself escaped."""
    if not isinstance(msg, str):
        msg = quote(str(msg))
    if args:
        if isinstance(args, Mapping):
            msg = msg % {key: _wrap(value) for key, value in args.items()}
        else:
            msg = msg % tuple(_wrap(value) for value in args)
    return escape_controls(msg)


def parse_pairs(line: str) -> dict[str, str]:
    """The `key=value` fields of a line, values unquoted. A key starts a word; a value is a
    plain word, a double-quoted token as `quote` writes it, or (in a template we wrote) a
    single-quoted string, which may hold spaces. A quoted token that is no value (`to "a b=c"`)
    is skipped whole: what is inside it is never a field. The first of a repeated key wins."""
    out: dict[str, str] = {}
    i, end = 0, len(line)
    while i < end:
        if line[i] == " ":
            i += 1
            continue
        key = _KEY.match(line, i)
        if key is None:
            i = _skip_word(line, i)
            continue
        i = key.end()
        value, i = _value(line, i)
        out.setdefault(key.group()[:-1], value)
    return out


def _skip_word(line: str, i: int) -> int:
    """The end of the word at `i`; spaces inside double quotes do not end it."""
    end = len(line)
    while i < end and line[i] != " ":
        if line[i] == '"':
            _, i = _quoted(line, i)
        else:
            i += 1
    return i


def _value(line: str, i: int) -> tuple[str, int]:
    if line.startswith('"', i):
        value, j = _quoted(line, i)
        return value, _skip_word(line, j)
    if line.startswith("'", i):
        return _single_quoted(line, i)
    j = line.find(" ", i)
    j = len(line) if j < 0 else j
    return line[i:j], j


def _quoted(line: str, i: int) -> tuple[str, int]:
    """The unescaped content of the double-quoted token at `i`, and the index after it (the
    end of the line when it is never closed)."""
    out: list[str] = []
    j, end = i + 1, len(line)
    while j < end:
        ch = line[j]
        if ch == '"':
            return "".join(out), j + 1
        if ch != "\\" or j + 1 >= end:
            out.append(ch)
            j += 1
            continue
        code = line[j + 1]
        if code in _UNESCAPES:
            out.append(_UNESCAPES[code])
            j += 2
        elif code in _HEX_WIDTH and _is_hex(line[j + 2 : j + 2 + _HEX_WIDTH[code]], code):
            width = _HEX_WIDTH[code]
            out.append(chr(int(line[j + 2 : j + 2 + width], 16)))
            j += 2 + width
        else:
            out.append("\\" + code)
            j += 2
    return "".join(out), end


def _is_hex(digits: str, code: str) -> bool:
    return (
        len(digits) == _HEX_WIDTH[code]
        and all(c in string.hexdigits for c in digits)
        and int(digits, 16) <= sys.maxunicode
    )


def _single_quoted(line: str, i: int) -> tuple[str, int]:
    """A template's `'…'` value: up to the word that closes the quote (not `\\'`), quotes
    removed; unterminated, the rest of the line as written."""
    j = i + 1
    while True:
        close = line.find("'", j)
        if close < 0:
            return line[i:], len(line)
        if line[close - 1] == "\\" or (close + 1 < len(line) and line[close + 1] != " "):
            j = close + 1
            continue
        return line[i + 1 : close], close + 1
