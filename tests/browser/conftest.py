"""Browser tests: Debian's Chromium, installed when missing and the user is root (CI is root on
a fresh clone); otherwise every browser test skips with one line naming the package.

The install runs once, at collection, and only when a browser test was selected: pytest's
per-test timeout does not apply there, and `pytest tests/test_store.py` never triggers it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE_HINT = "needs Debian's chromium package: apt-get install chromium"
INSTALL_TIMEOUT_S = 900  # apt-get update + chromium and its libraries on a fresh machine
_HERE = Path(__file__).resolve().parent
_INSTALL = pytest.StashKey[str]()
_CALL_FAILED = pytest.StashKey[bool]()


def _install_chromium() -> str:
    """`apt-get update && apt-get install -y chromium`, non-interactive and bounded: "" when it
    worked, else what went wrong with apt's own output."""
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    out: list[str] = []
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            return f"{' '.join(cmd)} took longer than {INSTALL_TIMEOUT_S} s:\n{exc.stdout or ''}"
        out.append(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            return f"{' '.join(cmd)} exited {done.returncode}:\n" + "\n".join(out)[-6000:]
    if not CHROMIUM.exists():
        return f"apt-get installed chromium but {CHROMIUM} is missing:\n" + "\n".join(out)[-6000:]
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if _HERE in Path(item.path).parents]
    if CHROMIUM.exists() or not browser_items:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        config.stash[_INSTALL] = _install_chromium()
    else:  # a skip mark (not a skip from a fixture) folds into one summary line
        for item in browser_items:
            item.add_marker(pytest.mark.skip(reason=PACKAGE_HINT))


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> Path:
    """The browser's path, or a failure saying what the install printed."""
    if not CHROMIUM.exists():
        failure = pytestconfig.stash.get(_INSTALL, "") or f"{CHROMIUM} is missing"
        pytest.fail(f"installing chromium failed: {failure}", pytrace=False)
    return CHROMIUM


# ---- one daemon + agent + browser per test module -----------------------------------------
# Every fixture below lives on the module's event loop (Playwright's objects belong to the loop
# that made them); the modules say `pytestmark = pytest.mark.asyncio(loop_scope="module")`.


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    from tests.browser.stack import CHROMIUM_ARGS

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chromium: Path
) -> AsyncIterator[Any]:
    """The module's daemon (with the module's `DAEMON_ARGS`) and paper agent."""
    from tests.browser.stack import Stack

    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    started = Stack(tmp, *getattr(request.module, "DAEMON_ARGS", ()))
    try:
        yield await started.start()
    except BaseException:
        if started.daemon is not None:
            print("signalosd output:\n" + started.daemon.output)
        print("agent output:\n" + started.agent_log)
        raise
    finally:
        await started.stop()


class Pages:
    """The module's browser pages: `await pages.open(name, **context_options)`."""

    def __init__(self, browser: Any, stack: Any) -> None:
        self.browser, self.stack = browser, stack
        self.opened: list[Any] = []

    async def open(self, name: str, **context_options: Any) -> Any:
        from tests.browser.stack import Dash

        dash = await Dash.open(self.browser, self.stack, name, **context_options)
        self.opened.append(dash)
        return dash


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pages(browser: Any, stack: Any) -> AsyncIterator[Pages]:
    made = Pages(browser, stack)
    try:
        yield made
    finally:
        for dash in made.opened:
            await dash.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def no_page_errors(request: pytest.FixtureRequest, pages: Pages) -> AsyncIterator[None]:
    """Fail the test on any console error, uncaught exception or CSP violation of its pages;
    when it failed, keep a screenshot of each page and show the daemon's and agent's last lines."""
    yield
    if request.node.stash.get(_CALL_FAILED, False):
        for dash in pages.opened:
            try:
                path = await dash.shot(f"FAILED-{request.node.name}-{dash.name}")
                print(f"screenshot of {dash.name}: {path}")
            except Exception as exc:  # a crashed page: the failure itself says more
                print(f"no screenshot of {dash.name}: {exc}")
            with contextlib.suppress(Exception):
                await dash.recover()
        daemon = pages.stack.daemon
        if daemon is not None:
            print("signalosd, last lines:\n" + "\n".join(daemon.output.splitlines()[-40:]))
        print("agent, last lines:\n" + "\n".join(pages.stack.agent_log.splitlines()[-20:]))
    found = [f"[{d.name}] {e}" for d in pages.opened for e in d.take_errors()]
    assert not found, "the page reported errors:\n" + "\n".join(found)
