"""Helpers for campaign tests: subscribers seeded straight into the ledger, sandbox checks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from botdesk.app import App
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.store.models import Bot, Subscriber


async def seed(app: App, sb: Any, bot: str, username: str, n: int, **user_kw: Any) -> list[Any]:
    """n sandbox users who started the bot, recorded as active subscribers (no updates)."""
    users = sb.add_users(n, start_bots=[username], **user_kw)
    async with app.db.write() as conn:
        bot_id = (await conn.execute(select(Bot.id).where(Bot.name == bot))).scalar_one()
        now = datetime.now(UTC)
        await conn.execute(
            insert(Subscriber),
            [
                {
                    "bot_id": bot_id,
                    "chat_id": u.id,
                    "status": "active",
                    "first_name": u.first_name,
                    "username": u.username,
                    "language": u.language_code,
                    "joined_at": now,
                    "updated_at": now,
                    "is_group": False,
                }
                for u in users
            ],
        )
    return users


async def create(app: App, bot: str, text: str, **kw: Any) -> int:
    from botdesk.bots import BotRegistry

    rec = await BotRegistry(app.db, app.secrets).get(bot)
    info = await Campaigns(app.db).create(
        CampaignSpec(bot=bot, text=text, **kw), rec, now=datetime.now(UTC)
    )
    return info.id


def copies(sb: Any, username: str, needle: str) -> Counter[int]:
    """How many messages containing ``needle`` each chat received."""
    c: Counter[int] = Counter()
    for m in sb.messages(bot=username):
        if needle in (m.get("text") or m.get("caption") or ""):
            c[m["chat_id"]] += 1
    return c


async def status(app: App, cid: int) -> dict[str, Any]:
    return await Campaigns(app.db).status(cid, now=datetime.now(UTC))


def accounted(st: dict[str, Any]) -> int:
    return sum(
        st[k]
        for k in ("pending", "sending", "sent", "failed", "suppressed", "uncertain", "cancelled")
    )
