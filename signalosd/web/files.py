"""The dashboard's files, found once and kept in memory (served by serve.py).

Why an index of the files instead of joining the request's path onto the directory: the
files are found once, by walking `static/` (not following symlinked directories, skipping
dotfiles, keeping a symlinked file only when it resolves inside the root), read and hashed,
and kept in memory (~150 KB). A request is then a dictionary lookup by its decoded path, so no
spelling of a path (`..`, `%2e%2e`, `%2f`, a backslash, a NUL, an absolute path, a directory)
can name anything but one of those files. The files do not change while the daemon runs (an
upgrade restarts it), so each one's strong ETag (its SHA-256) is computed once too.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("signalosd.web")
ROOT = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
_UTF8 = "; charset=utf-8"
TYPES = {
    ".html": "text/html" + _UTF8,
    ".js": "text/javascript" + _UTF8,
    ".mjs": "text/javascript" + _UTF8,
    ".css": "text/css" + _UTF8,
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain" + _UTF8,
    ".md": "text/plain" + _UTF8,
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# Licence texts are often named without a suffix (LICENSE, NOTICE, COPYING).
_PLAIN_NAMES = ("license", "licence", "notice", "copying")
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    etag: str  # strong: a quoted hash of the bytes
    content_type: str


def content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in TYPES:
        return TYPES[suffix]
    if name.lower().startswith(_PLAIN_NAMES):
        return "text/plain" + _UTF8
    return FALLBACK_TYPE


class StaticFiles:
    """The files under `root`, found, read and hashed at the first request, then served from
    memory. A missing root (or index.html) is logged once and answered 404, so a daemon
    installed without its dashboard still starts and serves its API."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self._assets: dict[str, Asset] | None = None

    def find(self, path: str) -> Asset | None:
        """The file at `path` (relative, `/`-separated, as decoded from the URL), if any."""
        if self._assets is None:
            self._assets = self._load()
        return self._assets.get(path)

    def _load(self) -> dict[str, Asset]:
        try:
            root = self.root.resolve(strict=True)
        except OSError:
            log.warning(
                "event=dashboard_missing root=%s hint=%r",
                self.root,
                "the dashboard's files are not installed; reinstall signalos (the API works)",
            )
            return {}
        assets: dict[str, Asset] = {}
        for folder, dirs, files in os.walk(root):  # symlinked directories are not entered
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                full = Path(folder) / name
                try:
                    real = full.resolve(strict=True)
                    if not real.is_relative_to(root) or not real.is_file():
                        continue  # a symlink out of the root, or to something not a file
                    body = real.read_bytes()
                except OSError as exc:
                    log.warning("event=static_file_unreadable path=%s error=%r", full, str(exc))
                    continue
                digest = hashlib.sha256(body).hexdigest()[:32]
                rel = full.relative_to(root).as_posix()
                assets[rel] = Asset(body, f'"{digest}"', content_type(name))
        if INDEX not in assets:
            log.warning(
                "event=dashboard_missing root=%s hint=%r",
                root,
                f"{INDEX} is missing: GET / answers 404 (the API and /ws work)",
            )
        log.info(
            "event=static_files_loaded root=%s files=%d bytes=%d",
            root,
            len(assets),
            sum(len(a.body) for a in assets.values()),
        )
        return assets
