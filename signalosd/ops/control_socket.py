"""The local control socket: bound, chmod-ed and chown-ed here, served by listeners.GuardedSite.

aiohttp's UnixSite cannot set the socket's mode or group (DESIGN §7), so the socket is made by
hand: remove a stale file (only if nothing answers on it), bind, chmod 0660, chown to
`control_socket_group` (kept as the daemon's own group, with a warning, if it cannot be given),
then listen. When that group does not exist the socket is 0600 instead (with a warning naming
the fix): no group to let in, so nobody but root and the daemon's own user can connect.
Nobody can connect before listen(), so the mode is right before the first client arrives.
Who may then act is decided per request in auth/local.py.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from pathlib import Path

from aiohttp import web

from signalosd.auth.local import group_name, socket_gid
from signalosd.config import Settings

log = logging.getLogger("signalosd")
MODE = 0o660
MODE_NO_GROUP = 0o600  # control_socket_group does not exist: fail closed at the file too
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_PATH_BYTES = 107


class ControlSocketError(OSError):
    """The socket cannot be made; the message says why and what to do."""


def _remove_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketError(
            errno.EEXIST, f"{path} exists and is not a socket; remove it or set control_socket"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        log.info("event=control_socket_stale_removed path=%s", path)
        return
    except OSError:
        pass  # cannot tell (e.g. no permission): leave it, bind() reports the problem
    finally:
        probe.close()
    raise ControlSocketError(
        errno.EADDRINUSE, f"another process answers on {path}; is another signalosd running?"
    )


def bind(path: Path, group: str) -> socket.socket:
    """A listening AF_UNIX socket at `path`: mode 0660 and group `group` where possible; mode
    0600 (root and the daemon's own user only) when that group does not exist."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ControlSocketError(
            errno.ENAMETOOLONG,
            f"control socket path {path} is longer than {MAX_PATH_BYTES} bytes; "
            "set a shorter control_socket",
        )
    _remove_stale(path)
    gid = socket_gid(group)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        sock.bind(str(path))
        bound = True
        os.chmod(path, MODE if gid is not None else MODE_NO_GROUP)
        if gid is None:
            log.warning(
                "event=control_socket_group_missing group=%s mode=%04o hint=%r",
                group,
                MODE_NO_GROUP,
                f"only root and the daemon's own user may use the control socket until the "
                f"group exists: create it (groupadd {group}) and restart, or set "
                "control_socket_group to an existing group",
            )
        elif os.stat(path).st_gid != gid:  # already right when it is the daemon's own group
            _chown(path, group, gid)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        if bound:
            remove(path)
        raise
    return sock


def _chown(path: Path, group: str, gid: int) -> None:
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        log.warning(
            "event=control_socket_group_denied group=%s kept=%s hint=%r",
            group,
            group_name(os.stat(path).st_gid),
            "the daemon's user must be root or a member of that group; under systemd "
            "the unit's SystemCallFilter refuses chown: set Group= in a drop-in instead",
        )


def remove(path: Path) -> None:
    """Remove the socket file on shutdown (only if it is still a socket)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


async def start(runner: web.AppRunner, settings: Settings) -> Path | None:
    """Serve `runner` on the control socket; the socket's path, or None when it is off (or the
    default path is too long for a unix socket: then a warning, not a failure)."""
    path = settings.control_socket_path
    if path is None:
        log.info("event=control_socket_disabled")
        return None
    if not settings.control_socket and len(os.fsencode(path)) > MAX_PATH_BYTES:
        log.warning(
            "event=control_socket_skipped path=%s reason=%r hint=%r",
            path,
            f"longer than {MAX_PATH_BYTES} bytes",
            "set control_socket to a shorter path",
        )
        return None
    sock = bind(path, settings.control_socket_group)
    try:
        # The same front door as TCP (header deadline, unauthenticated cap, parser errors);
        # imported here so that scripts/ready.py can read MAX_PATH_BYTES without the server.
        from signalosd.ops.listeners import GuardedSite

        await GuardedSite(runner, sock=sock).start()
    except BaseException:
        sock.close()
        remove(path)
        raise
    return path


def log_listening(path: Path) -> None:
    st = path.stat()
    log.info(
        "event=listening socket=%s mode=%04o group=%s",
        path,
        stat.S_IMODE(st.st_mode),
        group_name(st.st_gid),
    )
