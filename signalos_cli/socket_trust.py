"""Whether a unix socket may be the daemon's, before the CLI sends it anything (a token least of
all).

Over the control socket the CLI sends a configured token and believes the reply. Anyone who can
write to a directory the CLI looks in (a shared checkout's `var/`, a path in SIGNALOS_SOCKET)
could plant a socket there that collects the token and answers "halted" to an emergency stop.
So a socket is used only when the socket file, and the symlink it is reached through if any,
are owned by root, the current user or the service user (`service_user`, default `signalos`,
the user signalosd runs as under systemd), and no directory on the way to them can be changed
by anyone else (each owned by one of those users, and not writable by group or others unless
sticky, like /tmp). After connecting, the process that listens must run as one of those users too
(SO_PEERCRED, Linux): that closes the window between the check and connect().
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
from pathlib import Path

DEFAULT_SERVICE_USER = "signalos"
_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def trusted_uids(service_user: str) -> set[int]:
    """root, the current user and the service user (when that user exists)."""
    import pwd

    uids = {0, os.geteuid()}
    with contextlib.suppress(KeyError):  # no such user here: root and you only
        uids.add(pwd.getpwnam(service_user).pw_uid)
    return uids


def _whom(service_user: str) -> str:
    return f"root, you ({_user_name(os.geteuid())}) or the service user {service_user}"


def _owner(what: str, uid: int, service_user: str) -> str:
    return f"{what} is owned by {_user_name(uid)} (uid {uid}), not by {_whom(service_user)}"


def _directory_problem(directory: Path, trusted: set[int], service_user: str) -> str | None:
    try:
        st = os.stat(directory)
    except OSError as exc:
        return f"its directory {directory} cannot be checked ({exc.strerror})"
    if st.st_uid not in trusted:
        return _owner(f"its directory {directory}", st.st_uid, service_user)
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return f"its directory {directory} may be changed by other users (mode {st.st_mode:o})"
    return None


def problem(path: Path, service_user: str = DEFAULT_SERVICE_USER) -> str | None:
    """Why the socket at `path` may not be the daemon's, or None when it may be used."""
    trusted = trusted_uids(service_user)
    try:
        link = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be checked ({exc.strerror})"
    places = [path]
    if stat.S_ISLNK(link.st_mode):
        if link.st_uid not in trusted:
            return _owner(f"the link {path}", link.st_uid, service_user)
        places.append(Path(os.path.realpath(path)))
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path} cannot be checked ({exc.strerror})"
    if not stat.S_ISSOCK(st.st_mode):
        return f"{path} is not a socket"
    if st.st_uid not in trusted:
        return _owner(str(path), st.st_uid, service_user)
    for place in places:
        for directory in place.absolute().parents:
            found = _directory_problem(directory, trusted, service_user)
            if found is not None:
                return found
    return None


def peer_problem(sock: socket.socket, service_user: str = DEFAULT_SERVICE_USER) -> str | None:
    """Why the process listening at the other end of a connected unix socket may not be the
    daemon, or None (also where the kernel cannot tell: SO_PEERCRED is Linux's)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    _pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size))
    if uid in trusted_uids(service_user):
        return None
    return (
        f"the process listening on it runs as {_user_name(uid)} (uid {uid}), not as "
        f"{_whom(service_user)}"
    )
