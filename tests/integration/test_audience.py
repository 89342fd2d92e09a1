"""audience on SQLite and PostgreSQL: segment selection, paging, streaming, tagging."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from botdesk import audience
from botdesk.errors import NotFoundError, SegmentSyntaxError, ValidationError
from botdesk.store.db import Database
from botdesk.store.models import Bot, Subscriber, SubscriberTag

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _dt(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# chat_id, status, source, language, joined, last_seen, left, tags, fields
PEOPLE: list[tuple[Any, ...]] = [
    (101, "active", None, "en", _dt(2026, 1, 1, 10), NOW - timedelta(hours=1), None,
     ["vip"], {"plan": "pro"}),
    (102, "active", "ad1", "en-US", _dt(2026, 2, 10), NOW - timedelta(days=40), None,
     ["beta", "vip"], {"seats": 5}),
    (103, "active", "invalid", "de", _dt(2026, 3, 14), None, None, [], None),
    (104, "unsubscribed", "ad1", None, _dt(2025, 12, 31, 23, 59), None, _dt(2026, 3, 1),
     ["vip"], None),
    (105, "blocked", None, "pt-br", _dt(2026, 1, 2), None, _dt(2026, 3, 10), ["beta"], None),
    (-106, "active", "ad2", "eng", NOW - timedelta(hours=2), NOW - timedelta(hours=2), None,
     [], {"plan": "free"}),
]  # fmt: skip


async def _bot(db: Database, name: str) -> int:
    async with db.write() as conn:
        await conn.execute(
            insert(Bot).values(
                name=name, telegram_id=1, username=name, token_secret=f"bot.{name}.token"
            )
        )
        return int((await conn.execute(select(Bot.id).where(Bot.name == name))).scalar_one())


async def _fill(db: Database) -> tuple[int, int]:
    shop, other = await _bot(db, "shop"), await _bot(db, "other")
    async with db.write() as conn:
        for chat, status, source, lang, joined, seen, left, tags, fields in PEOPLE:
            await conn.execute(
                insert(Subscriber).values(
                    bot_id=shop, chat_id=chat, status=status, source=source, language=lang,
                    first_name=f"n{chat}", username=None, joined_at=joined,
                    last_seen_at=seen, left_at=left, fields=fields,
                )
            )  # fmt: skip
            sid = (
                await conn.execute(
                    select(Subscriber.id).where(
                        Subscriber.bot_id == shop, Subscriber.chat_id == chat
                    )
                )
            ).scalar_one()
            for t in tags:
                await conn.execute(insert(SubscriberTag).values(subscriber_id=sid, tag=t))
        await conn.execute(
            update(Subscriber)
            .where(Subscriber.bot_id == shop, Subscriber.chat_id == 101)
            .values(timezone="Europe/Berlin")
        )
        # The same chat under another bot must never leak into shop's audience.
        await conn.execute(
            insert(Subscriber).values(bot_id=other, chat_id=101, status="active", language="en")
        )
    return shop, other


@pytest.fixture
async def filled(db: Database) -> tuple[Database, int, int]:
    shop, other = await _fill(db)
    return db, shop, other


async def _chats(db: Database, bot: int, segment: str | None) -> set[int]:
    return {v.chat_id for v in await audience.page(db, bot, segment, now=NOW, limit=1000)}


CASES = [
    (None, {101, 102, 103, -106}),
    ("tag:vip", {101, 102}),
    ("tag:vip and status:any", {101, 102, 104}),
    ("status:unsubscribed", {104}),
    ("status:blocked or status:unsubscribed", {104, 105}),
    ("lang:en", {101, 102}),
    ("lang:none status:any", {104}),
    ("tz:Europe/Berlin", {101}),
    ("tz:none", {102, 103, -106}),
    ("source:none", {101}),
    ("source:invalid", {103}),
    ("source:ad1 status:any", {102, 104}),
    ("joined>2026-01-01 and status:any", {102, 103, 105, -106}),
    ("joined=2026-01-01 status:any", {101}),
    ("joined<2026-01-01 status:any", {104}),
    ("joined>7d", {103, -106}),
    ("last_seen<30d", {102}),
    ("last_seen:none", {103}),
    ("left>=2026-03-05 status:any", {105}),
    ("not tag:vip", {103, -106}),
    ("field.plan:pro", {101}),
    ("field.seats:5", {102}),
    ("chat:-106", {-106}),
    ('tag:beta or source:"ad2"', {102, -106}),
    ("not (tag:vip or lang:de) and not chat:-106", set()),
    ("tag:vip and lang:en and joined>2026-01-01", {102}),
]


@pytest.mark.parametrize(("segment", "chats"), CASES)
async def test_segments_select_the_documented_subscribers(
    filled: tuple[Database, int, int], segment: str | None, chats: set[int]
) -> None:
    db, shop, _ = filled
    assert await _chats(db, shop, segment) == chats
    assert await audience.count(db, shop, segment, now=NOW) == len(chats)


async def test_not_is_the_complement_on_this_backend(filled: tuple[Database, int, int]) -> None:
    db, shop, _ = filled
    everyone = await _chats(db, shop, "status:any")
    for segment, _ in CASES[1:]:
        assert segment is not None
        inside = await _chats(db, shop, f"status:any and ({segment})")
        outside = await _chats(db, shop, f"status:any and not ({segment})")
        assert inside.isdisjoint(outside), segment
        assert inside | outside == everyone, segment


async def test_other_bots_subscribers_stay_apart(filled: tuple[Database, int, int]) -> None:
    db, _, other = filled
    assert await _chats(db, other, None) == {101}
    assert await audience.count(db, other, "tag:vip", now=NOW) == 0


async def test_page_is_ordered_and_carries_tags(filled: tuple[Database, int, int]) -> None:
    db, shop, _ = filled
    views = await audience.page(db, shop, None, now=NOW, offset=1, limit=2)
    assert [v.chat_id for v in views] == [102, 103]
    assert views[0].tags == ["beta", "vip"]
    assert views[0].joined_at == _dt(2026, 2, 10)
    d = views[0].as_dict()
    assert d["joined_at"] == "2026-02-10T00:00:00+00:00"
    assert d["tags"] == ["beta", "vip"]
    assert d["left_at"] is None
    assert await audience.page(db, shop, None, now=NOW, offset=10) == []
    with pytest.raises(ValidationError):
        await audience.page(db, shop, None, now=NOW, limit=0)


async def test_a_syntax_error_reaches_the_caller(filled: tuple[Database, int, int]) -> None:
    db, shop, _ = filled
    with pytest.raises(SegmentSyntaxError) as info:
        await audience.count(db, shop, "tag:vip and colour:red", now=NOW)
    assert info.value.position == 12


@pytest.mark.parametrize("batch", [1, 2, 4, 5, 1000])
async def test_stream_walks_every_row_in_keyset_batches(
    filled: tuple[Database, int, int], batch: int
) -> None:
    db, shop, _ = filled
    selects: list[str] = []
    engine = db._read_engine.sync_engine

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT SUBSCRIBERS.ID"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        got = [v async for v in audience.stream(db, shop, "status:any", now=NOW, batch=batch)]
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    every = await audience.page(db, shop, "status:any", now=NOW, limit=1000)
    assert got == every
    assert len(got) == 6
    # ceil(6 / batch) queries, plus one empty one when the last batch was full.
    assert len(selects) == 6 // batch + 1
    assert all("LIMIT" in s.upper() for s in selects)


async def test_tag_and_untag_one_subscriber(filled: tuple[Database, int, int]) -> None:
    db, shop, other = filled
    assert await audience.tag(db, shop, 103, "spring-24") is True
    assert await audience.tag(db, shop, 103, "spring-24") is False
    assert await _chats(db, shop, "tag:spring-24") == {103}
    assert await _chats(db, other, "tag:spring-24") == set()
    # Tagging does not care about consent status (it is bookkeeping, not messaging).
    assert await audience.tag(db, shop, 105, "spring-24") is True
    assert await audience.untag(db, shop, 103, "spring-24") is True
    assert await audience.untag(db, shop, 103, "spring-24") is False
    assert await _chats(db, shop, "tag:spring-24 status:any") == {105}


async def test_tag_refuses_unknown_chats_and_bad_names(
    filled: tuple[Database, int, int],
) -> None:
    db, shop, _ = filled
    with pytest.raises(NotFoundError, match="999"):
        await audience.tag(db, shop, 999, "x")
    with pytest.raises(NotFoundError):
        await audience.untag(db, shop, 999, "x")
    for bad in ("", "two words", "x" * 65, "émoji"):
        with pytest.raises(ValidationError):
            await audience.tag(db, shop, 101, bad)


async def test_tag_segment_is_set_based_and_idempotent(
    filled: tuple[Database, int, int],
) -> None:
    db, shop, _ = filled
    assert await audience.tag_segment(db, shop, "lang:en", "english", now=NOW) == 2
    assert await audience.tag_segment(db, shop, "lang:en", "english", now=NOW) == 0
    # status:any reaches the unsubscribed vip too; the two already tagged are not counted.
    assert await audience.tag_segment(db, shop, "tag:vip status:any", "english", now=NOW) == 1
    assert await _chats(db, shop, "tag:english status:any") == {101, 102, 104}
    assert await audience.tag_segment(db, shop, None, "everyone", now=NOW) == 4


async def test_concurrent_tag_segment_never_double_counts(
    filled: tuple[Database, int, int],
) -> None:
    db, shop, _ = filled
    results = await asyncio.gather(
        *(audience.tag_segment(db, shop, "status:any", "wave", now=NOW) for _ in range(4))
    )
    assert sum(results) == 6
    assert await audience.count(db, shop, "tag:wave status:any", now=NOW) == 6
