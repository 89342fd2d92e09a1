"""The read side of subscribers and their tags: count, page, stream, tag and untag, time zones.

Every function selects through ``segments.audience_filter``, so "who a segment means" has one
definition. Writes here touch only ``subscriber_tags`` and ``subscribers.timezone``; consent
(status) belongs to ``botdesk.subscribers``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.errors import NotFoundError, ValidationError
from botdesk.segments import Segment, audience_filter, check_tag
from botdesk.store.db import Database, dialect_insert
from botdesk.store.models import Subscriber, SubscriberTag
from botdesk.timezones import check_zone

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_STREAM_BATCH = 1000

_subs = Subscriber.__table__
_tags = SubscriberTag.__table__

_VIEW_COLUMNS = (
    _subs.c.id,
    _subs.c.chat_id,
    _subs.c.status,
    _subs.c.source,
    _subs.c.first_name,
    _subs.c.username,
    _subs.c.language,
    _subs.c.timezone,
    _subs.c.joined_at,
    _subs.c.last_seen_at,
    _subs.c.left_at,
)


@dataclass(frozen=True)
class SubscriberView:
    """One subscriber as interfaces show it (no internal ids)."""

    chat_id: int
    status: str
    source: str | None
    first_name: str | None
    username: str | None
    language: str | None
    timezone: str | None = None
    tags: list[str] = field(default_factory=list)
    joined_at: datetime | None = None
    last_seen_at: datetime | None = None
    left_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 UTC strings."""
        out = asdict(self)
        for name, value in out.items():
            if isinstance(value, datetime):
                out[name] = value.isoformat()
        return out


CSV_COLUMNS = (
    "chat_id",
    "status",
    "source",
    "first_name",
    "username",
    "language",
    "timezone",
    "tags",
    "joined_at",
    "last_seen_at",
    "left_at",
)
# Spreadsheets execute cells starting with these; names come from Telegram users.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(v: SubscriberView) -> list[object]:
    """One exported row (CSV_COLUMNS), with spreadsheet formulas defused."""
    d = v.as_dict()
    d["tags"] = " ".join(v.tags)
    return [_csv_cell(d[c]) if c != "chat_id" else d[c] for c in CSV_COLUMNS]


async def count(db: Database, bot_id: int, segment: str | Segment | None, *, now: datetime) -> int:
    """How many of the bot's subscribers the segment selects (active unless it says)."""
    where = audience_filter(bot_id, segment, now=now)
    async with db.read() as conn:
        n = (await conn.execute(select(func.count()).select_from(_subs).where(where))).scalar()
    return int(n or 0)


async def page(
    db: Database,
    bot_id: int,
    segment: str | Segment | None,
    *,
    now: datetime,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> list[SubscriberView]:
    """One page in a stable order (oldest subscriber row first)."""
    if offset < 0:
        raise ValidationError("offset must be 0 or more")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
    where = audience_filter(bot_id, segment, now=now)
    stmt = select(*_VIEW_COLUMNS).where(where).order_by(_subs.c.id).offset(offset).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
        return await _views(conn, rows)


async def page_keyed(
    db: Database,
    bot_id: int,
    segment: str | Segment | None,
    *,
    now: datetime,
    after: int | None = None,
    skip: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[SubscriberView], int | None]:
    """A page after the cursor ``after`` (skipping ``skip`` rows), and the cursor of its end.

    The cursor is opaque to callers (the row key). Reading on from a cursor costs the same at
    the millionth row as at the first; ``skip`` is for a jump, counted from the nearest cursor
    the caller holds. Same order as ``page`` and ``stream``.
    """
    if skip < 0:
        raise ValidationError("skip must be 0 or more")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
    stmt = select(*_VIEW_COLUMNS).where(audience_filter(bot_id, segment, now=now))
    if after is not None:
        stmt = stmt.where(_subs.c.id > after)
    stmt = stmt.order_by(_subs.c.id).offset(skip).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
        views = await _views(conn, rows)
    return views, (int(rows[-1].id) if rows else after)


async def stream(
    db: Database,
    bot_id: int,
    segment: str | Segment | None,
    *,
    now: datetime,
    batch: int = DEFAULT_STREAM_BATCH,
) -> AsyncIterator[SubscriberView]:
    """Every selected subscriber, fetched ``batch`` rows at a time by id (keyset).

    Each batch is its own short read transaction: a long export never pins an old
    snapshot (which on SQLite would stop WAL checkpoints for the whole export).
    """
    if batch < 1:
        raise ValidationError("batch must be 1 or more")
    # Parse once, and fix ``now``, so every batch applies the very same filter.
    where = audience_filter(bot_id, segment, now=now)
    after = None
    while True:
        stmt = select(*_VIEW_COLUMNS).where(where)
        if after is not None:
            stmt = stmt.where(_subs.c.id > after)
        stmt = stmt.order_by(_subs.c.id).limit(batch)
        async with db.read() as conn:
            rows = (await conn.execute(stmt)).all()
            views = await _views(conn, rows)
        for view in views:
            yield view
        if len(rows) < batch:
            return
        after = rows[-1].id


async def _views(conn: AsyncConnection, rows: Sequence[Any]) -> list[SubscriberView]:
    ids = [r.id for r in rows]
    tags: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        tag_rows = await conn.execute(
            select(_tags.c.subscriber_id, _tags.c.tag)
            .where(_tags.c.subscriber_id.in_(ids))
            .order_by(_tags.c.subscriber_id, _tags.c.tag)
        )
        for sid, tag_ in tag_rows:
            tags[sid].append(tag_)
    return [
        SubscriberView(
            chat_id=r.chat_id,
            status=r.status,
            source=r.source,
            first_name=r.first_name,
            username=r.username,
            language=r.language,
            timezone=r.timezone,
            tags=tags[r.id],
            joined_at=r.joined_at,
            last_seen_at=r.last_seen_at,
            left_at=r.left_at,
        )
        for r in rows
    ]


# -- tags -------------------------------------------------------------------------------


def _insert_tags(db: Database, source: Any) -> Any:
    """INSERT INTO subscriber_tags SELECT ..., skipping rows a concurrent writer just added."""
    return (
        dialect_insert(db.dialect, _tags)
        .from_select(["subscriber_id", "tag"], source)
        .on_conflict_do_nothing(index_elements=["subscriber_id", "tag"])
    )


def _untagged(tag: str) -> Any:
    return ~exists(
        select(_tags.c.subscriber_id).where(_tags.c.subscriber_id == _subs.c.id, _tags.c.tag == tag)
    ).correlate(_subs)


async def _subscriber_id(conn: AsyncConnection, bot_id: int, chat_id: int) -> int:
    sid = (
        await conn.execute(
            select(_subs.c.id).where(_subs.c.bot_id == bot_id, _subs.c.chat_id == chat_id)
        )
    ).scalar()
    if sid is None:
        raise NotFoundError(f"no subscriber with chat id {chat_id} for this bot")
    return int(sid)


async def tag(
    db: Database, bot_id: int, chat_id: int, tag: str, *, now: datetime | None = None
) -> bool:
    """Tag one subscriber (any status). True if the tag was new, False if already there.
    A sequence's goal tag stops the sequence in the same transaction."""
    check_tag(tag)
    async with db.write() as conn:
        sid = await _subscriber_id(conn, bot_id, chat_id)
        source = select(_subs.c.id, literal(tag)).where(_subs.c.id == sid, _untagged(tag))
        result = await conn.execute(_insert_tags(db, source))
        if result.rowcount:
            await _goal_reached(conn, bot_id, tag, [sid], now)
    return bool(result.rowcount)


async def _goal_reached(
    conn: AsyncConnection, bot_id: int, tag: str, subscribers: Any, now: datetime | None
) -> None:
    from botdesk import sequence_runner  # the runner imports the segment layer this uses

    at = now if now is not None else datetime.now(UTC)
    await sequence_runner.stop_tagged(
        conn, bot_id=bot_id, tags=[tag], subscribers=subscribers, now=at
    )


async def untag(db: Database, bot_id: int, chat_id: int, tag: str) -> bool:
    """Remove a tag from one subscriber. True if it had the tag."""
    check_tag(tag)
    async with db.write() as conn:
        sid = await _subscriber_id(conn, bot_id, chat_id)
        result = await conn.execute(
            delete(SubscriberTag).where(_tags.c.subscriber_id == sid, _tags.c.tag == tag)
        )
    return bool(result.rowcount)


async def set_timezone(
    db: Database,
    bot_id: int,
    zone: str | None,
    *,
    chat_id: int | None = None,
    segment: str | Segment | None = None,
    now: datetime,
) -> int:
    """Set (None: forget) the time zone of one chat (any status) or of everyone the segment
    selects, in one statement; returns how many changed."""
    if zone is not None:
        check_zone(zone)
    if chat_id is not None:
        async with db.write() as conn:
            where: Any = _subs.c.id == await _subscriber_id(conn, bot_id, chat_id)
            return await _set_zone(conn, where, zone, now)
    where = audience_filter(bot_id, segment, now=now)
    async with db.write() as conn:
        return await _set_zone(conn, where, zone, now)


async def _set_zone(conn: AsyncConnection, where: Any, zone: str | None, now: datetime) -> int:
    differs = (
        _subs.c.timezone.is_not(None)
        if zone is None
        else or_(_subs.c.timezone.is_(None), _subs.c.timezone != zone)
    )
    result = await conn.execute(
        update(Subscriber).where(and_(where, differs)).values(timezone=zone, updated_at=now)
    )
    return int(result.rowcount or 0)


async def tag_segment(
    db: Database, bot_id: int, segment: str | Segment | None, tag: str, *, now: datetime
) -> int:
    """Tag everyone the segment selects, in one statement; returns how many got it new."""
    check_tag(tag)
    where = audience_filter(bot_id, segment, now=now)
    source = select(_subs.c.id, literal(tag)).where(and_(where, _untagged(tag)))
    async with db.write() as conn:
        result = await conn.execute(_insert_tags(db, source))
        if result.rowcount:
            await _goal_reached(conn, bot_id, tag, select(_subs.c.id).where(where), now)
    return int(result.rowcount or 0)


async def export_csv(
    db: Database, bot_id: int, segment: str | Segment | None, path: Path, *, now: datetime
) -> int:
    """Write the selected subscribers as CSV: to a temporary file beside ``path``, then
    renamed, so there is never a half-written export. Returns the number of rows."""
    import asyncio
    import contextlib
    import csv
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            chunk: list[list[object]] = []
            async for view in stream(db, bot_id, segment, now=now):
                chunk.append(csv_row(view))
                if len(chunk) >= DEFAULT_STREAM_BATCH:
                    await asyncio.to_thread(writer.writerows, chunk)
                    n += len(chunk)
                    chunk = []
            await asyncio.to_thread(writer.writerows, chunk)
            n += len(chunk)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n
