"""BotRateLimiter under a ManualClock: the limits hold, demand is served at the rate, order."""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botdesk.clock import ManualClock, SystemClock
from botdesk.delivery.ratelimit import BotRateLimiter, Priority


async def _run(
    limiter: BotRateLimiter,
    clock: ManualClock,
    demands: Sequence[tuple[float, int, bool, bool]],
) -> list[float]:
    """Each demand (arrival, chat, is_group, paid) acquires once; returns admission times."""
    times: list[float] = []

    async def one(arrival: float, chat: int, is_group: bool, paid: bool) -> None:
        await clock.sleep(arrival)
        await limiter.acquire(chat, is_group=is_group, paid=paid)
        times.append(clock.monotonic())

    tasks = [asyncio.create_task(one(*d)) for d in demands]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    await limiter.aclose()
    return times


def _max_in_window(times: list[float], window: float) -> int:
    """Most admissions in any half-open window [t, t + window)."""
    ts = sorted(times)
    return max((bisect.bisect_left(ts, t + window - 1e-9) - i for i, t in enumerate(ts)), default=0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(1, 100),
    burst=st.floats(1, 10),
    safety=st.floats(0.5, 1),
    demands=st.lists(
        st.tuples(st.floats(0, 5), st.integers(-3, 30), st.booleans()), min_size=1, max_size=120
    ),
    window=st.floats(0.01, 3),
)
def test_every_limit_holds_in_any_window(
    rate: float,
    burst: float,
    safety: float,
    demands: list[tuple[float, int, bool]],
    window: float,
) -> None:
    # chats < 0 are groups; paid and free sends are mixed
    async def scenario() -> list[tuple[float, int, bool]]:
        clock = ManualClock()
        limiter = BotRateLimiter(clock=clock, rate=rate, burst=burst, safety=safety)
        admitted: list[tuple[float, int, bool]] = []

        async def one(arrival: float, chat: int, paid: bool) -> None:
            await clock.sleep(arrival)
            await limiter.acquire(chat, is_group=chat < 0, paid=paid)
            admitted.append((clock.monotonic(), chat, paid))

        tasks = [asyncio.create_task(one(*d)) for d in demands]
        await clock.run_until_idle()
        await asyncio.gather(*tasks)
        await limiter.aclose()
        return admitted

    admitted = asyncio.run(scenario())
    assert len(admitted) == len(demands)
    free = [t for t, _, paid in admitted if not paid]
    assert _max_in_window(free, window) <= rate * window + burst + 1e-6
    everything = [t for t, _, _ in admitted]
    assert _max_in_window(everything, window) <= 1000 * window + 100 + 1e-6
    for chat in {c for _, c, _ in admitted}:
        times = [t for t, c, _ in admitted if c == chat]
        assert _max_in_window(times, 1.0) <= 1
        if chat < 0:
            assert _max_in_window(times, 60.0) <= 20


@pytest.mark.parametrize(("paid", "rate"), [(False, 30.0), (True, 1000.0)])
async def test_continuous_demand_is_served_at_99_percent(paid: bool, rate: float) -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0, safety=0.995)
    n = 3000
    times = await _run(limiter, clock, [(0.0, i, False, paid) for i in range(n)])
    assert len(times) == n
    burst = limiter.paid_burst if paid else limiter.burst
    steady = (n - burst) / (max(times) - min(times))
    assert steady >= 0.99 * rate * 0.995
    assert _max_in_window(times, 1.0) <= rate * 0.995 + burst


async def test_one_chat_gets_at_most_one_per_second() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    times = await _run(limiter, clock, [(0.0, 7, False, False)] * 10)
    gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
    assert all(g >= 1.0 - 1e-9 for g in gaps)
    assert max(times) == pytest.approx(9.0, abs=1e-3)  # plus a microsecond margin per send


async def test_group_gets_at_most_twenty_per_minute() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    times = await _run(limiter, clock, [(0.0, -1001, True, False)] * 45)
    assert _max_in_window(times, 60.0) <= 20
    assert max(times) == pytest.approx(44 * 3.0, abs=1e-3)


async def test_chat_limited_waiter_does_not_block_others() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    assert limiter.try_acquire(1)
    blocked = asyncio.create_task(limiter.acquire(1))  # chat 1 must wait ~1 s
    await clock.settle()
    others = [asyncio.create_task(limiter.acquire(100 + i)) for i in range(5)]
    await clock.advance(0.5)
    assert all(t.done() for t in others)
    assert not blocked.done()
    await clock.advance(0.6)
    assert blocked.done()
    assert limiter.chat_ready_at(2) < clock.monotonic()


async def test_replies_go_before_waiting_campaign_sends() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=10.0, burst=1.0, safety=1.0)
    order: list[str] = []

    async def send(name: str, chat: int, priority: Priority) -> None:
        await limiter.acquire(chat, priority=priority)
        order.append(name)

    tasks = [asyncio.create_task(send(f"c{i}", i, Priority.CAMPAIGN)) for i in range(4)]
    await clock.settle()
    tasks.append(asyncio.create_task(send("reply", 99, Priority.REPLY)))
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    # c0 took the only token at once; the reply overtakes the campaign sends still waiting.
    assert order == ["c0", "reply", "c1", "c2", "c3"]


async def test_fifo_within_a_priority() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=5.0, burst=1.0, safety=1.0)
    order: list[int] = []

    async def send(i: int) -> None:
        await limiter.acquire(i)
        order.append(i)

    tasks = []
    for i in range(20):
        tasks.append(asyncio.create_task(send(i)))
        await clock.settle()
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    assert order == list(range(20))


async def test_cancelled_waiter_does_not_take_a_token() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=1.0, burst=1.0, safety=1.0)
    assert limiter.try_acquire(1)
    first = asyncio.create_task(limiter.acquire(2))
    second = asyncio.create_task(limiter.acquire(3))
    await clock.settle()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await clock.advance(1.01)
    # The token at t=1 goes to the next waiter, not to the cancelled one.
    assert second.done()
    assert limiter.stats().admitted == 2
    await limiter.aclose()


async def test_waiter_cancelled_after_admission_gives_the_tokens_back() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=1.0, burst=1.0, safety=1.0)
    assert limiter.try_acquire(1)
    waiter = asyncio.create_task(limiter.acquire(2))
    await clock.settle()
    # Admit it and cancel it before it resumes: the race a worker shutdown can hit.
    clock._now = 1.0
    limiter._dispatch()
    assert limiter.stats().admitted == 2
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert limiter.stats().admitted == 1
    assert limiter.try_acquire(2)  # both the global and the chat token came back
    await limiter.aclose()


async def test_pause_holds_every_sender_and_429_tunes_the_rate() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, safety=1.0, quiet_period=10.0, growth=0.02)
    limiter.on_rate_limited(5.0)
    assert limiter.stats().paused_until == 5.0
    assert limiter.effective_rate() == pytest.approx(15.0)  # first episode: halved
    assert not limiter.try_acquire(1, priority=Priority.REPLY)
    reply = asyncio.create_task(limiter.acquire(1, priority=Priority.REPLY))
    await clock.advance(4.9)
    assert not reply.done()
    await clock.advance(0.2)
    assert reply.done()
    for _ in range(20):  # no sends accepted in between: no measurement, plain cuts
        limiter.on_rate_limited(0)
    assert limiter.effective_rate() == pytest.approx(1.5)  # floor: 5% of configured
    await clock.advance(10.0)  # quiet period: no probing yet
    assert limiter.effective_rate() == pytest.approx(1.5)
    await clock.advance(20.0)  # +2%/s, compounded
    assert limiter.effective_rate() == pytest.approx(1.5 * math.exp(0.02 * 20.0))
    await clock.advance(200.0)
    assert limiter.effective_rate() == pytest.approx(30.0)
    assert limiter.stats().rate_limited == 21
    await limiter.aclose()


async def test_no_burst_right_after_a_pause() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=10.0, burst=5.0, safety=1.0)
    limiter.pause(2.0)
    times = await _run(limiter, clock, [(0.0, i, False, False) for i in range(6)])
    assert min(times) == pytest.approx(2.0)
    assert _max_in_window(times, 0.5) <= 6  # spaced by 0.1 s, not all at once at t=2
    assert sorted(times)[1] == pytest.approx(2.1)


async def test_chat_and_group_ready_at() -> None:
    clock = ManualClock(start=10.0)
    limiter = BotRateLimiter(clock=clock)
    assert limiter.try_acquire(5)
    assert limiter.try_acquire(-100, is_group=True)
    assert limiter.chat_ready_at(5) == pytest.approx(11.0)
    assert limiter.chat_ready_at(-100, is_group=True) == pytest.approx(13.0)
    assert limiter.chat_ready_at(6) < 10.0
    assert not limiter.try_acquire(5)


async def test_chat_state_stays_bounded() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=1000.0, safety=1.0)
    peak = 0
    for chat in range(30_000):
        clock._now += 0.002
        assert limiter.try_acquire(chat)
        peak = max(peak, limiter.stats().tracked_chats)
    assert peak <= 4096
    assert limiter.stats().admitted == 30_000


async def test_works_on_the_system_clock() -> None:
    limiter = BotRateLimiter(clock=SystemClock(), rate=500.0, burst=1.0)
    await asyncio.gather(*(limiter.acquire(i) for i in range(20)))
    assert limiter.stats().admitted == 20
    assert limiter.stats().waiting == 0
    await limiter.aclose()


def test_bad_configuration_is_rejected() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError):
        BotRateLimiter(clock=clock, rate=0)
    with pytest.raises(ValueError):
        BotRateLimiter(clock=clock, burst=0.5)
    with pytest.raises(ValueError):
        BotRateLimiter(clock=clock, safety=1.5)


async def test_reply_during_a_paid_campaign_waits_at_most_one_free_token() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0)
    admitted: dict[str, float] = {}

    async def campaign() -> None:
        for i in range(2000):
            await limiter.acquire(10_000 + i, paid=True)
        admitted["campaign"] = clock.monotonic()

    async def reply() -> None:
        await clock.sleep(0.5)
        await limiter.acquire(1, priority=Priority.REPLY)
        admitted["reply"] = clock.monotonic()

    tasks = [asyncio.create_task(campaign()), asyncio.create_task(reply())]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    # Paid sends drained the free bucket; the reply waits for the next free token only.
    assert 0.5 < admitted["reply"] <= 0.5 + 1 / (30 * 0.995) + 1e-3
    assert admitted["campaign"] < 2000 / (1000 * 0.995 * 0.99)


async def test_429s_of_one_burst_tune_the_rate_once() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, safety=1.0)
    for _ in range(64):  # the whole in-flight window answers 429 within a few ms
        limiter.on_rate_limited(3.0)
        await clock.advance(0.001)
    assert limiter.effective_rate() == pytest.approx(15.0)
    assert limiter.stats().paused_until == pytest.approx(3.063)
    await clock.advance(5.0)
    for _ in range(41):
        limiter.on_accepted()
    limiter.on_rate_limited(1.0)  # a new episode after the pause: measured since the first
    assert limiter.effective_rate() == pytest.approx(40 / clock.monotonic() * 0.97)
