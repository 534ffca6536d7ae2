"""Where the CLI's settings come from: flag > environment > config file > default.

Config files (TOML, keys `url`, `token_file`, `timeout`, `retries`, `color`, `service_user`):
the system file `/etc/signalos/cli.toml`, then the user's `$XDG_CONFIG_HOME/signalos/cli.toml`
(default `~/.config`), the user's keys winning. A relative `token_file` is relative to its file.

With nothing configured the CLI talks to the daemon `make run` starts, with the admin token it
writes to `./var/admin.token` (read only for that default URL: a token for the local daemon is
never sent to another host). Every error names the source of the bad value.

The local control socket: `--socket PATH` / SIGNALOS_SOCKET; otherwise, when no URL is
configured (no --url, SIGNALOS_URL or config `url`), the first of DEFAULT_SOCKETS that exists.
Over the socket the daemon knows the user by uid, so no token is needed (a configured token is
still sent and wins; the implicit ./var/admin.token is not), for the WebSocket commands too.
A socket is used only when socket_trust finds it owned by root, the current user or
`service_user` (SIGNALOS_SERVICE_USER; default `signalos`): a planted one is never sent a token.
An explicit one that is not is an error; a default one is skipped with a warning on stderr (the
scan goes on, then the default URL), so a planted file cannot stop an emergency stop either.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from signalos_cli.errors import SettingsError
from signalos_cli.socket_trust import DEFAULT_SERVICE_USER
from signalos_cli.socket_trust import problem as socket_problem

DEFAULT_URL = "http://127.0.0.1:8787"
# The daemon's local control socket, tried in this order when no URL is configured: the
# systemd service's (RuntimeDirectory=signalos), then `make run`'s (relative to the cwd).
DEFAULT_SOCKETS = (Path("/run/signalos/signalosd.sock"), Path("var/signalosd.sock"))
LOCAL_TOKEN_FILE = Path("var/admin.token")  # `make run` writes it; relative to the cwd
SYSTEM_CONFIG = Path("/etc/signalos/cli.toml")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
DEFAULT_SOURCE = "cli"
CONFIG_KEYS = ("url", "token_file", "timeout", "retries", "color", "service_user")
LOCAL_TOKEN_ORIGIN = "the local daemon's ./var/admin.token"
NO_TOKEN_HELP = (
    "no token: pass --token-file FILE, set SIGNALOS_TOKEN_FILE or SIGNALOS_TOKEN, or put "
    "token_file in ~/.config/signalos/cli.toml. signalosd writes an admin token to "
    "<state-dir>/admin.token on first start (make run: ./var/admin.token); "
    "`signalosd token create --account NAME --role operator` makes an operator token"
)


class Settings:
    """The resolved settings (a plain class: a dataclass costs start-up time)."""

    __slots__ = (
        "account",
        "color",
        "retries",
        "service_user",
        "socket",
        "source",
        "timeout",
        "token_file",
        "token_inline",
        "token_origin",
        "unreachable_socket",
        "url",
    )

    def __init__(
        self,
        url: str,
        timeout: float,
        retries: int,
        color: bool,
        source: str,
        account: str | None,
        token_file: Path | None,
        token_inline: str | None,
        token_origin: str,
        socket: Path | None = None,
        unreachable_socket: Path | None = None,
        service_user: str = DEFAULT_SERVICE_USER,
    ) -> None:
        self.url = url
        self.socket = socket  # the local control socket to use instead of the URL
        # a default socket this user may not even look at (its directory is closed to them)
        self.unreachable_socket = unreachable_socket
        # besides root and the current user, who may own a control socket the CLI trusts
        self.service_user = service_user
        self.timeout = timeout
        self.retries = retries
        self.color = color
        self.source = source
        self.account = account
        self.token_file = token_file  # the file to read the token from, if not inline
        self.token_inline = token_inline  # SIGNALOS_TOKEN
        self.token_origin = token_origin  # where the token comes from, for messages

    def explicit_token(self) -> bool:
        """A token was configured (not just the local daemon's ./var/admin.token)."""
        return self.token_inline is not None or (
            self.token_file is not None and self.token_origin != LOCAL_TOKEN_ORIGIN
        )

    def token(self) -> str:
        """The bearer token (read on first need, so `--help` works without one)."""
        if self.token_inline is not None:
            return self.token_inline
        if self.token_file is None:
            if self.unreachable_socket is not None:
                raise SettingsError(_closed_socket_help(self.unreachable_socket))
            raise SettingsError(NO_TOKEN_HELP)
        try:
            value = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"cannot read the token file {self.token_file} ({self.token_origin}): "
                f"{exc.strerror}"
            ) from None
        if not value:
            raise SettingsError(f"the token file {self.token_file} ({self.token_origin}) is empty")
        return value


def user_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "signalos" / "cli.toml"


def load_config(paths: list[Path]) -> dict[str, tuple[Any, str, Path]]:
    """{key: (value, source description, file)} from the files that exist, later files
    winning."""
    merged: dict[str, tuple[Any, str, Path]] = {}
    for path in paths:
        try:
            if not path.is_file():
                continue
        except OSError as exc:  # a directory on the way is closed to this user
            raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from None
        import tomllib  # only when a file exists: it costs start-up time

        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            where = f"config file {path}"
            if key not in CONFIG_KEYS:
                raise SettingsError(
                    f"{where}: unknown key '{key}' (known: {', '.join(CONFIG_KEYS)})"
                )
            merged[key] = (_check(key, value, where), where, path)
    return merged


def _check(key: str, value: Any, where: str) -> Any:
    """A config file's value, checked even when a flag or variable overrides it."""
    if key == "url":
        return _url(value, where)
    if key == "timeout":
        return _number(value, where, key)
    if key == "retries":
        return _count(value, where, key)
    if key == "color" and not isinstance(value, bool):
        raise SettingsError(f"{where}: color must be true or false (got {value!r})")
    if key == "token_file" and (not isinstance(value, str) or not value):
        raise SettingsError(f"{where}: token_file must be a path (got {value!r})")
    if key == "service_user" and (not isinstance(value, str) or not value.strip()):
        raise SettingsError(f"{where}: service_user must be a user name (got {value!r})")
    return value


def _number(value: Any, where: str, name: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise SettingsError(f"{where}: {name} must be a number of seconds > 0 (got {value!r})")
    return number


def _count(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool):
        value = None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if count < 0 or (isinstance(value, float) and value != count):
        raise SettingsError(f"{where}: {name} must be a whole number >= 0 (got {value!r})")
    return count


def _url(value: Any, where: str) -> str:
    text = str(value).strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{where}: the daemon URL must look like http://HOST:PORT or https://HOST "
            f"(got {value!r})"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise SettingsError(f"{where}: bad port in {value!r}") from None
    return text.rstrip("/")


def resolve(flags: Mapping[str, Any], env: Mapping[str, str], config_paths: list[Path]) -> Settings:
    """Merge the layers. `flags` holds the global options (None when not given)."""
    config = load_config(config_paths)

    def pick(flag: str, var: str | None, key: str | None) -> tuple[Any, str] | None:
        if flags.get(flag) is not None:
            return flags[flag], f"flag --{flag.replace('_', '-')}"
        if var is not None and env.get(var, "").strip():
            return env[var].strip(), f"environment variable {var}"
        if key is not None and key in config:
            value, where, _ = config[key]
            return value, where
        return None

    got_url = pick("url", "SIGNALOS_URL", "url")
    url = _url(got_url[0], got_url[1]) if got_url else DEFAULT_URL
    got = pick("service_user", "SIGNALOS_SERVICE_USER", "service_user")
    service_user = str(got[0]).strip() if got else DEFAULT_SERVICE_USER
    sock, closed = _socket(flags, env, got_url, service_user)
    got = pick("timeout", "SIGNALOS_TIMEOUT", "timeout")
    timeout = _number(got[0], got[1], "timeout") if got else DEFAULT_TIMEOUT_S
    got = pick("retries", "SIGNALOS_RETRIES", "retries")
    retries = _count(got[0], got[1], "retries") if got else DEFAULT_RETRIES
    got = pick("source", "SIGNALOS_SOURCE", None)
    source = _source(got[0], got[1]) if got else DEFAULT_SOURCE
    got = pick("account", "SIGNALOS_ACCOUNT", None)
    account = str(got[0]) if got else None

    color = bool(config["color"][0]) if "color" in config else True

    token_file, inline, origin = _token_source(flags, env, config, url)
    return Settings(
        url,
        timeout,
        retries,
        color,
        source,
        account,
        token_file,
        inline,
        origin,
        sock,
        closed,
        service_user,
    )


def _layer(where: str) -> int:
    return 0 if where.startswith("flag") else 1 if where.startswith("environment") else 2


def _socket(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    url: tuple[Any, str] | None,
    service_user: str,
) -> tuple[Path | None, Path | None]:
    """(The control socket to use, or None for the URL; a default socket closed to this user).
    An explicit socket beats a URL from a lower layer (flag > environment > config file); both
    as flags is a usage error, and so is an explicit socket the CLI may not trust."""
    explicit: tuple[Any, str] | None = None
    if flags.get("socket") is not None:
        explicit = flags["socket"], "flag --socket"
    elif env.get("SIGNALOS_SOCKET", "").strip():
        explicit = env["SIGNALOS_SOCKET"].strip(), "environment variable SIGNALOS_SOCKET"
    if explicit is not None:
        if url is not None and _layer(url[1]) < _layer(explicit[1]):
            return None, None
        if url is not None and _layer(url[1]) == _layer(explicit[1]):
            raise SettingsError(f"{url[1]} and {explicit[1]}: give one of them, not both")
        path = Path(str(explicit[0])).expanduser()
        # Not there (yet), or closed to this user: connect() says so, and sends nothing.
        why = socket_problem(path, service_user) if os.path.lexists(path) else None
        if why is not None:
            raise SettingsError(
                f"{explicit[1]} names {path}, which the CLI does not use: {why}, so it may not "
                "be signalosd and nothing was sent to it. If it is the daemon's socket, set "
                "service_user (SIGNALOS_SERVICE_USER) to the user signalosd runs as; or use "
                "--url with a token"
            )
        return path, None
    if url is not None:
        return None, None
    return _default_socket(service_user)


def _default_socket(service_user: str) -> tuple[Path | None, Path | None]:
    """The first of DEFAULT_SOCKETS that exists and may be trusted (one that may not is skipped
    with a warning); failing that, the first whose directory this user may not search (the
    service's /run/signalos is 0750, group signalos): there is a daemon there, just not for
    them."""
    import stat

    closed = None
    for path in DEFAULT_SOCKETS:
        try:
            if not stat.S_ISSOCK(path.stat().st_mode):
                continue
        except PermissionError:
            closed = closed or path
            continue
        except OSError:
            continue
        why = socket_problem(path, service_user)
        if why is None:
            return path, None
        print(
            f"Warning: not using the control socket {path}: {why}; it may not be signalosd, "
            "so nothing is sent to it (if it is, set service_user to the user signalosd runs "
            "as)",
            file=sys.stderr,
        )
    return None, closed


def _readable_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # ./var closed to this user: not their daemon's token
        return False


def _closed_socket_help(path: Path) -> str:
    import grp
    import pwd

    try:
        group = grp.getgrgid(path.parent.stat().st_gid).gr_name
    except (OSError, KeyError):
        group = "signalos"
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = f"uid:{os.getuid()}"
    return (
        f"no token, and the daemon's control socket {path} is closed to user {user}: only root "
        f"and members of the group {group} may use it (an administrator can run "
        f"'usermod -aG {group} {user}'; it takes effect at the next login). Or use a token: "
        + NO_TOKEN_HELP.removeprefix("no token: ")
    )


def _source(value: Any, where: str) -> str:
    text = str(value).strip().lower()
    if text == DEFAULT_SOURCE:
        return text
    from signalosd.models import Source  # the daemon's vocabulary; only for a non-default

    allowed = [s.value for s in Source]
    if text not in allowed:
        raise SettingsError(f"{where}: source must be one of {', '.join(allowed)} (got {value!r})")
    return text


def _token_source(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, tuple[Any, str, Path]],
    url: str,
) -> tuple[Path | None, str | None, str]:
    if flags.get("token_file") is not None:
        return Path(flags["token_file"]).expanduser(), None, "flag --token-file"
    if env.get("SIGNALOS_TOKEN_FILE", "").strip():
        path = Path(env["SIGNALOS_TOKEN_FILE"].strip()).expanduser()
        return path, None, "environment variable SIGNALOS_TOKEN_FILE"
    if env.get("SIGNALOS_TOKEN", "").strip():
        return None, env["SIGNALOS_TOKEN"].strip(), "environment variable SIGNALOS_TOKEN"
    if "token_file" in config:
        value, where, file = config["token_file"]
        path = Path(value).expanduser()
        return (path if path.is_absolute() else file.parent / path), None, where
    if url == DEFAULT_URL and _readable_file(LOCAL_TOKEN_FILE):
        return LOCAL_TOKEN_FILE, None, LOCAL_TOKEN_ORIGIN
    return None, None, "nowhere"
