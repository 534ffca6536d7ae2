"""`signalos risk`, `risk set`, `risk reset` against a live daemon; a trip end to end with the
real agent on the paper broker (it flattens when the guard stops the desk)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from tests.cli_harness import EURUSD_BUY, Cli, LiveDaemon


def limits(run: Cli) -> dict[str, Any]:
    result = run("--json", "risk")
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout)["limits"] or {})


def wait_for(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_unguarded_account_gets_a_hint(run: Cli) -> None:
    result = run("risk")
    assert result.exit_code == 0, result.stderr
    assert "no risk limits set: signalos risk set" in result.stdout
    assert "no limits set (signalos risk set)" in run("status").stdout


def test_set_changes_only_what_it_names(run: Cli) -> None:
    result = run(
        "risk", "set", "--daily-loss", "5%", "--max-drawdown", "10%", "--equity-floor", "9000",
        "--max-open-trades", "5", "--reset-tz", "Europe/London",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Risk limits set" in result.stderr
    first = limits(run)
    assert first["daily_loss_pct"] == 5 and first["max_drawdown_pct"] == 10
    assert first["equity_floor"] == 9000 and first["max_open_trades"] == 5
    assert first["reset_tz"] == "Europe/London"

    assert run("risk", "set", "--max-open-trades", "3", "--no-flatten").exit_code == 0
    second = limits(run)
    assert second == first | {"max_open_trades": 3, "flatten_on_breach": False}

    assert run("risk", "set", "--daily-loss", "300", "--off", "equity-floor").exit_code == 0
    third = limits(run)
    assert third["daily_loss_money"] == 300 and third["daily_loss_pct"] is None
    assert third["equity_floor"] is None and third["max_drawdown_pct"] == 10

    assert run("risk", "set", "--clear", "--max-volume", "2").exit_code == 0
    assert {k for k, v in limits(run).items() if v is not None} >= {"max_volume_per_trade"}
    assert limits(run)["max_drawdown_pct"] is None


def test_bad_values_are_refused_and_change_nothing(run: Cli) -> None:
    assert run("risk", "set", "--equity-floor", "9000").exit_code == 0
    result = run("risk", "set", "--daily-loss", "5x")
    assert result.exit_code == 2
    assert "give a percentage like 5% or an amount of money like 500" in result.stderr
    result = run("risk", "set", "--reset-tz", "Mars/Olympus")
    assert result.exit_code == 1
    assert "reset_tz" in result.stderr and "IANA time zone" in result.stderr
    result = run("risk", "set", "--daily-loss", "150%")
    assert result.exit_code == 1 and "daily_loss_pct" in result.stderr
    assert limits(run) == limits(run) | {"equity_floor": 9000, "reset_tz": "Europe/Prague"}


def test_a_viewer_reads_but_cannot_set(live: LiveDaemon, run: Cli) -> None:
    viewer = {"SIGNALOS_TOKEN": live.token("viewer")}
    assert run("risk", env=viewer).exit_code == 0
    result = run("risk", "set", "--equity-floor", "1", env=viewer)
    assert result.exit_code == 4, result.stderr


def test_a_trip_flattens_and_holds_until_reset_then_resume(live: LiveDaemon, run: Cli) -> None:
    with live.agent() as broker:
        assert run("signal", "send", *EURUSD_BUY, "--wait", "--timeout", "5").exit_code == 0
        wait_for(lambda: len(broker.positions()) == 1)
        # A floor above the paper account's equity: the guard trips at the next look.
        assert run("risk", "set", "--equity-floor", "20000").exit_code == 0
        wait_for(lambda: json.loads(run("--json", "risk").stdout)["latch"] is not None)
        wait_for(lambda: broker.positions() == [])  # flattened by the agent
        shown = run("risk")
        assert shown.exit_code == 0
        assert "tripped" in shown.stdout and "latched" in shown.stdout
        assert "equity_floor at" in shown.stdout and "[####################]" in shown.stdout
        assert json.loads(run("--json", "status").stdout)["state"]["mode"] == "halted"
        assert "LATCHED: equity_floor tripped" in run("status").stdout

        refused = run("resume", "--from-halt")
        assert refused.exit_code == 1
        assert "equity_floor trip is latched" in refused.stderr, refused.stderr
        assert run("risk", "reset").exit_code == 2  # stdin is not a terminal: no --yes
        still = run("risk", "reset", "--yes")
        assert still.exit_code == 1 and "still below the equity_floor" in still.stderr
        assert run("risk", "set", "--off", "equity-floor").exit_code == 0
        done = run("risk", "reset", "--yes")
        assert done.exit_code == 0, done.stderr
        assert "Risk trip equity_floor reset" in done.stderr
        assert run("resume", "--from-halt").exit_code == 0


def test_the_docs_ftmo_example_is_the_same_in_json_and_in_the_cli(run: Cli) -> None:
    """docs/risk.md gives the configuration twice; both must mean the same limits."""
    text = (Path(__file__).parent.parent / "docs" / "risk.md").read_text()
    section = text.split("## An FTMO-style configuration", 1)[1]
    as_json = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    command = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    args = shlex.split(command)
    assert args[:3] == ["signalos", "risk", "set"]
    result = run(*args[1:])
    assert result.exit_code == 0, result.stderr
    assert limits(run) == limits(run) | as_json
