"""How the streaming commands (`signalos tail`, `signalos ws`) end: `Fatal` (stop with an exit
code of `errors.ExitCode`), and SIGINT/SIGTERM (or a stop event) turned into 130/143."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from signalos_cli.errors import ExitCode

__all__ = ["Fatal", "run_until_stopped"]


class Fatal(Exception):
    """Stop with this exit code (the message goes to `err`)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


async def run_until_stopped(
    work: Coroutine[Any, Any, int],
    *,
    stop: asyncio.Event | None,
    handle_signals: bool,
    on_stopped: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run `work` to its exit code; SIGINT (or `stop`) ends it with 130, SIGTERM with 143.

    `work` is cancelled on a stop, so its `finally` blocks run (the tail flushes its cursor)."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    code = ExitCode.INTERRUPTED
    installed: list[signal.Signals] = []

    def on_signal(exit_code: ExitCode) -> None:
        nonlocal code
        code = exit_code
        stopped.set()

    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig, exit_code in (
            (signal.SIGINT, ExitCode.INTERRUPTED),
            (signal.SIGTERM, ExitCode.TERMINATED),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, exit_code)
                installed.append(sig)
    task = asyncio.ensure_future(work)
    waiters = [asyncio.ensure_future(stopped.wait())]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            result = await task
            return result  # it finished by itself while being cancelled
        if on_stopped is not None:
            await on_stopped()
        return code
    finally:
        for w in waiters:
            w.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in installed:
            loop.remove_signal_handler(sig)
