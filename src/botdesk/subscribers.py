"""The consent ledger: who opted in to which bot, who left, and why.

Every change of a subscriber's status appends a ``consent_events`` row in the same
transaction, so the current status can always be explained from the events. Functions take
an open write connection: the runtime calls them inside the transaction that also marks the
update as processed, which is what makes a redelivered update a no-op.

Imported subscribers (``botdesk.subscriber_import``) start with an ``imported`` event naming the
source label and the file, which counts as their opt-in.

Statuses: active, unsubscribed (/stop), blocked (the user blocked the bot), deactivated (the
account was deactivated), gone (chat not found, or the bot left a group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.store.models import ConsentEvent, Subscriber

PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INVALID_SOURCE = "invalid"
GROUP_SOURCE = "group"

Change = Literal["subscribe", "resubscribe", "unsubscribe", "block", "unblock", "none"]


@dataclass(frozen=True)
class Person:
    """What an update tells us about the chat on the other side."""

    chat_id: int
    first_name: str | None = None
    username: str | None = None
    language: str | None = None
    is_group: bool = False


def source_of(payload: str | None) -> str | None:
    """A deep-link payload is trusted only if it has Telegram's allowed shape."""
    if payload is None or payload == "":
        return None
    return payload if PAYLOAD_RE.match(payload) else INVALID_SOURCE


async def _row(conn: AsyncConnection, bot_id: int, chat_id: int) -> tuple[int, str] | None:
    row = (
        await conn.execute(
            select(Subscriber.id, Subscriber.status).where(
                Subscriber.bot_id == bot_id, Subscriber.chat_id == chat_id
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


async def _event(
    conn: AsyncConnection,
    *,
    bot_id: int,
    chat_id: int,
    kind: str,
    source: str | None,
    update_id: int | None,
    now: datetime,
) -> None:
    await conn.execute(
        insert(ConsentEvent).values(
            bot_id=bot_id, chat_id=chat_id, kind=kind, source=source, update_id=update_id, at=now
        )
    )


def _fresh_fields(p: Person, now: datetime) -> dict[str, object]:
    fields: dict[str, object] = {"last_seen_at": now, "updated_at": now}
    if p.first_name is not None:
        fields["first_name"] = p.first_name[:256]
    if p.username is not None:
        fields["username"] = p.username[:64]
    if p.language is not None:
        fields["language"] = p.language[:16]
    return fields


async def start(
    conn: AsyncConnection,
    *,
    bot_id: int,
    person: Person,
    payload: str | None,
    update_id: int | None,
    now: datetime,
) -> Change:
    """/start [payload]: subscribe, or re-activate someone who left."""
    source = source_of(payload)
    existing = await _row(conn, bot_id, person.chat_id)
    if existing is None:
        await conn.execute(
            insert(Subscriber).values(
                bot_id=bot_id,
                chat_id=person.chat_id,
                status="active",
                source=source,
                is_group=person.is_group,
                joined_at=now,
                **_fresh_fields(person, now),
            )
        )
        await _event(
            conn,
            bot_id=bot_id,
            chat_id=person.chat_id,
            kind="subscribe",
            source=source,
            update_id=update_id,
            now=now,
        )
        return "subscribe"
    sub_id, status = existing
    values = _fresh_fields(person, now)
    if status == "active":
        await conn.execute(update(Subscriber).where(Subscriber.id == sub_id).values(**values))
        return "none"
    values.update(status="active", left_at=None)
    if source is not None:
        values["source"] = source
    await conn.execute(update(Subscriber).where(Subscriber.id == sub_id).values(**values))
    await _event(
        conn,
        bot_id=bot_id,
        chat_id=person.chat_id,
        kind="resubscribe",
        source=source,
        update_id=update_id,
        now=now,
    )
    return "resubscribe"


async def stop(
    conn: AsyncConnection, *, bot_id: int, person: Person, update_id: int | None, now: datetime
) -> Change:
    """/stop or /unsubscribe: no campaign reaches this chat from now on."""
    existing = await _row(conn, bot_id, person.chat_id)
    if existing is None or existing[1] != "active":
        return "none"
    await conn.execute(
        update(Subscriber)
        .where(Subscriber.id == existing[0])
        .values(status="unsubscribed", left_at=now, **_fresh_fields(person, now))
    )
    await _event(
        conn,
        bot_id=bot_id,
        chat_id=person.chat_id,
        kind="unsubscribe",
        source="command",
        update_id=update_id,
        now=now,
    )
    return "unsubscribe"


async def _consented(conn: AsyncConnection, bot_id: int, chat_id: int) -> bool:
    """Was the user's last opt-in/opt-out an opt-in? Unblocking is not consent by itself."""
    kind = (
        await conn.execute(
            select(ConsentEvent.kind)
            .where(
                ConsentEvent.bot_id == bot_id,
                ConsentEvent.chat_id == chat_id,
                ConsentEvent.kind.in_(("subscribe", "resubscribe", "imported", "unsubscribe")),
            )
            .order_by(ConsentEvent.id.desc())
            .limit(1)
        )
    ).scalar()
    # An imported chat started the bot before it moved to botdesk (subscriber_import).
    return kind in ("subscribe", "resubscribe", "imported")


async def member_status(
    conn: AsyncConnection,
    *,
    bot_id: int,
    person: Person,
    new_status: str,
    update_id: int | None,
    now: datetime,
) -> Change:
    """my_chat_member: the user blocked/unblocked the bot, or a group added/removed it."""
    present = new_status in ("member", "administrator", "creator", "restricted")
    existing = await _row(conn, bot_id, person.chat_id)
    if person.is_group:
        if present and (existing is None or existing[1] != "active"):
            return await start(
                conn,
                bot_id=bot_id,
                person=person,
                payload=GROUP_SOURCE,
                update_id=update_id,
                now=now,
            )
        if not present and existing is not None and existing[1] == "active":
            await _set_status(conn, existing[0], "gone", now)
            await _event(
                conn,
                bot_id=bot_id,
                chat_id=person.chat_id,
                kind="gone",
                source="removed from group",
                update_id=update_id,
                now=now,
            )
            return "block"
        return "none"
    if new_status == "kicked":
        if existing is None:
            await conn.execute(
                insert(Subscriber).values(
                    bot_id=bot_id,
                    chat_id=person.chat_id,
                    status="blocked",
                    joined_at=now,
                    left_at=now,
                    **_fresh_fields(person, now),
                )
            )
        elif existing[1] == "blocked":
            return "none"
        else:
            await _set_status(conn, existing[0], "blocked", now)
        await _event(
            conn,
            bot_id=bot_id,
            chat_id=person.chat_id,
            kind="block",
            source=None,
            update_id=update_id,
            now=now,
        )
        return "block"
    if present and existing is not None and existing[1] == "blocked":
        status = "active" if await _consented(conn, bot_id, person.chat_id) else "unsubscribed"
        await conn.execute(
            update(Subscriber)
            .where(Subscriber.id == existing[0])
            .values(
                status=status,
                left_at=None if status == "active" else now,
                **_fresh_fields(person, now),
            )
        )
        await _event(
            conn,
            bot_id=bot_id,
            chat_id=person.chat_id,
            kind="unblock",
            source=None,
            update_id=update_id,
            now=now,
        )
        return "unblock"
    return "none"


async def _set_status(conn: AsyncConnection, sub_id: int, status: str, now: datetime) -> None:
    await conn.execute(
        update(Subscriber)
        .where(Subscriber.id == sub_id)
        .values(status=status, left_at=now, updated_at=now)
    )


async def touch_many(
    conn: AsyncConnection, *, bot_id: int, people: list[Person], now: datetime
) -> None:
    """Keep name, username, language and last-seen fresh for a whole batch of updates:
    one executemany, latest values per chat."""
    if not people:
        return
    latest: dict[int, Person] = {}
    for p in people:
        latest[p.chat_id] = p
    # Rows differ in which fields they know; group by that shape so each group is one
    # executemany with the same columns (usually a single group).
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for p in latest.values():
        values = _fresh_fields(p, now)
        cols = tuple(sorted(values))
        shapes.setdefault(cols, []).append(
            {"b_chat": p.chat_id, **{f"b_{k}": v for k, v in values.items()}}
        )
    for cols, params in shapes.items():
        await conn.execute(
            update(Subscriber)
            .where(Subscriber.bot_id == bot_id, Subscriber.chat_id == bindparam("b_chat"))
            .values({c: bindparam(f"b_{c}") for c in cols}),
            params,
        )


async def mark_unreachable(
    conn: AsyncConnection,
    *,
    bot_id: int,
    chat_id: int,
    status: Literal["blocked", "deactivated", "gone"],
    reason: str,
    now: datetime,
    via: str = "delivery",
) -> bool:
    """A send (or, ``via``, another call) proved the chat unreachable: record it so later
    campaigns skip it."""
    existing = await _row(conn, bot_id, chat_id)
    if existing is None or existing[1] == status:
        return False
    await _set_status(conn, existing[0], status, now)
    kind = "block" if status == "blocked" else status
    await _event(
        conn,
        bot_id=bot_id,
        chat_id=chat_id,
        kind=kind,
        source=f"{via}: {reason}"[:80],
        update_id=None,
        now=now,
    )
    return True
