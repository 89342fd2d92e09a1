"""Injected time: the ``Clock`` protocol, the real ``SystemClock`` and a ``ManualClock`` for tests.

Every rule that depends on time (rate limiter, leases, schedules) takes a clock so tests can
drive time explicitly instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> object: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    async def sleep(self, s: float) -> None: ...

    def call_later(self, s: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the loop after ``s`` seconds; cheaper than a task that sleeps
        (the rate limiter arms one per admission)."""
        ...


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` (real time) have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)


async def first_of(events: tuple[asyncio.Event, ...], seconds: float | None = None) -> None:
    """Until one of ``events`` is set, or ``seconds`` (real time) have passed."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


class SystemClock:
    """The real clock: ``time.monotonic``, aware UTC ``now`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(max(0.0, s))

    def call_later(self, s: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, s), callback)


class ManualClock:
    """A clock that moves only when a test calls ``advance``.

    ``sleep`` parks the caller on a future that ``advance`` resolves once the clock reaches the
    wake-up time, so asyncio tasks sleeping on this clock interleave deterministically.
    ``advance`` wakes sleepers in time order and yields to the loop after each wake-up so the
    woken task can run (and possibly sleep again) before time moves further.
    """

    def __init__(self, *, start: float = 0.0, wall_start: datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._start)

    async def sleep(self, s: float) -> None:
        if s <= 0:
            # Still a scheduling point, like asyncio.sleep(0).
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + s, next(self._seq), fut))
        await fut

    def call_later(self, s: float, callback: Callable[[], None]) -> Timer:
        loop = asyncio.get_running_loop()
        if s <= 0:
            return loop.call_soon(callback)
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + s, next(self._seq), fut))
        fut.add_done_callback(lambda f: None if f.cancelled() else callback())
        return fut

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_wakeup(self) -> float | None:
        """The earliest pending wake-up time, or None."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def settle(self, rounds: int = 5) -> None:
        """Let ready tasks run without moving time."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose time has come, in order."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        target = self._now + seconds
        await self.settle()
        while True:
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            when, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            fut.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()

    async def run_until_idle(self, *, limit: float = 1e9) -> None:
        """Advance to each pending wake-up until nobody sleeps (or ``limit`` seconds elapsed)."""
        end = self._now + limit
        await self.settle()
        while (nxt := self.next_wakeup()) is not None and nxt <= end:
            await self.advance(nxt - self._now)
