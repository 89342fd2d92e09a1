"""The runtime on its own thread and event loop, for a process whose loop has other work.

The desktop console serves its bots in-process (single-machine mode), but its event loop is
Qt's: every asyncio callback there runs between paints. A paid campaign at 1,000 msg/s keeps
the delivery engine busy enough to stall that loop by 100-500 ms at a time (measured with
bench/gui_responsiveness.py), so the console starts the runtime here instead: a thread with
its own loop and its own ``App`` over the same home (its own database engine: SQLAlchemy's
async engines belong to the loop that made them). The two share only the database, exactly
as a console and a headless `botdesk serve` do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from botdesk.errors import BotdeskError
from botdesk.log import get_logger

log = get_logger(__name__)

# How long stop() waits for the runtime's own shutdown (it lets requests in flight finish).
STOP_TIMEOUT_S = 60.0
POLL_S = 0.02


class BackgroundRuntime:
    """``await BackgroundRuntime(home).start()`` ... ``await .stop()``; ``runs`` names the
    bots it serves now. ``build`` makes the runtime from the thread's ``App`` (tests pass
    their own); by default it is ``build_runtime(app, poll_timeout=2)``."""

    def __init__(self, home: Path, *, build: Callable[[Any], Any] | None = None) -> None:
        self.home = home
        self._build = build
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._runtime: Any = None
        self._runtime_started = False

    @property
    def runs(self) -> Collection[str]:
        rt = self._runtime
        # A snapshot: the runtime's own dict changes on the other thread.
        return frozenset(rt.runs) if rt is not None else frozenset()

    async def start(self) -> None:
        if self._thread is not None:
            return
        # The caller's loop may be Qt's (qasync): nothing here posts to it from the other
        # thread (call_soon_threadsafe, an executor), which crashed Qt at a later
        # processEvents in the tests; the caller polls a threading.Event instead.
        started = threading.Event()
        outcome: list[BaseException | None] = []

        def ready(exc: BaseException | None) -> None:
            if not outcome:
                outcome.append(exc)
            started.set()

        def main() -> None:
            try:
                asyncio.run(self._main(ready))
            except BaseException as exc:  # handed to the caller, not lost
                if self._runtime_started:
                    log.error("the console's runtime stopped", error=str(exc))
                ready(exc)

        self._thread = threading.Thread(target=main, name="botdesk-runtime", daemon=True)
        self._thread.start()
        while not started.is_set():  # noqa: ASYNC110 - a threading.Event: see above
            await asyncio.sleep(POLL_S)
        if outcome and outcome[0] is not None:
            thread, self._thread = self._thread, None
            await _join(thread)
            raise outcome[0]

    async def _main(self, ready: Callable[[BaseException | None], None]) -> None:
        from botdesk.app import open_app

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with open_app(self.home, configure_logs=False) as app:
            if self._build is not None:
                rt = await self._build(app)
            else:
                from botdesk.runtime.assembly import build_runtime

                rt = await build_runtime(app, poll_timeout=2)
            try:
                await rt.start()
            except BaseException as exc:
                ready(exc)
                raise
            self._runtime = rt
            self._runtime_started = True
            ready(None)
            try:
                await self._stop.wait()
            finally:
                self._runtime = None
                await rt.stop()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop ended on its own meanwhile
                pass
        if not await _join(thread):
            raise BotdeskError("the runtime did not stop within a minute; see the log")


async def _join(thread: threading.Thread) -> bool:
    """Wait for the thread to end without blocking this loop; False if it outlived the wait."""
    waited = 0.0
    while thread.is_alive() and waited < STOP_TIMEOUT_S:
        await asyncio.sleep(POLL_S)
        waited += POLL_S
    return not thread.is_alive()
