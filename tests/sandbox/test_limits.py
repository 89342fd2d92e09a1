"""Rate limits and paid broadcasts: properties of the limiter and behaviour on the wire."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from hypothesis import given, settings
from hypothesis import strategies as st

from botdesk.sandbox import Sandbox
from botdesk.sandbox.limits import Limiter
from botdesk.sandbox.testing import aiogram_bot


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def limiter(clock: Clock, **kw: Any) -> Limiter:
    args: dict[str, Any] = {
        "bot_rate": 30.0,
        "bot_burst": 10.0,
        "chat_rate": 1.0,
        "chat_burst": 3.0,
        "group_per_minute": 20.0,
        "group_burst": 5.0,
        "paid_rate": 1000.0,
    }
    args.update(kw)
    return Limiter(clock=clock, **args)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(1.0, 100.0),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 0.2), min_size=1, max_size=300),
)
def test_never_admits_more_than_rate_times_window_plus_burst(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    lim = limiter(clock, bot_rate=rate, bot_burst=float(burst))
    admitted = []
    for i, gap in enumerate(gaps):
        clock.t += gap
        if lim.check(1, 10_000 + i, group=False, paid=False, stars_tenths=0).admitted:
            admitted.append(clock.t)
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate * (admitted[j] - admitted[i]) + burst + 1e-6


@settings(max_examples=60, deadline=None)
@given(
    jitter=st.lists(st.floats(0.0, 0.09), min_size=200, max_size=200), share=st.floats(0.5, 0.995)
)
def test_admits_a_steady_stream_with_jitter(jitter: list[float], share: float) -> None:
    clock = Clock()
    lim = limiter(clock)
    rate = 30.0 * share
    arrivals = sorted(k / rate + j for k, j in enumerate(jitter))
    for k, t in enumerate(arrivals):
        clock.t = 1000.0 + t
        assert lim.check(1, 10_000 + k, group=False, paid=False, stars_tenths=0).admitted
    # and one chat at 99.5% of 1 msg/s, same jitter
    clock2, lim2 = Clock(), limiter(Clock())
    lim2.clock = clock2
    for t in sorted(k / 0.995 + j for k, j in enumerate(jitter[:60])):
        clock2.t = 1000.0 + t
        assert lim2.check(1, 5, group=False, paid=False, stars_tenths=0).admitted


def test_burst_far_over_is_refused_with_whole_seconds() -> None:
    clock = Clock()
    lim = limiter(clock)
    decisions = [lim.check(1, 100 + i, group=False, paid=False, stars_tenths=0) for i in range(40)]
    refused = [d for d in decisions if not d.admitted]
    assert len(refused) == 30 and all(d.retry_after >= 1 for d in refused)
    chat = [lim.check(2, 7, group=False, paid=False, stars_tenths=0) for _ in range(4)]
    assert [d.admitted for d in chat] == [True, True, True, False]


def test_group_limit_is_per_minute() -> None:
    clock = Clock()
    lim = limiter(clock)
    admitted = 0
    for _ in range(60):  # one attempt per second for a minute
        admitted += lim.check(1, -100, group=True, paid=False, stars_tenths=0).admitted
        clock.t += 1.0
    assert admitted <= 20 + 5 and admitted >= 20


def test_flood_penalty_doubles_the_window() -> None:
    clock = Clock()
    lim = limiter(clock, flood_penalty=True)
    for _ in range(3):
        assert lim.check(1, 9, group=False, paid=False, stars_tenths=0).admitted
    waits = [lim.check(1, 9, group=False, paid=False, stars_tenths=0).retry_after for _ in range(3)]
    assert waits == [1, 2, 4]
    clock.t += 5
    assert lim.check(1, 9, group=False, paid=False, stars_tenths=0).admitted


def test_paid_broadcast_costs_stars_above_free_rate() -> None:
    clock = Clock()
    lim = limiter(clock)
    decisions = [
        lim.check(1, 100 + i, group=False, paid=True, stars_tenths=1000) for i in range(300)
    ]
    assert all(d.admitted for d in decisions)
    assert sum(d.paid for d in decisions) == 290  # burst of 10 free, the rest paid
    assert lim.check(1, 5000, group=False, paid=True, stars_tenths=0).no_stars


async def test_wire_429_and_paid_broadcast(sandbox: Sandbox, shop: Any) -> None:
    clock = Clock()
    sandbox.limiter.clock = clock  # frozen time: the buckets never refill
    users = sandbox.add_users(30, start_bots=["shop_bot"])
    async with aiogram_bot(sandbox, shop.token) as bot:
        for u in users[:10]:
            await bot.send_message(u.id, "free")
        with pytest.raises(TelegramRetryAfter) as err:
            await bot.send_message(users[10].id, "over")
        assert err.value.retry_after >= 1
        sandbox.set_star_balance("shop_bot", 1.0)
        for u in users[10:20]:
            await bot.send_message(u.id, "paid", allow_paid_broadcast=True)
        with pytest.raises(TelegramBadRequest, match="not enough Telegram Stars"):
            await bot.send_message(users[20].id, "broke", allow_paid_broadcast=True)
    stats = sandbox.stats()
    assert stats["accepted"] == 20 and stats["rate_limited"] == 1
    assert stats["stars_spent"] == pytest.approx(1.0) and sandbox.star_balance("shop_bot") == 0
    assert stats["bots"]["shop_bot"]["paid"] == 10
    assert sum(m["paid"] for m in sandbox.messages()) == 10
