"""`make run`'s readiness probe: exit 0 once *our* signalosd answers, 1 otherwise.

Something else answering /readyz on the port (another daemon, a leftover `make run`) must not
count: our daemon is the one behind `<state>/signalosd.sock`, or the one that accepts the admin
token it wrote to `<state>/admin.token`. Usage: ready.py STATE_DIR URL
"""

from __future__ import annotations

import http.client
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path

from signalos_cli.client import UnixHTTPConnection


def _socket_ready(path: Path) -> bool:
    try:
        if not stat.S_ISSOCK(path.stat().st_mode):
            return False
        conn = UnixHTTPConnection(str(path), timeout=1)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _token_accepted(url: str, token_file: Path) -> bool:
    try:
        token = token_file.read_text().strip()
        request = urllib.request.Request(
            f"{url}/api/system/health", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=1) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError, http.client.HTTPException):
        return False


def main(state: Path, url: str) -> int:
    ours = _socket_ready(state / "signalosd.sock") or _token_accepted(url, state / "admin.token")
    return 0 if ours else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
