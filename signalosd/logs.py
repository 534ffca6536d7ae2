"""Logging: one line per significant event, stable key=value pairs, to stderr."""

from __future__ import annotations

import logging
import sys


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would duplicate ours (and has no request id).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
