"""The other limits learned from 429s like the bot-wide one: per chat, paid broadcasts, edits.

Against the sandbox over loopback with the real aiogram client; the sandbox enforces a lower
limit than botdesk is configured for and the tests count the 429s it answered. High rates and
few recipients keep each test to a few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.e2e.action_support import act, records, sent_campaign
from tests.e2e.campaign_support import copies, create, seed, status
from tests.e2e.support import register

from botdesk.app import open_app
from botdesk.campaign_actions import ActionSpec
from botdesk.campaigns import Campaigns
from botdesk.clock import SystemClock
from botdesk.delivery.pacing import Gate
from botdesk.delivery.ratelimit import BotRateLimiter, Priority
from botdesk.media import MediaItem
from botdesk.runtime.foreground import run_campaign
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Bot
from botdesk.telegram.gateway import Outcome, OutgoingMessage, bot_session, get_chat, send

TOML = "[network]\nread_timeout = 5.0\nconnect_timeout = 2.0\n"


def refused(sb: Any) -> int:
    return int(sb.stats()["bots"].get("shop_bot", {}).get("rate_limited", 0))


async def learned(app: Any) -> tuple[float | None, float | None]:
    async with app.db.read() as conn:
        row = (
            await conn.execute(
                select(Bot.learned_rate, Bot.learned_paid_rate).where(Bot.name == "shop")
            )
        ).one()
    return row[0], row[1]


async def test_the_per_chat_limit_is_learned_from_the_chats_429s() -> None:
    # botdesk believes a chat takes 40 msg/s; the sandbox allows 8 (no burst). Replies to one
    # chat through the gate: a few 429s, then the chat is paced under 8/s with none.
    real = 8.0
    async with running_sandbox(seed=21, chat_rate=real, chat_burst=1.0) as sb:
        info = sb.add_bot("shop_bot")
        (user,) = sb.add_users(1, start_bots=["shop_bot"])
        limiter = BotRateLimiter(clock=SystemClock(), chat_rate=40.0)
        gate = Gate(limiter, limiter.clock)
        outcomes: list[Outcome] = []
        async with bot_session(info.token, api_base=sb.base_url) as bot:
            while outcomes.count(Outcome.SENT) < 14:
                at = await gate.admit(user.id, priority=Priority.REPLY)
                sent_at = limiter.clock.monotonic()
                result = await send(bot, OutgoingMessage(user.id, f"n{len(outcomes)}", None))
                await gate.answered(result, sent_at=sent_at, chat_id=user.id)
                outcomes.append(result.outcome)
                assert at <= limiter.clock.monotonic()
        await limiter.aclose()
    chat_rate, _group = limiter.chat_rates()
    n429 = outcomes.count(Outcome.RETRY_AFTER)
    assert n429 == refused(sb) and 1 <= n429 <= 4
    assert 0.45 * real <= chat_rate <= real
    last = len(outcomes) - 1 - outcomes[::-1].index(Outcome.RETRY_AFTER)
    assert len(outcomes) - last > 8  # settled: the last eight and more drew none
    assert limiter.effective_rate() > 29  # the bot's own rate was never cut
    assert limiter.stats().chat_limited == n429


async def test_a_paid_broadcast_learns_the_paid_limit_and_stores_it(home: Path) -> None:
    # Paid broadcasts are configured for 1,000/s; the sandbox allows 60/s. They start at the
    # free rate and ramp up (paid_slow_start): the first 429 comes at under twice the real limit.
    real = 60.0
    async with running_sandbox(seed=22, paid_rate=real, star_balance=1000.0) as sb:
        (home / "botdesk.toml").write_text("[delivery]\npaid_slow_start = true\n" + TOML)
        async with open_app(home, configure_logs=False) as app:
            await register(app, sb, "shop", "shop_bot")
            users = await seed(app, sb, "shop", "shop_bot", 160)
            cid = await create(app, "shop", "paid news", paid=True)
            stats = await run_campaign(app, cid)
            st = await status(app, cid)
            free, paid = await learned(app)
    assert stats.sent == 160 == st["sent"]
    got = copies(sb, "shop_bot", "paid news")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}
    assert 1 <= refused(sb) <= 8
    assert free is None  # the free rate was not blamed
    assert paid is not None and 0.4 * real <= paid <= real


async def test_an_edit_campaign_at_a_low_real_limit_learns_it(home: Path) -> None:
    # Sent at full speed; then the sandbox's limit falls to 15/s and the campaign is edited.
    real = 15.0
    async with running_sandbox(seed=23, bot_rate=60.0, bot_burst=5.0) as sb:
        (home / "botdesk.toml").write_text(TOML)
        async with open_app(home, configure_logs=False) as app:
            cid, users = await sent_campaign(app, sb, 24, "price: 10")
            sent_429s = refused(sb)
            sb.set_limits(bot_rate=real)
            st = await act(app, ActionSpec(campaign_id=cid, kind="edit", text="price: 12"))
            free, _paid = await learned(app)
    edit_429s = refused(sb) - sent_429s
    assert st["edited"] == 24
    got = records(sb)
    assert {m["chat_id"] for m in got} == {u.id for u in users}
    assert all(m["text"] == "price: 12" and m["edit_calls"] == 1 for m in got)
    assert 1 <= edit_429s <= 6
    assert free is not None and 0.4 * real <= free <= real


async def test_an_album_is_charged_one_message_per_item(home: Path, tmp_path: Path) -> None:
    # Albums of 3 at a real (and configured) limit of 12/s: 8 albums are 24 messages, 2 s.
    # Charged as one admission each they would leave at 12 albums/s and draw 429s.
    photo = tmp_path / "a.png"
    photo.write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
        )
    )
    album = [MediaItem("photo", photo)] * 3
    async with running_sandbox(seed=24, bot_rate=12.0, bot_burst=3.0) as sb:
        (home / "botdesk.toml").write_text("[delivery]\nrate = 12.0\n" + TOML)
        async with open_app(home, configure_logs=False) as app:
            await register(app, sb, "shop", "shop_bot")
            users = await seed(app, sb, "shop", "shop_bot", 8)
            cid = await create(app, "shop", "spring album", album=album)
            t0 = time.monotonic()
            stats = await run_campaign(app, cid)
            took = time.monotonic() - t0
    assert stats.sent == 8
    assert len(sb.messages(bot="shop_bot")) == 24 and {u.id for u in users} == {
        m["chat_id"] for m in sb.messages(bot="shop_bot")
    }
    assert refused(sb) == 0
    assert took >= (24 - 3) / 12.0 * 0.9  # paced as 24 messages, not 8


async def test_getchat_calls_go_through_the_gate_and_wait_out_a_429() -> None:
    # botdesk believes 30/s; the sandbox allows 2 calls/s with no burst. Six getChat in a row
    # through ``Gate.call``: the ones refused wait retry_after and ask again, every call ends
    # with the chat's real answer.
    async with running_sandbox(seed=25, bot_rate=2.0, bot_burst=1.0) as sb:
        info = sb.add_bot("shop_bot")
        (user,) = sb.add_users(1, start_bots=["shop_bot"])
        limiter = BotRateLimiter(clock=SystemClock())
        gate = Gate(limiter, limiter.clock)
        async with bot_session(info.token, api_base=sb.base_url) as bot:
            results = [
                await gate.call(lambda: get_chat(bot, user.id), chat_id=user.id) for _ in range(6)
            ]
            gone = await gate.call(lambda: get_chat(bot, 424242), chat_id=424242)
        await limiter.aclose()
    assert [r.outcome for r in results] == [Outcome.SENT] * 6
    assert gone.outcome is Outcome.CHAT_GONE
    assert 1 <= refused(sb) <= 3  # learned after the first few; each one was asked again
    assert limiter.stats().rate_limited == refused(sb)


async def test_a_copy_campaigns_source_check_waits_out_a_429(home: Path) -> None:
    # The bot's bucket is empty when the campaign asks getChat of its source (the sandbox
    # allows 1 call/s): the 429 is waited out and the source asked again, so an unknown
    # source stops the campaign before any copy, as it does without the 429.
    async with running_sandbox(seed=26, bot_rate=1.0, bot_burst=1.0) as sb:
        async with open_app(home, configure_logs=False) as app:
            info = await register(app, sb, "shop", "shop_bot")
            await seed(app, sb, "shop", "shop_bot", 5)
            cid = await create(app, "shop", "", copy_from="-1001234567890:5")
            async with bot_session(info.token, api_base=sb.base_url) as bot:
                assert (await get_chat(bot, 1)).outcome is not Outcome.RETRY_AFTER
            await run_campaign(app, cid)
            st = await status(app, cid)
            report = await Campaigns(app.db).report(cid)
    assert refused(sb) >= 1  # the source check drew the 429 and asked again
    assert st["state"] == "cancelled" and st["cancelled"] == 5 and st["sent"] == 0
    assert "source chat -1001234567890 not found" in report["reasons"][0]["reason"]
    assert sb.messages(bot="shop_bot") == []
