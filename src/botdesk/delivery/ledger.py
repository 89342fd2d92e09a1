"""The delivery ledger's statements: claim, mark sending, finish, recover.

A row goes ``pending -> sending -> sent | failed | suppressed | uncertain`` (or ``cancelled``
while still pending). ``sending`` is committed before the request leaves; on recovery every
row of a bot still in ``sending`` becomes ``uncertain``: the request may have reached
Telegram, and sendMessage has no idempotency key, so it is never resent automatically.

Consent is checked twice: when rows are claimed (a subscriber who left since the snapshot is
suppressed) and again in the very statement that commits ``sending``, just before the
request leaves: a row whose subscriber sent /stop, blocked the bot or was removed after the
claim does not take ``sending``; it becomes ``suppressed`` in the same transaction, with
why. The check is a primary-key probe of ``subscribers`` per row inside the batch's one
``UPDATE``, not a query per message.

Claiming marks rows with the worker's id while they stay ``pending`` (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), so two workers never hold the same row; claims are dropped when a
worker takes over a bot, since a bot has one owner at a time (its lease).

The engine's hot path (``claim_batch``, ``commit_batch``, ``release_batch``) runs as plain
SQL: on a SQLite file on the store's lane (one thread hop per transaction), on PostgreSQL on
the pooled connection's asyncpg connection (see store/db.py); an in-memory SQLite uses the
SQLAlchemy statements below. The tests run every path.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import subscribers
from botdesk.store.db import Database
from botdesk.store.models import Campaign, Delivery, Subscriber

_SQLITE = sqlite_dialect.dialect()
# How SQLAlchemy stores our timestamps in SQLite: the lane writes the very same text.
_ts_bind = Delivery.__table__.c.updated_at.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
assert _ts_bind is not None


def _sqlite_ts(value: datetime) -> str:
    return str(_ts_bind(value))  # type: ignore[misc]


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


@dataclass
class _Joined:
    """A claimed row joined with its subscriber (what both claim paths read)."""

    id: int
    subscriber_id: int
    chat_id: int
    attempts: int
    status: str | None
    is_group: bool | None
    first_name: str | None
    username: str | None
    language: str | None
    fields: Any


def _split(campaign_id: int, rows: Sequence[Any]) -> tuple[list[Claimed], list[tuple[int, str]]]:
    """Claimed rows to send, and rows whose subscriber left since the snapshot (with why)."""
    claimed: list[Claimed] = []
    gone: list[tuple[int, str]] = []
    for r in rows:
        if r.status != "active":
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
    return claimed, gone


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
    claimed, gone = _split(campaign_id, rows)
    if gone:  # stopped or blocked since the snapshot: skipped, and recorded why
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == bindparam("rid"))
            .values(state="suppressed", error=bindparam("err"), lease_owner=None),
            [{"rid": i, "err": e} for i, e in gone],
        )
    return claimed


def _consent() -> Any:
    """The row's subscriber still active: the mark's own consent check."""
    return (
        select(Subscriber.id)
        .where(Subscriber.id == Delivery.subscriber_id, Subscriber.status == "active")
        .exists()
    )


async def mark_sending(conn: AsyncConnection, ids: Sequence[int], *, now: datetime) -> set[int]:
    """Commit ``sending`` for rows still pending (a cancel may have raced us) whose
    subscriber is still active; rows refused for consent are suppressed (``suppress_left``)."""
    res = await conn.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == "pending", _consent())
        .values(state="sending", attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery.id)
    )
    return set(res.scalars())


async def suppress_left(conn: AsyncConnection, ids: Sequence[int], *, now: datetime) -> None:
    """Rows of ``ids`` still pending after a mark: their subscriber left after the claim
    (the mark takes every other pending row). Suppressed, with the subscriber's status."""
    if not ids:
        return
    status = (
        select(Subscriber.status).where(Subscriber.id == Delivery.subscriber_id).scalar_subquery()
    )
    await conn.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.state == "pending")
        .values(
            state="suppressed",
            error="subscriber " + func.coalesce(status, "removed") + " before sending",
            lease_owner=None,
            updated_at=now,
        )
    )


async def finish(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Final or retry states for rows in ``sending``: keys rid, state, message_id, error,
    not_before, updated_at; an album's row also message_ids."""
    albums = [r for r in rows if "message_ids" in r]
    if albums:  # first, while the rows are still in ``sending``
        await conn.execute(
            update(Delivery)
            .where(and_(Delivery.id == bindparam("rid"), Delivery.state == "sending"))
            .values(message_ids=bindparam("b_ids")),
            [{"rid": r["rid"], "b_ids": r["message_ids"]} for r in albums],
        )
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


async def due_campaigns(
    db: Database, campaign_ids: Sequence[int], *, now_ts: float
) -> tuple[set[int], float | None]:
    """Which of ``campaign_ids`` have a row to claim now, in one read; when none has, also
    the earliest time (epoch seconds) one of their rows becomes due (a retry's
    ``not_before``), or None: nothing is pending. The engine claims only from the first and
    sleeps until the second, so campaigns with nothing due (a sequence's steps between
    sends) cost no claim transaction."""
    if not campaign_ids:
        return set(), None
    open_row = and_(Delivery.state == "pending", Delivery.lease_owner.is_(None))
    due = select(Campaign.id).where(
        Campaign.id.in_(list(campaign_ids)),
        select(Delivery.id)
        .where(
            Delivery.campaign_id == Campaign.id,
            open_row,
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now_ts),
        )
        .exists(),
    )
    async with db.read() as conn:
        found = set((await conn.execute(due)).scalars())
        if found:
            return found, None
        later = (
            await conn.execute(
                select(func.min(Delivery.not_before)).where(
                    Delivery.campaign_id.in_(list(campaign_ids)),
                    open_row,
                    Delivery.not_before > now_ts,
                )
            )
        ).scalar()
    return found, None if later is None else float(later)


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


# -- the engine's hot path: plain SQL on the SQLite lane or on asyncpg, else the statements above --


class _Native:
    """The hot statements in one driver's dialect, built once: ``sqlite3`` (``?``, id lists as
    a JSON array read by ``json_each``) or asyncpg (``$n``, id lists as ``bigint[]``)."""

    def __init__(self, *, pg: bool) -> None:
        self.pg = pg

        def p(n: int) -> str:
            return f"${n}" if pg else "?"

        def in_(n: int) -> str:
            return f"= ANY(${n}::bigint[])" if pg else "IN (SELECT value FROM json_each(?))"

        lock = " FOR UPDATE SKIP LOCKED" if pg else ""
        # args: owner, campaign_id, now_ts, limit
        self.claim = (
            f"UPDATE deliveries SET lease_owner = {p(1)} WHERE id IN ("
            f" SELECT id FROM deliveries WHERE campaign_id = {p(2)} AND state = 'pending'"
            f" AND lease_owner IS NULL AND (not_before IS NULL OR not_before <= {p(3)})"
            f" ORDER BY id LIMIT {p(4)}{lock}) RETURNING id"
        )
        # args: ids
        self.claimed = (
            "SELECT d.id, d.subscriber_id, d.chat_id, d.attempts, s.status, s.is_group,"
            " s.first_name, s.username, s.language, s.fields"
            " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
            f" WHERE d.id {in_(1)} ORDER BY d.id"
        )
        # args: error, id
        self.gone = (
            f"UPDATE deliveries SET state = 'suppressed', error = {p(1)}, lease_owner = NULL"
            f" WHERE id = {p(2)}"
        )
        # args: state, message_id, error, not_before, updated_at, id
        self.finish = (
            f"UPDATE deliveries SET state = {p(1)}, message_id = {p(2)}, error = {p(3)},"
            f" not_before = {p(4)}, updated_at = {p(5)}, lease_owner = NULL"
            f" WHERE id = {p(6)} AND state = 'sending'"
        )
        # args: updated_at, ids. Consent is read in this statement (see the module's doc).
        self.mark = (
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,"
            f" updated_at = {p(1)} WHERE id {in_(2)} AND state = 'pending'"
            " AND EXISTS (SELECT 1 FROM subscribers s WHERE s.id = deliveries.subscriber_id"
            " AND s.status = 'active') RETURNING id"
        )
        # args: updated_at, ids: the rows a mark refused that are still pending (consent)
        self.left = (
            "UPDATE deliveries SET state = 'suppressed', lease_owner = NULL,"
            f" updated_at = {p(1)}, error = 'subscriber ' || COALESCE((SELECT s.status FROM"
            " subscribers s WHERE s.id = deliveries.subscriber_id), 'removed')"
            f" || ' before sending' WHERE id {in_(2)} AND state = 'pending'"
        )
        # args: not_before, ids
        self.release = (
            f"UPDATE deliveries SET lease_owner = NULL, not_before = {p(1)}"
            f" WHERE id {in_(2)} AND state = 'pending'"
        )

    def ids(self, ids: Sequence[int]) -> Any:
        return list(ids) if self.pg else json.dumps(list(ids))

    def ts(self, value: datetime) -> Any:
        return value if self.pg else _sqlite_ts(value)

    def finish_args(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                r["state"],
                r.get("message_id"),
                r.get("error"),
                r.get("not_before"),
                self.ts(r["updated_at"]),
                r["rid"],
            )
            for r in rows
        ]


_LITE = _Native(pg=False)
_PG = _Native(pg=True)


def _joined(r: Sequence[Any]) -> _Joined:
    fields = json.loads(r[9]) if isinstance(r[9], str) else r[9]
    return _Joined(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], fields)


def _claim_lane(
    c: sqlite3.Connection, *, campaign_id: int, owner: str, limit: int, now_ts: float
) -> list[Claimed]:
    ids = [r[0] for r in c.execute(_LITE.claim, (owner, campaign_id, now_ts, limit))]
    if not ids:
        return []
    rows = [_joined(r) for r in c.execute(_LITE.claimed, (_LITE.ids(ids),))]
    claimed, gone = _split(campaign_id, rows)
    if gone:
        c.executemany(_LITE.gone, [(why, rid) for rid, why in gone])
    return claimed


async def _claim_pg(
    pg: Any, *, campaign_id: int, owner: str, limit: int, now_ts: float
) -> list[Claimed]:
    ids = [r[0] for r in await pg.fetch(_PG.claim, owner, campaign_id, now_ts, limit)]
    if not ids:
        return []
    rows = [_joined(r) for r in await pg.fetch(_PG.claimed, ids)]
    claimed, gone = _split(campaign_id, rows)
    if gone:
        await pg.executemany(_PG.gone, [(why, rid) for rid, why in gone])
    return claimed


def _commit_lane(
    c: sqlite3.Connection, *, finishes: Sequence[dict[str, Any]], marks: Sequence[int], now: str
) -> set[int]:
    if finishes:  # first: a retried row may be marked sending again in this batch
        c.executemany(_LITE.finish, _LITE.finish_args(finishes))
    if not marks:
        return set()
    ok = {r[0] for r in c.execute(_LITE.mark, (now, _LITE.ids(marks)))}
    if len(ok) < len(marks):  # rare: a cancel, or a subscriber who left since the claim
        c.execute(_LITE.left, (now, _LITE.ids([m for m in marks if m not in ok])))
    return ok


async def _commit_pg(
    pg: Any, *, finishes: Sequence[dict[str, Any]], marks: Sequence[int], now: datetime
) -> set[int]:
    if finishes:  # first: a retried row may be marked sending again in this batch
        await pg.executemany(_PG.finish, _PG.finish_args(finishes))
    if not marks:
        return set()
    ok = {r[0] for r in await pg.fetch(_PG.mark, now, _PG.ids(marks))}
    if len(ok) < len(marks):  # rare: a cancel, or a subscriber who left since the claim
        await pg.execute(_PG.left, now, _PG.ids([m for m in marks if m not in ok]))
    return ok


def _release_lane(c: sqlite3.Connection, *, ids: Sequence[int], not_before: float | None) -> None:
    c.execute(_LITE.release, (not_before, _LITE.ids(ids)))


def _native(db: Database) -> str | None:
    """Which plain-SQL path serves ``db``: "lane", "asyncpg", or None (the statements)."""
    if db.lane is not None:
        return "lane"
    return None if db.is_sqlite else "asyncpg"


async def claim_batch(
    db: Database, *, campaign_id: int, owner: str, limit: int, now_ts: float
) -> list[Claimed]:
    """``claim`` in its own write transaction."""
    path = _native(db)
    if path == "lane":
        return await db.write_lane(
            partial(_claim_lane, campaign_id=campaign_id, owner=owner, limit=limit, now_ts=now_ts)
        )
    if path == "asyncpg":
        async with db.write_asyncpg() as pg:
            return await _claim_pg(
                pg, campaign_id=campaign_id, owner=owner, limit=limit, now_ts=now_ts
            )
    async with db.write() as conn:
        return await claim(
            conn,
            campaign_id=campaign_id,
            owner=owner,
            limit=limit,
            now_ts=now_ts,
            postgres=not db.is_sqlite,
        )


async def commit_batch(
    db: Database,
    *,
    bot_id: int,
    finishes: Sequence[dict[str, Any]],
    marks: Sequence[int],
    unreachable: Sequence[tuple[int, str, str]],
    now: datetime,
) -> set[int]:
    """One transaction: finished rows, then ``sending`` for ``marks`` (the ids that took it;
    rows refused because their subscriber left since the claim are suppressed), then
    subscribers a send proved unreachable (``(chat_id, status, reason)``)."""
    # Unreachable chats and albums (several message ids) are rare: the statements below.
    path = None if unreachable or any("message_ids" in f for f in finishes) else _native(db)
    if path == "lane":
        return await db.write_lane(
            partial(_commit_lane, finishes=finishes, marks=marks, now=_sqlite_ts(now))
        )
    if path == "asyncpg":
        async with db.write_asyncpg() as pg:
            return await _commit_pg(pg, finishes=finishes, marks=marks, now=now)
    async with db.write() as conn:
        await finish(conn, finishes)
        ok = await mark_sending(conn, marks, now=now) if marks else set()
        await suppress_left(conn, [m for m in marks if m not in ok], now=now)
        for chat_id, status, reason in unreachable:
            await subscribers.mark_unreachable(
                conn,
                bot_id=bot_id,
                chat_id=chat_id,
                status=status,  # type: ignore[arg-type]
                reason=reason,
                now=now,
            )
    return ok


async def release_batch(db: Database, ids: Sequence[int], *, not_before: float | None) -> None:
    """``release`` in its own write transaction."""
    if not ids:
        return
    path = _native(db)
    if path == "lane":
        await db.write_lane(partial(_release_lane, ids=ids, not_before=not_before))
        return
    if path == "asyncpg":
        async with db.write_asyncpg() as pg:
            await pg.execute(_PG.release, not_before, _PG.ids(ids))
        return
    async with db.write() as conn:
        await release(conn, ids, not_before=not_before)
