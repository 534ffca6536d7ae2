"""Who is at the other end of the local control socket, by the kernel's peer credentials.

A request that came through the unix socket without an `Authorization` header is authorised
by SO_PEERCRED: root and members of `control_socket_group` (primary or supplementary group,
looked up on every request, so `usermod -aG` takes effect at the next login without a restart)
act as `operator` on `local_account`; everyone else gets 401. When that group does not exist,
access fails closed: only root and the daemon's own uid are let in (never the daemon's primary
group, whose members were never meant to be operators), and control_socket.bind makes the
socket 0600 as well.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from signalosd import keys
from signalosd.auth.tokens import LOCAL_TOKEN_PREFIX, Principal, unauthorized
from signalosd.models import Role

log = logging.getLogger("signalosd")
_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer(request: web.Request) -> Peer | None:
    """The connecting process's credentials, or None if the request did not come through a
    unix socket (TCP, or a test client without a transport)."""
    transport = request.transport
    sock: Any = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(pid, uid, gid)


def socket_gid(name: str) -> int | None:
    """The gid of `control_socket_group`, or None when no such group exists."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid:{gid}"


def _user(uid: int) -> tuple[str, int | None]:
    """(user name, primary gid) from the password database; ("uid:N", None) if unknown."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return f"uid:{uid}", None
    return entry.pw_name, entry.pw_gid


def allowed(cred: Peer, gid: int | None) -> bool:
    """Root, the daemon's own uid, or a member of group `gid` (the process's gid, the user's
    primary group, or a supplementary group in the group database). With no group (`None`:
    the configured one does not exist) nobody else."""
    if cred.uid in (0, os.geteuid()):
        return True
    if gid is None:
        return False
    if cred.gid == gid:
        return True
    name, primary = _user(cred.uid)
    if primary == gid:
        return True
    try:
        return name in grp.getgrgid(gid).gr_mem
    except KeyError:
        return False


def _refusal(user: str, uid: int, group: str, exists: bool) -> str:
    token = "or send 'Authorization: Bearer <token>'"
    if not exists:
        return (
            f"local user {user} (uid {uid}) may not use the control socket: its group "
            f"{group} (control_socket_group) does not exist, so only root and the daemon's "
            f"own user may; an administrator can create it ('groupadd {group}', then "
            f"'usermod -aG {group} {user}' and restart signalosd) or set control_socket_group "
            f"to an existing group; {token}"
        )
    return (
        f"local user {user} (uid {uid}) may not use the control socket: only root and "
        f"members of group {group} may (an administrator can run "
        f"'usermod -aG {group} {user}', effective at the next login); {token}"
    )


async def verify(request: web.Request, cred: Peer) -> Principal:
    """The local user as an operator on `local_account`, or 401."""
    settings = request.app[keys.SETTINGS]
    group = settings.control_socket_group
    gid = socket_gid(group)
    user, _primary = _user(cred.uid)
    if not allowed(cred, gid):
        raise unauthorized(_refusal(user, cred.uid, group, gid is not None))
    account = settings.local_account
    row = await request.app[keys.DB].read(lambda tx: tx.account_by_name(account))
    if row is None:
        raise unauthorized(
            f"local_account {account!r} does not exist; create it "
            f"('signalosd token create --account {account}') or set local_account"
        )
    return Principal(
        f"{LOCAL_TOKEN_PREFIX}uid:{cred.uid}", int(row["id"]), account, Role.OPERATOR, user
    )
