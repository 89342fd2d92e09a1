"""The limiter's and the wire pacer's tick grid: fewer wake-ups at high rates, same limits."""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.delivery.test_ratelimit_limits import _max_in_window, _run

from botdesk.clock import ManualClock
from botdesk.delivery.pacing import WirePacer
from botdesk.delivery.ratelimit import DEFAULT_TICK, BotRateLimiter, Priority


async def _admissions(
    limiter: BotRateLimiter, clock: ManualClock, n: int, paid: bool
) -> list[float]:
    """Admission times of ``n`` sends to distinct chats, all asked for at once."""
    return await _run(limiter, clock, [(0.0, i, False, paid) for i in range(n)])


def _on_grid(t: float, tick: float) -> bool:
    k = round(t / tick)
    return abs(t - k * tick) < 1e-5


async def test_at_1000_per_s_one_wake_up_admits_a_tick_worth() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0, safety=0.995)
    assert limiter.tick(paid=True) == DEFAULT_TICK
    n = 3000
    times = await _admissions(limiter, clock, n, paid=True)
    waited = [t for t in times if t > 0]  # the first burst goes at once
    assert all(_on_grid(t, DEFAULT_TICK) for t in waited)
    instants = len(set(waited))
    span = max(times) - min(times)
    # One wake-up per tick, not one per send: about 100 a second instead of 1,000.
    assert instants <= span / DEFAULT_TICK + 1
    assert len(waited) / instants >= 9
    # Same rate as without the grid (99% of the limit), same bucket in any window.
    steady = (n - limiter.paid_burst) / span
    assert steady >= 0.99 * 1000 * 0.995
    assert _max_in_window(times, 1.0) <= 1000 * 0.995 + limiter.paid_burst


async def test_at_30_per_s_every_send_keeps_its_exact_slot() -> None:
    exact, gridded = ManualClock(), ManualClock()
    plain = BotRateLimiter(clock=exact, rate=30.0, tick=0.0)
    default = BotRateLimiter(clock=gridded, rate=30.0)
    assert default.tick() == 0.0  # a 10 ms tick holds 0.3 sends: nothing to group
    assert await _admissions(default, gridded, 200, False) == await _admissions(
        plain, exact, 200, False
    )


def test_no_grid_where_the_burst_cannot_hold_a_tick() -> None:
    clock = ManualClock()
    assert BotRateLimiter(clock=clock, rate=500.0, burst=1.0).tick() == 0.0
    assert BotRateLimiter(clock=clock, rate=500.0, burst=6.0).tick() == DEFAULT_TICK
    assert BotRateLimiter(clock=clock, rate=500.0, tick=0.0).tick() == 0.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(200, 1000),
    burst_s=st.floats(0.02, 0.3),
    arrivals=st.lists(st.floats(0, 2), min_size=1, max_size=400),
    window=st.floats(0.005, 1.5),
)
def test_the_grid_never_lets_more_through_than_the_bucket(
    rate: float, burst_s: float, arrivals: list[float], window: float
) -> None:
    burst = max(1.0, rate * burst_s)

    async def scenario() -> list[float]:
        clock = ManualClock()
        limiter = BotRateLimiter(clock=clock, rate=rate, burst=burst, safety=1.0)
        times: list[float] = []

        async def one(at: float, chat: int) -> None:
            await clock.sleep(at)
            await limiter.acquire(chat)
            times.append(clock.monotonic())

        tasks = [asyncio.create_task(one(a, i)) for i, a in enumerate(arrivals)]
        await clock.run_until_idle()
        await asyncio.gather(*tasks)
        await limiter.aclose()
        return times

    times = asyncio.run(scenario())
    assert len(times) == len(arrivals)
    assert _max_in_window(times, window) <= rate * window + burst + 1e-6


@given(
    rate=st.floats(200, 1000),
    gaps=st.lists(st.floats(0, 0.02), min_size=1, max_size=300),
    window=st.floats(0.005, 1.5),
)
def test_the_pacer_on_the_grid_keeps_the_bucket(
    rate: float, gaps: list[float], window: float
) -> None:
    burst = rate * 0.1
    clock = ManualClock()
    pacer = WirePacer(clock)
    departures = []
    for gap in gaps:
        clock._now += gap
        at = pacer.departure(paid=True, rate=rate, burst=burst, tick=DEFAULT_TICK)
        assert at >= clock.monotonic()
        assert at == clock.monotonic() or _on_grid(at, DEFAULT_TICK)
        departures.append(at)
    assert _max_in_window(departures, window) <= rate * window + burst + 1e-6


def test_the_pacer_groups_a_commit_into_ticks_at_the_full_rate() -> None:
    clock = ManualClock()
    pacer = WirePacer(clock)
    rate, burst = 1000.0, 100.0
    at = [
        pacer.departure(paid=False, rate=rate, burst=burst, tick=DEFAULT_TICK) for _ in range(400)
    ]
    later = [t for t in at if t > 0]
    # The bucket's burst leaves at once (float rounding may hold back its last token).
    assert math.floor(burst) - 1 <= len(at) - len(later) <= math.floor(burst)
    # The other 300 leave 10 per 10 ms tick: 30 wake-ups, not 300.
    assert len(set(later)) <= 31
    assert max(at) <= 300 / rate + DEFAULT_TICK + 1e-9


def _kinds_in_queues(limiter: BotRateLimiter) -> list[list[int]]:
    return [
        [sum(1 for w in q if w.paid == paid) for paid in (False, True)] for q in limiter._queues
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    demands=st.lists(
        st.tuples(
            st.floats(0, 0.1), st.booleans(), st.booleans(), st.one_of(st.none(), st.floats(0, 0.5))
        ),
        min_size=20,
        max_size=150,
    )
)
def test_waiter_counts_follow_the_queues_through_cancellations(
    demands: list[tuple[float, bool, bool, float | None]],
) -> None:
    """The per-kind counts that end the dispatch walk early match the queues at every step,
    and everyone not cancelled is admitted (none is stranded behind a wrongly ended walk)."""

    async def scenario() -> tuple[int, int]:
        clock = ManualClock()
        limiter = BotRateLimiter(clock=clock, rate=200.0, paid_rate=300.0)
        admitted = 0

        async def one(at: float, chat: int, paid: bool, reply: bool) -> None:
            nonlocal admitted
            await clock.sleep(at)
            prio = Priority.REPLY if reply else Priority.CAMPAIGN
            await limiter.acquire(chat, paid=paid, priority=prio)
            admitted += 1

        tasks = []
        for i, (at, paid, reply, cancel_at) in enumerate(demands):
            task = asyncio.create_task(one(at, i, paid, reply))
            tasks.append(task)
            if cancel_at is not None:
                clock.call_later(cancel_at, task.cancel)
        while True:
            await clock.settle()
            assert limiter._kinds == _kinds_in_queues(limiter)
            if not clock._sleepers:
                break
            await clock.advance(0.003)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert limiter._kinds == [[0, 0], [0, 0]]
        await limiter.aclose()
        return admitted, cancelled

    admitted, cancelled = asyncio.run(scenario())
    assert admitted + cancelled == len(demands)


async def test_a_waiter_cancelled_before_the_walk_reaches_it_is_counted_out_once() -> None:
    """A cancellation lands between the walk and the waiter's own cleanup: the walk finds its
    future done, drops it and its count; the cleanup then finds nothing left to remove."""
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=1.0, burst=1.0)
    assert limiter.try_acquire(0)  # the bucket is empty: the next ones wait
    gone = asyncio.create_task(limiter.acquire(1))
    stays = asyncio.create_task(limiter.acquire(2))
    await clock.settle()
    assert limiter._kinds[Priority.CAMPAIGN] == [2, 0]
    gone.cancel()  # its future is cancelled now; its except block runs on its next step
    limiter._dispatch()  # the walk comes first (a timer or another arrival would, too)
    assert limiter._kinds == _kinds_in_queues(limiter) == [[0, 0], [1, 0]]
    await clock.settle()
    assert gone.cancelled()
    assert limiter._kinds == _kinds_in_queues(limiter) == [[0, 0], [1, 0]]
    await clock.advance(1.1)
    await clock.settle()
    assert stays.done() and limiter._kinds == [[0, 0], [0, 0]]
    await limiter.aclose()
