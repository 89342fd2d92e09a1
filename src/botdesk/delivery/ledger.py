"""The delivery ledger's statements: claim, mark sending, finish, recover.

A row goes ``pending -> sending -> sent | failed | suppressed | uncertain`` (or ``cancelled``
while still pending). ``sending`` is committed before the request leaves; on recovery every
row of a bot still in ``sending`` becomes ``uncertain``: the request may have reached
Telegram, and sendMessage has no idempotency key, so it is never resent automatically.

Claiming marks rows with the worker's id while they stay ``pending`` (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), so two workers never hold the same row; claims are dropped when a
worker takes over a bot, since a bot has one owner at a time (its lease).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.store.models import Campaign, Delivery, Subscriber


@dataclass
class Claimed:
    id: int
    campaign_id: int
    subscriber_id: int
    chat_id: int
    attempts: int
    is_group: bool
    values: dict[str, str | None]


def _values(row: Any) -> dict[str, str | None]:
    fields = row.fields if isinstance(row.fields, dict) else {}
    out: dict[str, str | None] = {str(k): None if v is None else str(v) for k, v in fields.items()}
    out.update(
        first_name=row.first_name,
        username=row.username,
        language=row.language,
        chat_id=str(row.chat_id),
    )
    return out


async def recover(conn: AsyncConnection, *, bot_id: int, now: datetime) -> int:
    """A new owner of a bot: rows left ``sending`` become uncertain; old claims are dropped."""
    campaign_ids = select(Campaign.id).where(Campaign.bot_id == bot_id).scalar_subquery()
    res = await conn.execute(
        update(Delivery)
        .where(Delivery.campaign_id.in_(campaign_ids), Delivery.state == "sending")
        .values(
            state="uncertain",
            error="interrupted while sending: the message may or may not have been delivered",
            lease_owner=None,
            updated_at=now,
        )
    )
    await conn.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id.in_(campaign_ids),
            Delivery.state == "pending",
            Delivery.lease_owner.is_not(None),
        )
        .values(lease_owner=None)
    )
    return int(res.rowcount or 0)


async def claim(
    conn: AsyncConnection,
    *,
    campaign_id: int,
    owner: str,
    limit: int,
    now_ts: float,
    postgres: bool,
) -> list[Claimed]:
    """Take up to ``limit`` pending rows that are due; skips rows other workers hold."""
    pick = (
        select(Delivery.id)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.state == "pending",
            Delivery.lease_owner.is_(None),
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now_ts),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await conn.execute(pick)).scalars())
    if not ids:
        return []
    await conn.execute(update(Delivery).where(Delivery.id.in_(ids)).values(lease_owner=owner))
    rows = (
        await conn.execute(
            select(
                Delivery.id,
                Delivery.subscriber_id,
                Delivery.chat_id,
                Delivery.attempts,
                Subscriber.status,
                Subscriber.is_group,
                Subscriber.first_name,
                Subscriber.username,
                Subscriber.language,
                Subscriber.fields,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id, isouter=True)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        )
    ).all()
    claimed: list[Claimed] = []
    gone: list[tuple[int, str]] = []
    for r in rows:
        if r.status != "active":
            # Stopped or blocked since the snapshot: skipped, and recorded why.
            gone.append((r.id, f"subscriber {r.status or 'removed'} before delivery"))
            continue
        claimed.append(
            Claimed(
                id=r.id,
                campaign_id=campaign_id,
                subscriber_id=r.subscriber_id,
                chat_id=r.chat_id,
                attempts=r.attempts,
                is_group=bool(r.is_group),
                values=_values(r),
            )
        )
    if gone:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == bindparam("rid"))
            .values(state="suppressed", error=bindparam("err"), lease_owner=None),
            [{"rid": i, "err": e} for i, e in gone],
        )
    return claimed


async def mark_sending(conn: AsyncConnection, ids: Sequence[int], *, now: datetime) -> set[int]:
    """Commit ``sending`` for rows still pending (a cancel may have raced us)."""
    res = await conn.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == "pending")
        .values(state="sending", attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery.id)
    )
    return set(res.scalars())


async def finish(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Final or retry states for rows in ``sending``: keys rid, state, message_id, error,
    not_before, updated_at."""
    if rows:
        await conn.execute(
            update(Delivery)
            .where(and_(Delivery.id == bindparam("rid"), Delivery.state == "sending"))
            .values(
                state=bindparam("b_state"),
                message_id=bindparam("b_message_id"),
                error=bindparam("b_error"),
                not_before=bindparam("b_not_before"),
                updated_at=bindparam("b_at"),
                lease_owner=None,
            ),
            [
                {
                    "rid": r["rid"],
                    "b_state": r["state"],
                    "b_message_id": r.get("message_id"),
                    "b_error": r.get("error"),
                    "b_not_before": r.get("not_before"),
                    "b_at": r["updated_at"],
                }
                for r in rows
            ],
        )


async def release(conn: AsyncConnection, ids: Sequence[int], *, not_before: float | None) -> None:
    """Give claimed, unsent rows back (pause, shutdown, a chat not ready yet)."""
    if ids:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.state == "pending")
            .values(lease_owner=None, not_before=not_before)
        )


async def counts(conn: AsyncConnection, campaign_id: int) -> dict[str, int]:
    rows = (
        await conn.execute(
            select(Delivery.state, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.state)
        )
    ).all()
    return {r[0]: int(r[1]) for r in rows}


async def open_work(conn: AsyncConnection, campaign_id: int) -> int:
    """Rows that still need a worker (pending or sending)."""
    return int(
        (
            await conn.execute(
                select(func.count()).where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.state.in_(("pending", "sending")),
                )
            )
        ).scalar()
        or 0
    )
