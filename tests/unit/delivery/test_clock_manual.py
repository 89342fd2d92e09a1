"""ManualClock drives asyncio tasks deterministically; SystemClock is aware UTC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from botdesk.clock import Clock, ManualClock, SystemClock


async def test_sleepers_wake_in_time_order_at_their_own_time() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 2.0), ("a", 1.0), ("c", 5.0))]
    await clock.advance(3.0)
    assert woke == [("a", 1.0), ("b", 2.0)]
    assert clock.monotonic() == 3.0
    assert clock.sleepers == 1
    await clock.run_until_idle()
    assert woke[-1] == ("c", 5.0)
    await asyncio.gather(*tasks)


async def test_chained_sleeps_inside_one_advance() -> None:
    clock = ManualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            await clock.sleep(0.5)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(2.0)
    assert ticks == [0.5, 1.0, 1.5, 2.0]
    await clock.advance(0.5)
    await task
    assert ticks[-1] == 2.5


async def test_cancelled_sleeper_is_forgotten() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep(1.0))
    await clock.settle()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.next_wakeup() is None
    await clock.advance(2.0)


async def test_now_follows_monotonic_and_is_aware() -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = ManualClock(wall_start=start)
    await clock.advance(90)
    assert clock.now() == start + timedelta(seconds=90)
    with pytest.raises(ValueError):
        await clock.advance(-1)


async def test_system_clock() -> None:
    clock: Clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() > before
    assert clock.now().tzinfo is UTC
    await clock.sleep(-1)  # negative is allowed and returns at once
