"""The rate controller learns the limit the server enforces, on a fake clock.

The judge is the sandbox's own Telegram-like limiter (bucket of burst 10, integer
``retry_after``), driven by the same ``ManualClock`` as ``BotRateLimiter``; one sender loop per
in-flight slot sends to distinct chats, as a campaign does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from botdesk.clock import ManualClock
from botdesk.delivery.ratecontrol import RateController
from botdesk.delivery.ratelimit import BotRateLimiter

sandbox_limits = pytest.importorskip("botdesk.sandbox.limits")

CONFIGURED = 30.0


@dataclass
class Run:
    refused: list[float] = field(default_factory=list)  # when each 429 was answered
    accepted: list[float] = field(default_factory=list)
    limiter: BotRateLimiter | None = None


async def _campaign(limits: list[tuple[float, float]], *, messages: int, senders: int = 4) -> Run:
    """Send ``messages`` at CONFIGURED/s against a judge whose limit follows ``limits``
    ((from_time, rate) steps); a refused message is retried later, like the worker does."""
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=CONFIGURED)
    judge = sandbox_limits.Limiter(
        bot_rate=limits[0][1], bot_burst=10.0, chat_rate=1.0, chat_burst=1.0,
        group_per_minute=20.0, group_burst=1.0, paid_rate=1000.0, clock=clock.monotonic,
    )  # fmt: skip
    run = Run(limiter=limiter)
    todo = list(range(messages))

    def current_limit() -> float:
        return [rate for start, rate in limits if start <= clock.monotonic()][-1]

    async def sender() -> None:
        while todo:
            chat = todo.pop(0)
            await limiter.acquire(chat)
            judge.bot_rate = current_limit()
            bucket = judge._buckets.get(("bot", 1, 0))
            if bucket is not None:
                bucket.refill(clock.monotonic())
                bucket.rate = judge.bot_rate
            sent_at = clock.monotonic()
            await clock.sleep(0.005)  # the request's way out
            decision = judge.check(1, chat, group=False, paid=False, stars_tenths=0)
            await clock.sleep(0.005)  # the answer's way back
            if decision.admitted:
                run.accepted.append(clock.monotonic())
                limiter.on_accepted(sent_at=sent_at)
            else:
                run.refused.append(clock.monotonic())
                limiter.on_rate_limited(decision.retry_after)
                todo.append(chat)

    tasks = [asyncio.create_task(sender()) for _ in range(senders)]
    await clock.run_until_idle()
    await asyncio.gather(*tasks)
    await limiter.aclose()
    return run


@pytest.mark.parametrize("limit", [3.0, 5.0, 15.0, 30.0])
async def test_settles_just_under_the_real_limit_within_five_429s(limit: float) -> None:
    run = await _campaign([(0.0, limit)], messages=int(limit * 40))
    assert run.limiter is not None
    assert len(run.refused) <= 5
    settled = run.limiter.effective_rate()
    # Within 10% under the limit (or probing just above it, which the next 429 measures).
    assert 0.9 * limit <= settled <= 1.25 * limit
    last_429 = run.refused[-1] if run.refused else 0.0
    after = [t for t in run.accepted if t > last_429 + 1.0]
    if len(after) > 20:
        measured = (len(after) - 1) / (after[-1] - after[0])
        assert 0.85 * limit <= measured <= limit * 1.05  # the refill of the last pause


async def test_a_150_recipient_campaign_at_5_per_second_draws_at_most_ten_429s() -> None:
    run = await _campaign([(0.0, 5.0)], messages=150)
    assert len(run.accepted) == 150
    assert len(run.refused) <= 10


async def test_climbs_back_to_the_configured_rate_when_the_limit_rises() -> None:
    run = await _campaign([(0.0, 5.0), (30.0, 30.0)], messages=4000)
    back = [
        t
        for i, t in enumerate(run.accepted)
        if t > 30.0 and i >= 60 and t - run.accepted[i - 60] <= 60 / (0.9 * CONFIGURED)
    ]
    assert back, "never climbed back"
    assert back[0] < 30.0 + 180.0  # minutes, not hours
    assert run.refused and max(run.refused) < 30.0 + 1.0  # the climb drew no 429


def test_measures_between_episodes_and_halves_on_the_first() -> None:
    ctl = RateController(30.0, quiet=10.0, growth=0.02)
    assert ctl.on_rate_limited(0.0, new_episode=True) == 15.0  # nothing measured yet
    for _ in range(11):
        ctl.on_accepted()
    # 11 accepted in 2 s: at least (11 - 1) / 2 = 5/s, minus the margin.
    assert ctl.on_rate_limited(2.0, new_episode=True) == pytest.approx(5.0 * 0.97)
    assert ctl.rate(11.9) == pytest.approx(4.85)  # quiet period: no probing yet
    assert ctl.rate(22.0) == pytest.approx(4.85 * 2.718281828 ** (0.02 * 10))
    assert ctl.rate(1000.0) == 30.0
    assert ctl.learned(1000.0) is None


def test_a_burst_of_429s_is_one_episode_and_cuts_are_bounded() -> None:
    ctl = RateController(30.0)
    ctl.on_rate_limited(0.0, new_episode=True)
    for i in range(50):
        ctl.on_rate_limited(0.001 * i, new_episode=False)
    assert ctl.rate(0.1) == 15.0
    assert ctl.episodes == 1
    # Sparse traffic (2 replies in 60 s) measures nothing: a plain cut, not a collapse.
    ctl.on_accepted()
    ctl.on_accepted()
    assert ctl.on_rate_limited(5.0, new_episode=True) == pytest.approx(7.5)
    # An idle stretch under-estimates: one step drops at most to min_cut of the rate.
    for _ in range(3):
        ctl.on_accepted()
    assert ctl.on_rate_limited(8.0, new_episode=True) == pytest.approx(1.5)  # floor: 5%
    assert ctl.rate(8.5) == pytest.approx(1.5)


def test_restore_starts_from_the_learned_rate_then_probes() -> None:
    ctl = RateController(30.0, quiet=10.0)
    ctl.restore(4.5, 100.0)
    assert ctl.rate(105.0) == 4.5
    assert ctl.learned(105.0) == 4.5
    assert ctl.rate(120.0) > 4.5
    assert ctl.learned(120.0) == 4.5  # a probe is not remembered, what it may have overshot
    with pytest.raises(ValueError):
        RateController(0.0)
    with pytest.raises(ValueError):
        RateController(30.0, margin=1.5)


async def test_paid_broadcasts_learn_their_own_rate() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0, safety=1.0)
    limiter.on_rate_limited(1.0, paid=True)
    assert limiter.effective_rate(paid=True) == pytest.approx(500.0)
    assert limiter.effective_rate() == pytest.approx(30.0)  # the free rate is not touched
    assert limiter.learned_rates() == (None, pytest.approx(500.0))
    fresh = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0, safety=1.0)
    fresh.restore_rates(None, 500.0)
    assert fresh.effective_rate(paid=True) == pytest.approx(500.0)
    await limiter.aclose()
    await fresh.aclose()
