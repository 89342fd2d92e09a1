"""limiter + gateway + policy together against the sandbox with faults: at most one copy each.

A minimal send loop (the worker's job, reduced to executing decisions) over real HTTP. The
sandbox injects 429s, resets and 5xx; its own Telegram-like limiter must never refuse a send
our limiter admitted, and no recipient may get two copies.
"""

from __future__ import annotations

import asyncio
import random

from botdesk.clock import SystemClock
from botdesk.delivery.policy import (
    Decision,
    MarkFailed,
    MarkSent,
    MarkUncertain,
    Retry,
    RetryPolicy,
    decide,
)
from botdesk.delivery.ratelimit import BotRateLimiter
from botdesk.sandbox.testing import running_sandbox
from botdesk.telegram.gateway import OutgoingMessage, bot_session, send

TOKEN = "515151:" + "P" * 35
POLICY = RetryPolicy(base_backoff=0.05, max_backoff=0.2)


async def test_faulty_sandbox_run_has_no_duplicates_and_no_provoked_429() -> None:
    async with running_sandbox(seed=7) as sb:
        sb.set_faults("429=0.08,reset=0.05,5xx=0.1")
        sb.add_bot("prim_bot", TOKEN)
        users = [u.id for u in sb.add_users(40, start_bots=["prim_bot"])]
        limiter = BotRateLimiter(clock=SystemClock())
        rng = random.Random(3)
        outcomes: dict[int, Decision] = {}

        async with bot_session(TOKEN, api_base=sb.base_url) as bot:

            async def deliver(chat: int) -> None:
                attempt = 1
                while True:
                    await limiter.acquire(chat)
                    result = await send(bot, OutgoingMessage(chat, f"hi {chat}", None))
                    decision = decide(result, attempt=attempt, policy=POLICY, rng=rng)
                    if not isinstance(decision, Retry):
                        outcomes[chat] = decision
                        return
                    if decision.pause_bot:
                        limiter.on_rate_limited(decision.delay_s)
                    else:
                        await asyncio.sleep(decision.delay_s)
                    attempt += 1

            await asyncio.wait_for(asyncio.gather(*(deliver(u) for u in users)), 60)

        copies = {u: len(sb.messages("prim_bot", u)) for u in users}
        stats = sb.stats()

    assert set(outcomes) == set(users)  # everyone accounted for
    assert max(copies.values()) <= 1  # nobody got two copies
    for user, decision in outcomes.items():
        if isinstance(decision, MarkSent):
            assert copies[user] == 1
        elif isinstance(decision, MarkFailed):
            assert copies[user] == 0  # 5xx before processing, retries exhausted
        else:
            assert isinstance(decision, MarkUncertain)  # a reset after the request was read
    assert stats["faults"].get("reset", 0) >= 1
    assert stats["faults"].get("429", 0) >= 1
    assert sum(isinstance(d, MarkUncertain) for d in outcomes.values()) == stats["faults"]["reset"]
    # Every 429 came from fault injection; the limiter itself never provoked one.
    assert stats["rate_limited"] == 0
    assert limiter.stats().rate_limited == stats["faults"].get("429", 0)
