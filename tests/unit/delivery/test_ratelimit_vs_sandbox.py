"""The sandbox's Telegram-like limiter judges every admission of BotRateLimiter: zero 429s.

Same clock, zero latency, and the sandbox configured with our (smaller) bursts, so the check
is stricter than the real sandbox, whose bursts also absorb network jitter.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botdesk.clock import ManualClock
from botdesk.delivery.ratelimit import BotRateLimiter, Priority

sandbox_limits = pytest.importorskip("botdesk.sandbox.limits")

# (arrival, chat, paid, priority): chats < 0 are groups
Demand = tuple[float, int, bool, Priority]


async def _judge(demands: list[Demand], *, rate: float, paid_rate: float) -> list[int]:
    clock = ManualClock()
    ours = BotRateLimiter(clock=clock, rate=rate, paid_rate=paid_rate)
    judge = sandbox_limits.Limiter(
        bot_rate=rate,
        bot_burst=ours.burst,
        chat_rate=1.0,
        chat_burst=1.0,
        group_per_minute=20.0,
        group_burst=1.0,
        paid_rate=paid_rate,
        clock=clock.monotonic,
    )
    refused: list[int] = []

    async def one(arrival: float, chat: int, paid: bool, priority: Priority) -> None:
        await clock.sleep(arrival)
        await ours.acquire(chat, is_group=chat < 0, paid=paid, priority=priority)
        decision = judge.check(1, chat, group=chat < 0, paid=paid, stars_tenths=10**9)
        if not decision.admitted:
            refused.append(chat)

    tasks = [asyncio.create_task(one(*d)) for d in demands]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    await ours.aclose()
    return refused


demand = st.tuples(
    st.floats(0, 3),
    st.integers(-3, 200),
    st.booleans(),
    st.sampled_from(Priority),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(demand, max_size=150), st.sampled_from([(30.0, 1000.0), (5.0, 40.0)]))
def test_no_admission_is_refused_by_the_sandbox(
    demands: list[Demand], rates: tuple[float, float]
) -> None:
    rate, paid_rate = rates
    assert asyncio.run(_judge(demands, rate=rate, paid_rate=paid_rate)) == []


async def test_paid_campaign_with_replies_is_never_refused() -> None:
    campaign: list[Demand] = [(0.0, 1000 + i, True, Priority.CAMPAIGN) for i in range(3000)]
    replies: list[Demand] = [(0.05 * k, k % 7, False, Priority.REPLY) for k in range(40)]
    assert await _judge(campaign + replies, rate=30.0, paid_rate=1000.0) == []
