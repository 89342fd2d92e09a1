"""Per-group and per-chat limits learned from 429s, on a fake clock, over simulated minutes.

The judge is the sandbox's own Telegram-like limiter (chat and group buckets of burst 1,
integer ``retry_after``), driven by the same ``ManualClock`` as ``BotRateLimiter``. Three
chats of one kind are written to as fast as their limit allows (a broadcast to groups, or a
conversation-heavy bot), started 1.7 s apart like chats that are not in step; a refused send
is retried, like the worker does. Once learned, the limit must not keep drawing 429s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from botdesk.clock import ManualClock
from botdesk.delivery.ratelimit import BotRateLimiter

sandbox_limits = pytest.importorskip("botdesk.sandbox.limits")

MINUTES = 13.0
LEARNING = 180.0  # seconds allowed to learn; the ten minutes after it are "converged"


@dataclass
class Run:
    refused: list[float] = field(default_factory=list)
    accepted: dict[int, list[float]] = field(default_factory=dict)


async def _chats_at_their_limit(*, group: bool, real_per_minute: float) -> Run:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock)  # configured: 1/s per chat, 20/min per group
    judge = sandbox_limits.Limiter(
        bot_rate=30.0, bot_burst=10.0,
        chat_rate=1.0 if group else real_per_minute / 60.0, chat_burst=1.0,
        group_per_minute=real_per_minute if group else 20.0, group_burst=1.0,
        paid_rate=1000.0, clock=clock.monotonic,
    )  # fmt: skip
    run = Run()
    end = MINUTES * 60.0

    async def sender(chat: int, start: float) -> None:
        await clock.sleep(start)
        while clock.monotonic() < end:
            await limiter.acquire(chat, is_group=group)
            sent_at = clock.monotonic()
            await clock.sleep(0.02)  # the request's way out
            decision = judge.check(1, chat, group=group, paid=False, stars_tenths=0)
            await clock.sleep(0.02)  # the answer's way back
            if decision.admitted:
                run.accepted.setdefault(chat, []).append(clock.monotonic())
                limiter.on_accepted(sent_at=sent_at)
            else:
                run.refused.append(clock.monotonic())
                limiter.on_rate_limited(decision.retry_after, chat_id=chat, is_group=group)

    chats = [-1000 - i if group else 1000 + i for i in range(3)]
    tasks = [asyncio.create_task(sender(c, 1.7 * i)) for i, c in enumerate(chats)]
    await clock.run_until_idle(limit=end + 60.0)
    await asyncio.gather(*tasks)
    await limiter.aclose()
    return run


@pytest.mark.parametrize(
    ("group", "real_per_minute"),
    [(True, 5.0), (True, 10.0), (True, 15.0), (False, 30.0), (False, 42.0)],
)
async def test_a_learned_chat_limit_settles_under_it_and_stops_drawing_429s(
    group: bool, real_per_minute: float
) -> None:
    run = await _chats_at_their_limit(group=group, real_per_minute=real_per_minute)
    learning = [t for t in run.refused if t < LEARNING]
    converged = [t for t in run.refused if t >= LEARNING]
    assert 1 <= len(learning) <= 5, run.refused  # the configured rate is above the limit
    # Ten simulated minutes once learned: at most one probe upward ends in a 429.
    assert len(converged) <= 1, run.refused
    for times in run.accepted.values():
        window = [t for t in times if t >= LEARNING]
        per_minute = (len(window) - 1) / (window[-1] - window[0]) * 60.0
        # Within 10% under the real limit (the bucket's single token allows no more).
        assert 0.9 * real_per_minute <= per_minute <= real_per_minute * 1.001
