"""A send admitted before a 429 but not yet on the wire learns of it (``rate_limited_since``).

Such a send (its ``sending`` mark still committing, or held by the wire pacer) would draw
another 429 from the same empty bucket; the worker and the reply path put it back instead.
"""

from __future__ import annotations

import pytest

from botdesk.clock import ManualClock
from botdesk.delivery.ratelimit import BotRateLimiter


async def test_admitted_before_a_429_is_told_how_long_the_pause_still_runs() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=30.0)
    await limiter.acquire(1)
    admitted = clock.monotonic()
    assert limiter.rate_limited_since(admitted) is None  # no 429 yet
    await clock.advance(0.05)
    limiter.on_rate_limited(2.0)
    assert limiter.rate_limited_since(admitted) == pytest.approx(2.0)
    await clock.advance(0.5)
    assert limiter.rate_limited_since(admitted) == pytest.approx(1.5)
    # admitted after the 429 (once the pause ended): nothing to report
    await clock.advance(2.0)
    assert limiter.rate_limited_since(clock.monotonic()) is None
    await limiter.aclose()
