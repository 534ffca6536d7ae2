"""`make run`'s readiness probe: exit 0 once *our* signalosd answers, 1 otherwise.

Something else answering on the port (another daemon, a leftover `make run`, any web server)
must not count: our daemon is the one behind its control socket (`<state>/signalosd.sock`, or
$SIGNALOS_CONTROL_SOCKET). Only when it has none (`off`, or a path too long for a unix socket)
is the daemon that accepts the admin token it wrote to `<state>/admin.token` taken for ours.
Usage: ready.py STATE_DIR URL
"""

from __future__ import annotations

import http.client
import os
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path

from signalos_cli.client import UnixHTTPConnection
from signalosd.ops.control_socket import MAX_PATH_BYTES


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
    configured = os.environ.get("SIGNALOS_CONTROL_SOCKET", "")
    sock = Path(configured) if configured and configured != "off" else state / "signalosd.sock"
    if configured != "off" and len(os.fsencode(sock)) <= MAX_PATH_BYTES:
        ours = _socket_ready(sock)  # the daemon will have it: nothing else proves as much
    else:  # no socket (off, or a path too long for one): the admin token must be accepted
        ours = _token_accepted(url, state / "admin.token")
    return 0 if ours else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
