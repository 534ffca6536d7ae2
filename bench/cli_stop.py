"""`signalos stop` as a whole process (start → reply → exit), against the floor of its stack.

Setup (not timed): the real daemon in a subprocess (`python -m signalosd`, port 0, a temporary
state dir, its bootstrap admin token). Measured, interleaved in one run (`--runs` rounds, the
order rotated each round, one untimed warm-up of each first), the wall time of a process that
sends `POST /api/trading/emergency-stop` and exits:

- `signalos`: `.venv/bin/signalos --url URL --token-file F stop --reason bench` (human output,
  exit 0; after the first run the account is already halted, which still succeeds with
  `changed: false`, so every run does the same work);
- `floor`: a 10-line click + `http.client` script doing the same POST, run by the same
  interpreter (written to a temp file here) — the floor of our stack;
- `curl`: the same POST with curl, if installed (informational).

Target (DESIGN §6): `ratio` = median signalos ÷ median floor **≤ 1.2**.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import HOST, PYTHON, emit, log, percentile, rnd

TARGET_RATIO = 1.2
BIN = Path(PYTHON).parent
_LISTENING = re.compile(r"event=listening url=(http://127\.0\.0\.1:\d+)")

FLOOR_SCRIPT = """\
import http.client, json, sys
import click
@click.command()
@click.option("--url", required=True)
@click.option("--token-file", required=True)
@click.option("--reason", default="")
def stop(url: str, token_file: str, reason: str) -> None:
    token = open(token_file).read().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(url.split("//", 1)[1], timeout=10)
    conn.request("POST", "/api/trading/emergency-stop", json.dumps({"reason": reason}), headers)
    resp = conn.getresponse()
    click.echo(json.loads(resp.read())["mode"])
    sys.exit(resp.status >= 300)
stop()
"""


def clean_env() -> dict[str, str]:
    """No stray SIGNALOS_* settings (every tool gets its url and token explicitly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALOS_")}
    env["NO_COLOR"] = "1"
    return env


def start_daemon(state_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    log_path = state_dir.parent / "signalosd.log"
    state_args = ["--state-dir", str(state_dir), "--log-level", "info"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [PYTHON, "-m", "signalosd", "--host", HOST, "--port", "0", *state_args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = _LISTENING.search(log_path.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"signalosd did not start:\n{log_path.read_text(errors='replace')}")


def check_signalos(signalos: Path, env: dict[str, str]) -> None:
    if not signalos.exists():
        raise SystemExit(f"cli_stop: {signalos} does not exist: install the package (make venv)")
    probe = subprocess.run(
        [str(signalos), "stop", "--help"], capture_output=True, env=env, timeout=30
    )
    if probe.returncode != 0 or b"--reason" not in probe.stdout:
        raise SystemExit(
            "cli_stop: `signalos stop --reason R` is not available yet "
            f"(exit {probe.returncode}): {probe.stderr.decode(errors='replace')[-400:]}"
        )


def timed(cmd: list[str], env: dict[str, str]) -> int:
    """Wall time of one whole process in ns; raises if it fails."""
    started = time.perf_counter_ns()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter_ns() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(cmd[0]).name} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace')[-400:]}"
        )
    return elapsed


def summary(ns: list[int]) -> dict[str, Any]:
    ms = [x / 1e6 for x in ns]
    return {
        "n": len(ms),
        "median_ms": rnd(percentile(ms, 50), 2),
        "p90_ms": rnd(percentile(ms, 90), 2),
        "min_ms": rnd(min(ms), 2),
        "mean_ms": rnd(sum(ms) / len(ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each tool")
    args = parser.parse_args()

    env = clean_env()
    signalos = BIN / "signalos"
    check_signalos(signalos, env)
    with tempfile.TemporaryDirectory(prefix="signalos-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        proc, url = start_daemon(state, env)
        try:
            token_file = state / "admin.token"
            floor_path = work / "floor_stop.py"
            floor_path.write_text(FLOOR_SCRIPT)
            headers = work / "curl.headers"  # the token stays out of argv
            headers.write_text(
                f"Authorization: Bearer {token_file.read_text().strip()}\n"
                "Content-Type: application/json\n"
            )
            headers.chmod(0o600)
            where = ["--url", url, "--token-file", str(token_file)]
            tools: dict[str, list[str]] = {
                "signalos": [str(signalos), *where, "stop", "--reason", "bench"],
                "floor": [PYTHON, str(floor_path), *where, "--reason", "bench"],
            }
            curl = shutil.which("curl")
            if curl:
                tools["curl"] = [curl, "-sS", "-f", "-o", "/dev/null", "-X", "POST"]
                tools["curl"] += ["-H", f"@{headers}", "--data", '{"reason":"bench"}']
                tools["curl"] += [f"{url}/api/trading/emergency-stop"]
            names = list(tools)
            log(f"daemon at {url}; warm-up, then {args.runs} interleaved runs of {names}")
            for name in names:
                timed(tools[name], env)
            samples: dict[str, list[int]] = {name: [] for name in names}
            for i in range(args.runs):
                order = names[i % len(names) :] + names[: i % len(names)]
                for name in order:
                    samples[name].append(timed(tools[name], env))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    result: dict[str, Any] = {
        "runs": args.runs,
        "python": sys.version.split()[0],
        **{name: summary(ns) for name, ns in samples.items()},
    }
    median = {name: percentile(ns, 50) for name, ns in samples.items()}
    p90 = {name: percentile(ns, 90) for name, ns in samples.items()}
    ratio = median["signalos"] / median["floor"]
    result["ratio"] = rnd(ratio)
    result["ratio_p90"] = rnd(p90["signalos"] / p90["floor"])
    if "curl" in median:
        result["ratio_vs_curl"] = rnd(median["signalos"] / median["curl"])
    result["target_ratio"] = TARGET_RATIO
    result["ok"] = ratio <= TARGET_RATIO
    emit(result)


if __name__ == "__main__":
    main()
