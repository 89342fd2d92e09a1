"""What an operator sees at a glance: subscribers by status, joins and leaves per day, and
which worker holds each bot. Read-only; the dashboard of the desktop console is built on it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from botdesk.store.db import Database
from botdesk.store.models import BotLease, ConsentEvent, Subscriber, Worker

# consent_events kinds, grouped the way the dashboard charts them
JOIN_KINDS = ("subscribe", "resubscribe", "imported")
LEAVE_KINDS = ("unsubscribe",)
BLOCK_KINDS = ("block", "gone")


@dataclass(frozen=True)
class DayCounts:
    day: date
    joins: int
    leaves: int
    blocks: int


async def status_counts(db: Database, bot_id: int) -> dict[str, int]:
    """Subscribers of one bot by status (active, unsubscribed, blocked, ...)."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(Subscriber.status, func.count())
                .where(Subscriber.bot_id == bot_id)
                .group_by(Subscriber.status)
            )
        ).all()
    return {str(s): int(n) for s, n in rows}


async def daily_changes(db: Database, bot_id: int, *, days: int, now: datetime) -> list[DayCounts]:
    """Joins, leaves and blocks per UTC day for the last ``days`` days (oldest first, no gaps)."""
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(ConsentEvent.at, ConsentEvent.kind).where(
                    ConsentEvent.bot_id == bot_id, ConsentEvent.at >= since
                )
            )
        ).all()
    per: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for at, kind in rows:
        slot = per[at.date()]
        if kind in JOIN_KINDS:
            slot[0] += 1
        elif kind in LEAVE_KINDS:
            slot[1] += 1
        elif kind in BLOCK_KINDS:
            slot[2] += 1
    first = since.date()
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        j, left, b = per.get(d, (0, 0, 0))
        out.append(DayCounts(d, j, left, b))
    return out


async def holders(db: Database, *, now: datetime) -> dict[int, str]:
    """bot id -> the worker whose lease on it is live (bots nobody serves are absent)."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(BotLease.bot_id, BotLease.owner).where(BotLease.expires_at >= now)
            )
        ).all()
    return {int(b): str(o) for b, o in rows}


async def live_workers(db: Database, *, ttl: float, now: datetime) -> int:
    """How many `serve` workers have beaten within ``ttl`` seconds."""
    async with db.read() as conn:
        n = (
            await conn.execute(
                select(func.count()).where(Worker.seen_at >= now - timedelta(seconds=ttl))
            )
        ).scalar()
    return int(n or 0)
