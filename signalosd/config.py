"""Typed settings: defaults < TOML file < SIGNALOS_* environment < command-line flags.

Under systemd, `$STATE_DIRECTORY` (StateDirectory=) replaces the default state_dir,
`$RUNTIME_DIRECTORY/signalosd.sock` (RuntimeDirectory=) the default control_socket and
`$CONFIGURATION_DIRECTORY/signalosd.toml` (ConfigurationDirectory=) the default config file;
anything set explicitly still wins.

Loading is a separate step from the Settings class so that tests and `--check-config` can
validate a file without starting anything, and so that every error names the key, the source
it came from and what is wrong, instead of a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from signalosd.models.origin import parse_origin

CONFIG_FILE_NAME = "signalosd.toml"
DEFAULT_CONFIG_PATH = Path("/etc/signalos") / CONFIG_FILE_NAME
ENV_PREFIX = "SIGNALOS_"
CONTROL_SOCKET_NAME = "signalosd.sock"
CONTROL_SOCKET_OFF = "off"


class Settings(BaseModel):
    """Every setting of signalosd. config/signalosd.example.toml must list each one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8787, ge=0, le=65535)
    state_dir: Path = Path("/var/lib/signalos")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "text", "json", "journal"] = "auto"
    max_body_bytes: int = Field(1_048_576, ge=1024, le=16_777_216)
    ws_max_message_bytes: int = Field(1_048_576, ge=1024, le=16_777_216)
    ws_heartbeat_s: float = Field(30.0, gt=0)
    ws_auth_timeout_s: float = Field(5.0, gt=0)
    # The front door (listeners.py, guard.py): a deadline and a cap for clients without a token.
    http_header_timeout_s: float = Field(10.0, gt=0, le=3600)
    max_unauthenticated_connections: int = Field(256, ge=1, le=100_000)
    ws_queue_max: int = Field(1000, ge=10)
    ws_close_timeout_s: float = Field(2.0, gt=0)
    shutdown_timeout_s: float = Field(10.0, gt=0)
    event_retention_days: float = Field(30.0, gt=0)
    maintenance_interval_s: float = Field(3600.0, gt=0)
    open_trade_ttl_s: float = Field(30.0, gt=0)
    command_ttl_s: float = Field(3600.0, gt=0)
    command_expiry_grace_s: float = Field(10.0, ge=0, le=3600)
    idempotency_ttl_s: float = Field(86400.0, gt=0)
    command_wait_max_s: float = Field(60.0, gt=0)
    token_touch_interval_s: float = Field(60.0, ge=0)
    external_poll_interval_s: float = Field(0.5, gt=0, le=60)
    ack_timeout_s: float = Field(5.0, gt=0)
    ack_backoff_max_s: float = Field(60.0, gt=0)
    expiry_sweep_interval_s: float = Field(1.0, gt=0)
    status_event_interval_s: float = Field(5.0, ge=0)
    agent_batch_max: int = Field(1000, ge=1, le=100_000)
    command_retention_days: float = Field(30.0, gt=0)
    trade_retention_days: float = Field(365.0, gt=0)
    # Reads and housekeeping off the emergency stop's path (store/sqlite/db.py, event_log.py).
    scan_max_rows: int = Field(10_000, ge=1, le=1_000_000)
    heavy_reads_per_token: int = Field(2, ge=1, le=64)
    heavy_read_rate_per_token: float = Field(50.0, gt=0, le=100_000)
    wal_checkpoint_interval_s: float = Field(1.0, gt=0, le=3600)
    maintenance_chunk_rows: int = Field(500, ge=1, le=100_000)
    control_socket: str = ""
    control_socket_group: str = Field("signalos", min_length=1)
    local_account: str = Field("default", min_length=1)
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the TCP listener speaks HTTPS
    tls_key: str = ""
    # The dashboard (signalosd/web): browsers of other origins let in (cors.py), the --dev panel.
    allowed_origins: tuple[str, ...] = ()
    dev_mode: bool = False
    # The equity chart's time series (account_history.py): one row per account per interval.
    account_history_interval_s: float = Field(60.0, ge=1, le=86400)
    account_history_retention_days: float = Field(90.0, gt=0)
    # The risk guard (docs/risk.md): its timer, and how old account data may get with trades open.
    risk_check_interval_s: float = Field(1.0, gt=0, le=60)
    risk_stale_after_s: float = Field(30.0, gt=0, le=86400)
    # Outgoing webhooks (signalosd/alerts, docs/alerts.md): each attempt's deadline, the retry
    # schedule (exponential from first to max, half jitter) and how long one alert is retried
    # before it is given up as `webhook_failed`; how many webhooks may exist.
    webhook_timeout_s: float = Field(5.0, gt=0, le=300)
    webhook_retry_first_s: float = Field(1.0, gt=0, le=3600)
    webhook_retry_max_s: float = Field(60.0, gt=0, le=86400)
    webhook_retry_for_s: float = Field(600.0, ge=0, le=7 * 86400)
    webhook_max: int = Field(50, ge=0, le=1000)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        """`scheme://host[:port]` each, normalised (lower case, no default port) so that a
        request's Origin compares as text; an environment variable lists them with commas."""
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        if not isinstance(value, list | tuple):
            return value  # pydantic names the type error
        out = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError("each origin must be a string like https://desk.example.com")
            origin = parse_origin(item)
            if origin is None:
                raise ValueError(
                    f"{item!r} is not an origin: write scheme://host[:port] with scheme http or "
                    "https and nothing after the host (no path, not even a trailing /)"
                )
            out.append(origin)
        return tuple(out)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "signalos.db"

    @property
    def admin_token_path(self) -> Path:
        return self.state_dir / "admin.token"

    @property
    def control_socket_path(self) -> Path | None:
        """The local control socket: None when `control_socket = "off"`."""
        if self.control_socket == CONTROL_SOCKET_OFF:
            return None
        if not self.control_socket:
            return self.state_dir / CONTROL_SOCKET_NAME
        return Path(self.control_socket)


class ConfigError(Exception):
    """A setting is missing, unknown or invalid; the message says which and where from."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check --config") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable by this user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    fields = Settings.model_fields
    out: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower()
            if key in fields:  # SIGNALOS_URL, SIGNALOS_TOKEN… belong to the CLI
                out[key] = value
    return out


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the four layers and validate them, naming the source of any bad key."""
    env = os.environ if env is None else env
    sources: dict[str, str] = {}
    merged: dict[str, Any] = {}

    path = config_path
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    if path is None and env.get("CONFIGURATION_DIRECTORY"):
        # systemd's ConfigurationDirectory= (the first one when several are listed).
        candidate = Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / CONFIG_FILE_NAME
        if candidate.exists():
            path = candidate
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        for key, value in _read_toml(path).items():
            merged[key] = value
            sources[key] = f"config file {path}"
    for key, value in _from_env(env).items():
        merged[key] = value
        sources[key] = f"environment variable {ENV_PREFIX}{key.upper()}"
    for key, value in (flags or {}).items():
        if value is not None:
            merged[key] = value
            sources[key] = f"flag --{key.replace('_', '-')}"
    if "state_dir" not in merged and env.get("STATE_DIRECTORY"):
        # Under systemd with StateDirectory=: below every explicit layer, above the default.
        merged["state_dir"] = env["STATE_DIRECTORY"].split(":")[0]
        sources["state_dir"] = "environment variable STATE_DIRECTORY (systemd StateDirectory=)"
    if "control_socket" not in merged and env.get("RUNTIME_DIRECTORY"):
        # Under systemd with RuntimeDirectory=: the socket goes there (/run/signalos).
        runtime = Path(env["RUNTIME_DIRECTORY"].split(":")[0])
        merged["control_socket"] = str(runtime / CONTROL_SOCKET_NAME)
        sources["control_socket"] = (
            "environment variable RUNTIME_DIRECTORY (systemd RuntimeDirectory=)"
        )

    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            where = sources.get(str(err["loc"][0]) if err["loc"] else "", "settings")
            if err["type"] == "extra_forbidden":
                known = ", ".join(Settings.model_fields)
                lines.append(f"{where}: unknown setting '{key}' (known settings: {known})")
            else:
                lines.append(f"{where}: setting '{key}': {err['msg']} (got {err['input']!r})")
        raise ConfigError("; ".join(lines)) from None
