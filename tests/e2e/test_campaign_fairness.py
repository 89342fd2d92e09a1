"""The delivery engine shares a bot's rate among its running campaigns: a small campaign
started while a big one is sending finishes long before the big one (they used to go in id
order: the small one waited for the whole big one). Against the sandbox on loopback, where
the order of arrival is the sandbox's own record; each message still arrives once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select
from tests.e2e.campaign_support import copies, create, seed
from tests.e2e.support import eventually, register, running, write_config

from botdesk.app import App, open_app
from botdesk.campaigns import Campaigns
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Subscriber, SubscriberTag

BIG, SMALL = 150, 10

TOML = """
[assistant]
embeddings = false

[delivery]
rate = 100.0
in_flight = 8

[bots.shop]
auto_reply = ""
"""


async def _tag(app: App, chats: list[int], tag: str) -> None:
    async with app.db.write() as conn:
        sids = (
            await conn.execute(select(Subscriber.id).where(Subscriber.chat_id.in_(chats)))
        ).scalars()
        await conn.execute(insert(SubscriberTag), [{"subscriber_id": s, "tag": tag} for s in sids])


async def test_a_small_campaign_started_during_a_big_one_finishes_long_before_it(
    home: Path,
) -> None:
    write_config(home, TOML)
    async with (
        running_sandbox(seed=5, bot_rate=1000.0, bot_burst=50.0) as sb,
        open_app(home, configure_logs=False) as app,
    ):
        await register(app, sb, "shop", "shop_bot")
        users = [u.id for u in await seed(app, sb, "shop", "shop_bot", BIG + SMALL)]
        sb.world.bot("shop_bot").pending.clear()  # recorded already: no welcomes in the way
        await _tag(app, users[:BIG], "many")
        await _tag(app, users[BIG:], "few")
        big = await create(app, "shop", "BIG news", segment="tag:many")
        small = await create(app, "shop", "SMALL news", segment="tag:few")
        camps = Campaigns(app.db)
        async with running(app):
            await camps.start(big, now=datetime.now(UTC))

            async def big_under_way() -> bool:
                return len(copies(sb, "shop_bot", "BIG")) >= 20

            await eventually(big_under_way, within=20, every=0.01)
            await camps.start(small, now=datetime.now(UTC))
            big_at_start = len(copies(sb, "shop_bot", "BIG"))

            async def both_done() -> bool:
                return len(sb.messages(bot="shop_bot")) >= BIG + SMALL

            await eventually(both_done, within=30, every=0.05)
        texts = [m.get("text") or "" for m in sb.messages(bot="shop_bot")]
    # Arrival order, as the sandbox recorded it.
    last_small = max(i for i, t in enumerate(texts) if t.startswith("SMALL"))
    big_during = sum(1 for t in texts[:last_small] if t.startswith("BIG")) - big_at_start
    left = BIG - big_at_start
    print(f"big messages while the small one was sent: {big_during} of the {left} left")
    assert len(texts) == BIG + SMALL
    assert copies(sb, "shop_bot", "BIG") == Counter({u: 1 for u in users[:BIG]})
    assert copies(sb, "shop_bot", "SMALL") == Counter({u: 1 for u in users[BIG:]})
    # In id order the small one would finish after every BIG message left; shared, it
    # waits for what was queued (a window and a claim batch), then alternates.
    assert big_during < left // 2, (big_during, left)
