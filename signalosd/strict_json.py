"""Strict JSON in and out: what a browser's `JSON.parse` and `jq` accept, nothing more.

Python's `json` module is lenient in three ways that each cost someone a bug report:
`NaN`/`Infinity` are read and written (browsers reject them), a duplicate key silently keeps
the last value (`{"close_all": false, "close_all": true}` means whatever the parser picked), and
deep nesting raises `RecursionError` instead of `ValueError`, which escapes ordinary error
handling. Everything the daemon reads from a client goes through `loads`, everything it stores
or serves through `dumps`.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


class JsonError(ValueError):
    """The text is not strict JSON; the message says what is wrong, for the client."""


def _no_constant(name: str) -> NoReturn:
    raise JsonError(f"{name} is not a JSON number; send finite numbers only")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonError(f"duplicate key {key[:64]!r}; give each key once")
        out[key] = value
    return out


_DECODER = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_unique)
# Reads NaN/Infinity as floats, for input validated field by field afterwards by models that
# refuse them: the error can then name the field (`equity: Input should be a finite number`).
_NAMING_DECODER = json.JSONDecoder(object_pairs_hook=_unique)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str | bytes | bytearray, *, nan_for_models: bool = False) -> Any:
    """Parse strict JSON: refuses NaN/Infinity, duplicate keys and nesting too deep to parse.
    `nan_for_models`: let NaN/Infinity through as floats, only for a document that a model
    with `allow_inf_nan=False` validates next (so that its error names the field)."""
    try:
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        return (_NAMING_DECODER if nan_for_models else _DECODER).decode(text)
    except JsonError:
        raise
    except RecursionError:
        raise JsonError("nested too deeply; send a flatter JSON document") from None
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise JsonError(str(exc)) from None


def dumps(obj: Any) -> str:
    """Compact JSON; a non-finite float raises ValueError instead of writing `NaN`."""
    return _ENCODER.encode(obj)


def is_finite_tree(value: Any, depth: int = 0, max_depth: int = 32) -> bool:
    """True when `value` (parsed JSON) holds no NaN/Infinity and nests at most `max_depth`
    levels: for free-form payloads (a command result's `data`) stored and served later."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict | list):
        if depth >= max_depth:
            return False
        items = value.values() if isinstance(value, dict) else value
        return all(is_finite_tree(v, depth + 1, max_depth) for v in items)
    return True
