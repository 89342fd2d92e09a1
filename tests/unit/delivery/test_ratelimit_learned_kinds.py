"""The limiter's other learned limits and costs, on a fake clock: the chat controller, paid
slow start, an album charged per item."""

from __future__ import annotations

import pytest

from botdesk.clock import ManualClock
from botdesk.delivery.ratecontrol import ChatRateController, RateController
from botdesk.delivery.ratelimit import BotRateLimiter


async def test_an_album_is_charged_one_token_per_item() -> None:
    clock = ManualClock()
    limiter = BotRateLimiter(clock=clock, rate=10.0, burst=1.0, safety=1.0)
    await limiter.acquire(1, cost=4)
    # The next send to another chat waits for the refill of the album's four messages.
    assert limiter.ready_at(2) == pytest.approx(0.4, abs=1e-3)
    assert limiter.stats().admitted == 4
    with pytest.raises(ValueError):
        await limiter.acquire(3, cost=0)


def test_a_chat_controller_cuts_once_per_burst_and_climbs_back() -> None:
    ctl = ChatRateController(1.0, quiet=10.0, growth=0.02)
    assert ctl.on_refused(0.0, 0.5, admitted_at=0.0) == pytest.approx(0.5)
    # A send admitted before that cut (paced at the old rate) does not cut again.
    assert ctl.on_refused(0.1, 0.5, admitted_at=-0.1) == pytest.approx(0.5)
    assert ctl.rate(5.0) == pytest.approx(0.5)
    assert ctl.rate(10.0 + 200.0) == 1.0  # quiet, then probing back up to the configured


def test_paid_sends_ramp_up_from_the_free_rate_until_a_429() -> None:
    ctl = RateController(1000.0, ramp_from=30.0, ramp_doubling=1.0)
    assert ctl.rate(0.0) == 30.0 and ctl.learned(0.0) is None
    ctl.on_accepted(sent_at=1.0)  # the ramp starts with the first accepted send
    assert ctl.rate(3.0) == pytest.approx(120.0)
    assert ctl.rate(7.0) == 1000.0  # reached: no ramp any more
    ramped = RateController(1000.0, ramp_from=30.0, ramp_doubling=1.0)
    ramped.on_accepted(sent_at=0.0)
    assert ramped.on_rate_limited(2.0, new_episode=True) == pytest.approx(60.0)
    assert ramped.learned(2.5) == pytest.approx(60.0)
