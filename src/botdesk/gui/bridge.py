"""The one bridge between asyncio and Qt: qasync runs asyncio's loop on Qt's event loop.

Every service call is a coroutine scheduled on that loop, so it runs on the GUI thread
between paint events and never blocks it (the database drivers and HTTP clients are async;
CPU-heavy work such as retrieval indexing goes to the services' bounded executor). Results
come back as plain callbacks on the GUI thread, so every signal is emitted there.

A call belongs to an owner (a view); when the owner closes, its calls are cancelled and
their callbacks never run, so a late answer cannot touch a widget that is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from botdesk.errors import UserError

log = logging.getLogger("botdesk.gui")


def error_line(exc: BaseException, logdir: Path) -> str:
    """The one line the CLI would print for this error (redacted), for the window."""
    from botdesk.log import REDACTOR

    if isinstance(exc, UserError):
        return REDACTOR.redact(str(exc))
    from botdesk.error_report import record_unexpected

    return record_unexpected(exc, logdir).line()


class Bridge(QObject):
    """Schedules coroutines for views and reports their failures as one line."""

    failed = Signal(str)  # a failure no caller handles inline: the status bar shows it
    busy = Signal(int)  # calls in flight

    def __init__(self, logdir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.logdir = logdir
        self._tasks: dict[int, set[asyncio.Task[Any]]] = {}
        # Cancelled calls still unwinding (a database transaction rolling back): drain waits
        # for them too, or they finish after the loop closed and their async generators are
        # finalized later, in another test's or call's greenlet ("ignored GeneratorExit").
        self._cancelled: set[asyncio.Task[Any]] = set()

    def call(
        self,
        owner: object,
        coro: Coroutine[Any, Any, Any],
        on_ok: Callable[[Any], object] | None = None,
        on_err: Callable[[str], object] | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        bucket = self._tasks.setdefault(id(owner), set())
        bucket.add(task)
        self.busy.emit(self.in_flight())

        def done(t: asyncio.Task[Any]) -> None:
            bucket.discard(t)
            # Only this owner's own bucket: a cancelled owner's id may already be reused.
            if not bucket and self._tasks.get(id(owner)) is bucket:
                del self._tasks[id(owner)]
            self.busy.emit(self.in_flight())
            if t.cancelled():
                return
            exc = t.exception()
            if exc is None:
                if on_ok is not None:
                    on_ok(t.result())
                return
            line = error_line(exc, self.logdir)
            if not isinstance(exc, UserError):
                log.error("console call failed: %s", line)
            if on_err is not None:
                on_err(line)  # the view shows it where it belongs (inline)
            else:
                self.failed.emit(line)

        task.add_done_callback(done)
        return task

    def cancel(self, owner: object) -> None:
        """Cancel the owner's calls; their callbacks will not run."""
        for t in list(self._tasks.pop(id(owner), ())):
            if t.cancel():
                self._cancelled.add(t)
                t.add_done_callback(self._cancelled.discard)

    def in_flight(self) -> int:
        return sum(len(b) for b in self._tasks.values())

    async def drain(self) -> None:
        """Wait for every call in flight (tests, and closing the window)."""
        while True:
            pending = [t for b in self._tasks.values() for t in b] + list(self._cancelled)
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)
