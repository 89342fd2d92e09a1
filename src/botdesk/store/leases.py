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


async def beat(db: Database, *, owner: str, now: datetime) -> None:
    """Say this worker is alive (``workers`` row), for fair sharing of bots."""
    from botdesk.store.models import Worker

    async with db.write() as conn:
        res = await conn.execute(update(Worker).where(Worker.owner == owner).values(seen_at=now))
        if not res.rowcount:
            await conn.execute(insert(Worker).values(owner=owner, seen_at=now))


async def leave(db: Database, *, owner: str) -> None:
    from botdesk.store.models import Worker

    async with db.write() as conn:
        await conn.execute(delete(Worker).where(Worker.owner == owner))


async def standing(
    db: Database, *, owner: str, bots: int, ttl: float, now: datetime
) -> tuple[list[int], int]:
    """(ids of the bots this owner holds, ascending; its fair share = ceil(bots / live))."""
    from sqlalchemy import func

    from botdesk.store.models import Worker

    async with db.read() as conn:
        live = (
            await conn.execute(
                select(func.count()).where(Worker.seen_at >= now - timedelta(seconds=ttl))
            )
        ).scalar() or 0
        held = (
            await conn.execute(
                select(BotLease.bot_id)
                .where(BotLease.owner == owner, BotLease.expires_at >= now)
                .order_by(BotLease.bot_id)
            )
        ).scalars()
        ids = [int(i) for i in held]
    return ids, -(-bots // max(1, int(live)))
