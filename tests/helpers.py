"""Rows inserted straight into the store for storage tests: a bot, its subscribers, a campaign
and its ledger rows, without the services that normally write them (each call takes an open
write connection; keyword values override or extend the defaults)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.store.models import Bot, Campaign, Delivery, Subscriber


async def add_bot(conn: AsyncConnection, **values: Any) -> int:
    """The bot ``shop`` (@shop_bot); its token is never used, so any secret name will do."""
    row = {"name": "shop", "telegram_id": 1, "username": "shop_bot", "token_secret": "x"}
    row.update(values)
    return int((await conn.execute(insert(Bot).values(**row).returning(Bot.id))).scalar_one())


async def add_subscriber(
    conn: AsyncConnection, bot_id: int, chat_id: int, *, status: str = "active", **values: Any
) -> int:
    res = await conn.execute(
        insert(Subscriber)
        .values(bot_id=bot_id, chat_id=chat_id, status=status, **values)
        .returning(Subscriber.id)
    )
    return int(res.scalar_one())


async def add_campaign(conn: AsyncConnection, bot_id: int, **values: Any) -> int:
    res = await conn.execute(
        insert(Campaign).values(bot_id=bot_id, **values).returning(Campaign.id)
    )
    return int(res.scalar_one())


async def add_delivery(
    conn: AsyncConnection, campaign_id: int, subscriber_id: int, chat_id: int, **values: Any
) -> int:
    res = await conn.execute(
        insert(Delivery)
        .values(campaign_id=campaign_id, subscriber_id=subscriber_id, chat_id=chat_id, **values)
        .returning(Delivery.id)
    )
    return int(res.scalar_one())
