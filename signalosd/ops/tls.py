"""The daemon's own TLS: a server context from `tls_cert` and `tls_key`, checked before start.

For a remote agent or dashboard without a reverse proxy in front (docs/operations.md, "TLS and
remote access"). The files are read once, at start: a renewed certificate needs a restart.
Every problem is a configuration error naming the file and what to do, raised before the
database is opened or a port is bound, and by `--check-config`.
"""

from __future__ import annotations

import ipaddress
import ssl

from signalosd.config import ConfigError, Settings


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    # load_cert_chain would otherwise ask on the terminal, which a service does not have.
    raise _EncryptedKey


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the TCP listener, or None for plain HTTP (both settings empty)."""
    cert, key = settings.tls_cert, settings.tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise ConfigError(
            f"{given} is set but {missing} is not: set both (the certificate chain and its "
            "private key, PEM files) or neither"
        )
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            raise ConfigError(f"{name} {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(
                f"{name} {path} is not readable by this user ({exc.strerror}): make it readable "
                "by the daemon's user, or pass it with LoadCredential= (docs/operations.md)"
            ) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            f"tls_key {key} is encrypted with a passphrase, which a service cannot type: "
            "store it unencrypted, readable only by the daemon (or pass it with LoadCredential=)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tls_cert {cert} and tls_key {key} are not a PEM certificate chain and its "
            f"matching private key ({getattr(exc, 'reason', None) or exc})"
        ) from None
    return context


def in_clear_beyond_loopback(host: str, tls: ssl.SSLContext | None) -> bool:
    """True when tokens would cross a network unencrypted: plain HTTP on an address other
    than loopback (a name other than localhost counts as not loopback)."""
    if tls is not None or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True
