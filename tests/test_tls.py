"""The daemon's own TLS (`tls_cert` + `tls_key`): HTTPS and wss:// on its TCP port for the CLI,
`tail` and the agent, with certificates from a test CA (trustme); and every way the two
settings can be wrong is a configuration error (exit 2) before anything starts."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from signalosd.ops.tls import in_clear_beyond_loopback
from tests.daemon_process import Daemon, clean_env, daemon_pool, run_cli
from tests.test_e2e_process import make_agent_token, start_agent, stop_agent

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """The daemon's certificate chain and key for 127.0.0.1, and the CA a client trusts."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"cert": tmp_path / "chain.pem", "key": tmp_path / "key.pem", "ca": tmp_path / "ca.pem"}
    cert.private_key_pem.write_to_path(str(files["key"]))
    files["cert"].write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(files["ca"]))
    return files


@pytest.fixture
def daemon(tmp_path: Path, pem: dict[str, Path]) -> Iterator[Daemon]:
    env = {"SIGNALOS_TLS_CERT": str(pem["cert"]), "SIGNALOS_TLS_KEY": str(pem["key"])}
    with daemon_pool() as start:
        yield start(tmp_path / "state", env=env)


def signalos(d: Daemon, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI against the daemon `d`, configured by `env` alone, without retries."""
    return run_cli(d.state_dir.parent, "--retries", "0", *args, **env)


def check_config(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalosd", "--check-config"],
        env=clean_env(**env) | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_daemon_speaks_https_and_the_cli_trusts_its_ca(
    daemon: Daemon, pem: dict[str, Path]
) -> None:
    assert daemon.url.startswith("https://127.0.0.1:")
    done = signalos(
        daemon,
        "--json",
        "status",
        SIGNALOS_URL=daemon.url,
        SIGNALOS_TOKEN=daemon.admin,
        SSL_CERT_FILE=str(pem["ca"]),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"]["mode"] == "running"


def test_tail_follows_over_wss(daemon: Daemon, pem: dict[str, Path]) -> None:
    env = {"SIGNALOS_URL": daemon.url, "SIGNALOS_TOKEN": daemon.admin}
    env["SSL_CERT_FILE"] = str(pem["ca"])
    assert signalos(daemon, "pause", "--reason", "tls", **env).returncode == 0
    done = signalos(
        daemon, "--json", "tail", "-n", "1", "--type", "trading_paused", "--no-follow", **env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["reason"] == "tls"
    assert "wss://127.0.0.1:" in done.stderr


def test_the_agent_connects_over_wss(daemon: Daemon, pem: dict[str, Path], tmp_path: Path) -> None:
    token = make_agent_token(daemon.state_dir, tmp_path / "agent.token")
    agent = start_agent(daemon.url, token, tmp_path / "agent", SSL_CERT_FILE=str(pem["ca"]))
    try:
        daemon.wait_for_line("event=agent_connected account=default")
    finally:
        assert stop_agent(agent) == 0


def test_a_client_that_does_not_trust_the_ca_is_told_what_to_do(daemon: Daemon) -> None:
    done = signalos(daemon, "status", SIGNALOS_URL=daemon.url, SIGNALOS_TOKEN=daemon.admin)
    assert done.returncode == 3, done.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr and "SSL_CERT_FILE" in done.stderr
    done = signalos(
        daemon, "tail", "--no-follow", SIGNALOS_URL=daemon.url, SIGNALOS_TOKEN=daemon.admin
    )
    assert done.returncode == 3, done.stderr
    assert "SSL_CERT_FILE" in done.stderr


def test_plain_http_to_the_tls_port_gets_no_api(daemon: Daemon) -> None:
    done = signalos(
        daemon,
        "status",
        SIGNALOS_URL=daemon.url.replace("https", "http"),
        SIGNALOS_TOKEN=daemon.admin,
    )
    assert done.returncode != 0
    assert '"mode"' not in done.stdout


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_only_tls1_2_and_later_are_offered(daemon: Daemon, pem: dict[str, Path]) -> None:
    import socket

    client = ssl.create_default_context(cafile=str(pem["ca"]))
    client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        client.wrap_socket(raw, server_hostname="127.0.0.1").close()


# ---- configuration errors -------------------------------------------------------------------


def test_a_good_pair_passes_check_config(pem: dict[str, Path]) -> None:
    done = check_config(SIGNALOS_TLS_CERT=str(pem["cert"]), SIGNALOS_TLS_KEY=str(pem["key"]))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tls_cert"] == str(pem["cert"])


@pytest.mark.parametrize("given", ["cert", "key"])
def test_one_without_the_other_is_exit_2(pem: dict[str, Path], given: str) -> None:
    done = check_config(**{f"SIGNALOS_TLS_{given.upper()}": str(pem[given])})
    assert done.returncode == 2, done.stderr
    assert f"tls_{given} is set but" in done.stderr and "set both" in done.stderr


def test_a_missing_file_is_exit_2(pem: dict[str, Path], tmp_path: Path) -> None:
    gone = tmp_path / "nope.pem"
    done = check_config(SIGNALOS_TLS_CERT=str(pem["cert"]), SIGNALOS_TLS_KEY=str(gone))
    assert done.returncode == 2, done.stderr
    assert f"{gone} does not exist" in done.stderr


def test_a_key_of_another_certificate_is_exit_2(
    ca: trustme.CA, pem: dict[str, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other-key.pem"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    done = check_config(SIGNALOS_TLS_CERT=str(pem["cert"]), SIGNALOS_TLS_KEY=str(other))
    assert done.returncode == 2, done.stderr
    assert "not a PEM certificate chain and its matching private key" in done.stderr


def test_an_encrypted_key_is_exit_2_without_prompting(pem: dict[str, Path], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem["key"].read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    done = check_config(SIGNALOS_TLS_CERT=str(pem["cert"]), SIGNALOS_TLS_KEY=str(locked))
    assert done.returncode == 2, done.stderr
    assert "encrypted with a passphrase" in done.stderr


def test_a_bad_pair_stops_the_daemon_before_it_listens(
    pem: dict[str, Path], tmp_path: Path
) -> None:
    env = {"SIGNALOS_TLS_CERT": str(pem["key"]), "SIGNALOS_TLS_KEY": str(pem["key"])}
    with daemon_pool() as start:
        d = start(tmp_path / "state", env=env, wait=False)
        assert d.wait_exit() == 2
    assert "configuration error" in d.output and "event=listening" not in d.output
    assert not (tmp_path / "state" / "signalos.db").exists()


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("192.168.1.20", False, True),
        ("desk.example.com", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_plain_http_beyond_loopback_is_flagged(host: str, tls: bool, warned: bool) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) if tls else None
    assert in_clear_beyond_loopback(host, context) is warned
