"""A 429 that one chat's own limit explains holds back that chat only, not the whole bot.

Telegram's 429 does not say which limit refused. A chat that had another send shortly before
(within ``CHAT_BLAME_WINDOW``) is the likely culprit: it waits ``retry_after``; other chats
and the bot's rate go on. A 429 on a chat with no recent send pauses the bot as before.
"""

from __future__ import annotations

import pytest

from botdesk.clock import ManualClock
from botdesk.delivery.ratelimit import BotRateLimiter


async def test_a_429_on_a_busy_chat_holds_that_chat_only() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    await limiter.acquire(1)
    await clock.advance(1.2)  # the chat's 1/s allows the second one now
    await limiter.acquire(1)
    await clock.advance(0.1)
    rate_before = limiter.effective_rate()
    limiter.on_rate_limited(5.0, chat_id=1)
    now = clock.monotonic()
    assert limiter.ready_at(2) <= now  # another chat is not held back
    assert limiter.try_acquire(2)
    assert limiter.ready_at(1) >= now + 5.0  # the busy chat waits what Telegram asked
    assert limiter.effective_rate() == pytest.approx(rate_before)  # nothing learned
    assert limiter.rate_limited_since(now - 1.0) is None  # in-pipeline sends still leave
    await limiter.aclose()


async def test_a_429_on_a_chat_without_a_recent_send_pauses_the_bot() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    await limiter.acquire(1)
    await clock.advance(0.1)
    limiter.on_rate_limited(2.0, chat_id=1)
    now = clock.monotonic()
    assert limiter.ready_at(2) >= now + 2.0
    assert limiter.effective_rate() < 30.0  # the bot's rate was cut
    await limiter.aclose()


async def test_a_retried_send_is_not_blamed_on_its_own_first_attempt() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    await limiter.acquire(1)
    await clock.advance(0.1)
    limiter.on_rate_limited(1.0, chat_id=1)  # the bot's: it pauses
    await clock.advance(1.5)
    await limiter.acquire(1)  # the retry, within the blame window of the first attempt
    await clock.advance(0.1)
    limiter.on_rate_limited(1.0, chat_id=1)
    assert limiter.ready_at(2) >= clock.monotonic() + 1.0  # the bot's again, not the chat's
    await limiter.aclose()
