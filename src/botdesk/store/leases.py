"""Per-bot ownership leases: one worker at a time polls a bot and sends its campaigns.

A lease is a row (bot_id, owner, expires_at). Taking it is one conditional statement that
succeeds only if the row is free, expired or already ours, so two workers can never both
believe they own a bot; the owner renews it (heartbeat) well before it expires, and a worker
that dies simply stops renewing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from botdesk.store.db import Database
from botdesk.store.models import BotLease


async def acquire(db: Database, *, bot_id: int, owner: str, ttl: float, now: datetime) -> bool:
    """Take or renew the lease; True if ``owner`` holds it until ``now + ttl``."""
    expires = now + timedelta(seconds=ttl)
    try:
        async with db.write() as conn:
            res = await conn.execute(
                update(BotLease)
                .where(
                    BotLease.bot_id == bot_id,
                    or_(BotLease.owner == owner, BotLease.expires_at < now),
                )
                .values(owner=owner, expires_at=expires)
            )
            if res.rowcount:
                return True
            held = (
                await conn.execute(select(BotLease.owner).where(BotLease.bot_id == bot_id))
            ).first()
            if held is not None:
                return False
            await conn.execute(
                insert(BotLease).values(bot_id=bot_id, owner=owner, expires_at=expires)
            )
            return True
    except IntegrityError:  # another worker inserted the row between our two statements
        return False


async def release(db: Database, *, bot_id: int, owner: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            delete(BotLease).where(BotLease.bot_id == bot_id, BotLease.owner == owner)
        )


async def holder(db: Database, *, bot_id: int, now: datetime) -> str | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(BotLease.owner).where(BotLease.bot_id == bot_id, BotLease.expires_at >= now)
            )
        ).first()
    return row[0] if row else None
