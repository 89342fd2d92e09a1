"""The ledger of campaign actions (edit, recall): claim, mark acting, finish, recover.

A row goes ``pending -> acting -> edited | recalled | failed | suppressed | uncertain``.
``acting`` is committed before the request leaves; on recovery every row of a bot still in
``acting`` becomes ``uncertain``: the edit or deletion may have happened, and it is never
repeated automatically. A bot has one owner at a time (its lease), so claims live in that
process's memory; nothing else works on its rows.

Volumes are a campaign's audience at the bot's rate (30/s), so plain SQLAlchemy statements
on both backends are enough here; the send path's lanes are not needed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.delivery.ledger import _values
from botdesk.store.models import (
    Campaign,
    CampaignAction,
    CampaignActionRow,
    Delivery,
    Subscriber,
)

INTERRUPTED = {
    "edit": "interrupted while editing: the message may or may not have been edited",
    "recall": "interrupted while deleting: the message may or may not have been deleted",
}


@dataclass
class ActionClaim:
    id: int
    chat_id: int
    message_id: int
    attempts: int
    is_group: bool
    values: dict[str, str | None]
    message_ids: tuple[int, ...] = ()  # an album's messages (all deleted by a recall)


def _bot_actions(bot_id: int) -> Any:
    return (
        select(CampaignAction.id)
        .join(Campaign, Campaign.id == CampaignAction.campaign_id)
        .where(Campaign.bot_id == bot_id)
    )


async def recover(conn: AsyncConnection, *, bot_id: int, now: datetime) -> int:
    """A new owner of a bot: rows left ``acting`` become uncertain."""
    n = 0
    for kind, why in INTERRUPTED.items():
        ids = _bot_actions(bot_id).where(CampaignAction.kind == kind).scalar_subquery()
        res = await conn.execute(
            update(CampaignActionRow)
            .where(CampaignActionRow.action_id.in_(ids), CampaignActionRow.state == "acting")
            .values(state="uncertain", error=why, updated_at=now)
        )
        n += int(res.rowcount or 0)
    return n


async def claim(
    conn: AsyncConnection,
    *,
    action_id: int,
    limit: int,
    now_ts: float,
    now: datetime,
    held: Collection[int] = (),
) -> list[ActionClaim]:
    """Up to ``limit`` pending rows that are due and not ``held`` already; rows whose
    subscriber left since the campaign (blocked, stopped, gone) are suppressed here."""
    q = (
        select(
            CampaignActionRow.id,
            CampaignActionRow.chat_id,
            CampaignActionRow.message_id,
            CampaignActionRow.attempts,
            Subscriber.status,
            Subscriber.is_group,
            Subscriber.first_name,
            Subscriber.username,
            Subscriber.language,
            Subscriber.fields,
            Delivery.message_ids,
        )
        .join(Subscriber, Subscriber.id == CampaignActionRow.subscriber_id, isouter=True)
        .join(Delivery, Delivery.id == CampaignActionRow.delivery_id, isouter=True)
        .where(
            CampaignActionRow.action_id == action_id,
            CampaignActionRow.state == "pending",
            or_(CampaignActionRow.not_before.is_(None), CampaignActionRow.not_before <= now_ts),
        )
        .order_by(CampaignActionRow.id)
        .limit(limit + len(held))
    )
    out: list[ActionClaim] = []
    gone: list[tuple[int, str]] = []
    for r in (await conn.execute(q)).all():
        if r.id in held:
            continue
        if len(out) + len(gone) >= limit:
            break
        if r.status != "active":
            gone.append((r.id, f"subscriber {r.status or 'removed'} since the campaign"))
            continue
        out.append(
            ActionClaim(
                id=r.id,
                chat_id=r.chat_id,
                message_id=r.message_id,
                attempts=r.attempts,
                is_group=bool(r.is_group),
                values=_values(r),
                message_ids=tuple(int(m) for m in r.message_ids or ()),
            )
        )
    for rid, why in gone:
        await conn.execute(
            update(CampaignActionRow)
            .where(CampaignActionRow.id == rid, CampaignActionRow.state == "pending")
            .values(state="suppressed", error=why, updated_at=now)
        )
    return out


async def mark_acting(conn: AsyncConnection, row_id: int, *, now: datetime) -> bool:
    """Commit ``acting`` for a row still pending whose subscriber is still active; False if
    it is not (nothing to do). Consent is re-read in the statement that marks the row, like
    ``ledger.mark_sending``: a subscriber who sent /stop, blocked the bot or was removed after
    the claim is not edited or recalled; the row is suppressed with the subscriber's status."""
    consent = (
        select(Subscriber.id)
        .where(Subscriber.id == CampaignActionRow.subscriber_id, Subscriber.status == "active")
        .exists()
    )
    res = await conn.execute(
        update(CampaignActionRow)
        .where(CampaignActionRow.id == row_id, CampaignActionRow.state == "pending", consent)
        .values(state="acting", attempts=CampaignActionRow.attempts + 1, updated_at=now)
    )
    if res.rowcount:
        return True
    status = (
        select(Subscriber.status)
        .where(Subscriber.id == CampaignActionRow.subscriber_id)
        .scalar_subquery()
    )
    await conn.execute(
        update(CampaignActionRow)
        .where(CampaignActionRow.id == row_id, CampaignActionRow.state == "pending")
        .values(
            state="suppressed",
            error="subscriber " + func.coalesce(status, "removed") + " before acting",
            updated_at=now,
        )
    )
    return False


async def finish(
    conn: AsyncConnection,
    row_id: int,
    *,
    state: str,
    now: datetime,
    error: str | None = None,
    not_before: float | None = None,
) -> None:
    await conn.execute(
        update(CampaignActionRow)
        .where(and_(CampaignActionRow.id == row_id, CampaignActionRow.state == "acting"))
        .values(state=state, error=error, not_before=not_before, updated_at=now)
    )


async def counts(conn: AsyncConnection, action_id: int) -> dict[str, int]:
    rows = (
        await conn.execute(
            select(CampaignActionRow.state, func.count())
            .where(CampaignActionRow.action_id == action_id)
            .group_by(CampaignActionRow.state)
        )
    ).all()
    return {r[0]: int(r[1]) for r in rows}


async def open_work(conn: AsyncConnection, action_id: int) -> int:
    """Rows that still need a worker (pending or acting)."""
    return int(
        (
            await conn.execute(
                select(func.count()).where(
                    CampaignActionRow.action_id == action_id,
                    CampaignActionRow.state.in_(("pending", "acting")),
                )
            )
        ).scalar()
        or 0
    )
