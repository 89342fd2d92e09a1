"""subscriber_import on SQLite and PostgreSQL: reading CSV/JSON Lines, merging, consent events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from botdesk import audience, subscribers
from botdesk.errors import ValidationError
from botdesk.store.db import Database
from botdesk.store.models import Bot, ConsentEvent, Subscriber, SubscriberTag
from botdesk.subscriber_import import ImportRow, RowProblem, import_rows, read_file

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)

CSV = (
    "chat_id,first_name,last_name,username,language,tags,started_at,plan\n"
    "101,Ann,Lee,@ann,en,vip;beta,2025-01-02T03:04:05Z,pro\n"
    "102,Bo,,,de,,2025-02-01,\n"
    "abc,Bad,,,,,,\n"
    "103,Cy,,,,,not-a-date,\n"
    "104,Di,,,en,x|y,,free\n"
    "101,Ann again,,,,gold,2024-12-31T00:00:00+02:00,basic\n"
)


async def _bot(db: Database, name: str = "shop") -> int:
    async with db.write() as conn:
        await conn.execute(
            insert(Bot).values(
                name=name, telegram_id=1, username=name, token_secret=f"bot.{name}.token"
            )
        )
        return int((await conn.execute(select(Bot.id).where(Bot.name == name))).scalar_one())


async def _subs(db: Database, bot_id: int) -> dict[int, dict[str, object]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(Subscriber).where(Subscriber.bot_id == bot_id))).all()
        tags = (await conn.execute(select(SubscriberTag.subscriber_id, SubscriberTag.tag))).all()
    by_id: dict[int, list[str]] = {}
    for sid, t in tags:
        by_id.setdefault(sid, []).append(t)
    return {
        r.chat_id: {
            "status": r.status,
            "first_name": r.first_name,
            "username": r.username,
            "language": r.language,
            "fields": r.fields,
            "source": r.source,
            "joined_at": r.joined_at,
            "tags": sorted(by_id.get(r.id, [])),
        }
        for r in rows
    }


async def _events(db: Database, bot_id: int) -> list[tuple[int, str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(ConsentEvent.chat_id, ConsentEvent.kind, ConsentEvent.source)
            .where(ConsentEvent.bot_id == bot_id)
            .order_by(ConsentEvent.id)
        )
        return [(int(c), k, s) for c, k, s in rows]


async def test_csv_rows_become_subscribers_with_imported_events(db: Database, tmp_path: Path):
    bot_id = await _bot(db)
    path = tmp_path / "old_bot.csv"
    path.write_text(CSV, encoding="utf-8")
    report = await import_rows(
        db, bot_id, read_file(path), source="oldbot", file_name=path.name, now=NOW
    )

    assert (report.rows, report.added, report.merged, report.repeated, report.skipped) == (
        4, 3, 0, 1, 2,
    )  # fmt: skip
    assert [(p.line, p.reason.split(" ")[0]) for p in report.problems] == [(4, "bad"), (5, "bad")]
    assert "chat_id" in report.problems[0].reason and "started_at" in report.problems[1].reason
    subs = await _subs(db, bot_id)
    assert set(subs) == {101, 102, 104}
    ann = subs[101]
    assert ann["status"] == "active" and ann["source"] == "oldbot"
    assert (ann["first_name"], ann["username"], ann["language"]) == ("Ann", "ann", "en")
    # The first value of each field wins; tags add up; the earliest start is kept.
    assert ann["fields"] == {"plan": "pro", "last_name": "Lee"}
    assert ann["tags"] == ["beta", "gold", "vip"]
    assert ann["joined_at"] == datetime(2024, 12, 30, 22, 0, tzinfo=UTC)
    assert subs[102]["joined_at"] == datetime(2025, 2, 1, tzinfo=UTC)
    assert subs[104]["tags"] == ["x", "y"] and subs[104]["fields"] == {"plan": "free"}
    assert await _events(db, bot_id) == [
        (c, "imported", "oldbot: old_bot.csv") for c in (101, 102, 104)
    ]
    # Segments and templates see them like any subscriber.
    assert await audience.count(db, bot_id, "source:oldbot and field.plan:pro", now=NOW) == 1


async def test_existing_rows_keep_their_state_and_are_only_filled_in(db: Database, tmp_path: Path):
    bot_id, other = await _bot(db), await _bot(db, "other")
    async with db.write() as conn:
        await conn.execute(
            insert(Subscriber),
            [
                {"bot_id": bot_id, "chat_id": 1, "status": "unsubscribed", "first_name": "Old",
                 "fields": {"plan": "keep"}, "joined_at": NOW},
                {"bot_id": bot_id, "chat_id": 2, "status": "blocked", "first_name": None,
                 "fields": None, "joined_at": NOW},
                {"bot_id": other, "chat_id": 3, "status": "active", "first_name": None,
                 "fields": None, "joined_at": NOW},
            ],
        )  # fmt: skip
    path = tmp_path / "people.jsonl"
    lines = [
        {"chat_id": 1, "first_name": "New", "language": "fr", "tags": ["a"], "plan": "new", "x": 1},
        {"chat_id": 2, "username": "bee", "fields": {"seats": 3}},
        {"chat_id": 3, "first_name": "Third"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    report = await import_rows(
        db, bot_id, read_file(path), source="crm", file_name=path.name, now=NOW
    )
    assert (report.added, report.merged) == (1, 2)
    subs = await _subs(db, bot_id)
    # Nobody who left or blocked the bot is resubscribed by an import.
    assert subs[1]["status"] == "unsubscribed" and subs[2]["status"] == "blocked"
    assert (subs[1]["first_name"], subs[1]["language"]) == ("Old", "fr")
    assert subs[1]["fields"] == {"plan": "keep", "x": 1} and subs[1]["tags"] == ["a"]
    assert subs[2]["username"] == "bee" and subs[2]["fields"] == {"seats": 3}
    assert subs[3]["status"] == "active"
    assert await _events(db, bot_id) == [(3, "imported", "crm: people.jsonl")]
    assert await audience.count(db, bot_id, None, now=NOW) == 1
    # The other bot's chat 3 is its own subscriber: untouched.
    assert (await _subs(db, other))[3]["first_name"] is None

    # Importing the same file again changes nothing.
    again = await import_rows(
        db, bot_id, read_file(path), source="crm", file_name=path.name, now=NOW
    )
    assert (again.added, again.merged) == (0, 3)
    assert await _subs(db, bot_id) == subs
    assert len(await _events(db, bot_id)) == 1


async def test_duplicates_across_batches_and_a_large_file(db: Database, tmp_path: Path):
    bot_id = await _bot(db)
    path = tmp_path / "big.csv"
    rows = ["chat_id,tags"] + [f"{1000 + i % 2500},t{i // 2500}" for i in range(5000)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = await import_rows(
        db, bot_id, read_file(path), source="big", file_name=path.name, now=NOW, batch=700,
        keep_chats=True,
    )  # fmt: skip
    assert (report.rows, report.added, report.merged, report.repeated) == (5000, 2500, 0, 2500)
    assert report.chats == list(range(1000, 3500))
    subs = await _subs(db, bot_id)
    assert len(subs) == 2500 and all(s["tags"] == ["t0", "t1"] for s in subs.values())
    assert len(await _events(db, bot_id)) == 2500


async def test_an_imported_subscriber_who_unblocks_is_active_again(db: Database, tmp_path: Path):
    bot_id = await _bot(db)
    path = tmp_path / "one.csv"
    path.write_text("chat_id\n55\n", encoding="utf-8")
    await import_rows(db, bot_id, read_file(path), source="old", file_name="one.csv", now=NOW)
    person = subscribers.Person(chat_id=55)
    async with db.write() as conn:
        await subscribers.member_status(
            conn, bot_id=bot_id, person=person, new_status="kicked", update_id=1, now=NOW
        )
        await subscribers.member_status(
            conn, bot_id=bot_id, person=person, new_status="member", update_id=2, now=NOW
        )
    assert (await _subs(db, bot_id))[55]["status"] == "active"


def _read(tmp_path: Path, name: str, data: bytes) -> list[ImportRow | RowProblem]:
    path = tmp_path / name
    path.write_bytes(data)
    return list(read_file(path))


def test_reading_reports_each_malformed_line(tmp_path: Path) -> None:
    got = _read(
        tmp_path,
        "x.jsonl",
        b'{"chat_id": 1, "tags": "a;b"}\n\n{"chat_id": 2,\n[1]\n{"chat_id": "0"}\n'
        b'{"chat_id": 3, "first_name": "\xff"}\n'.replace(b'"\xff"', b'"ok"')
        + b'{"chat_id": 4, "first_name": "caf\xe9"}\n{"chat_id": 5, "tags": ["bad tag"]}\n'
        b'{"chat_id": 6, "fields": {"n": {"deep": 1}}}\n{"chat_id": 99999999999999999999}\n',
    )
    problems = [(p.line, p.reason) for p in got if isinstance(p, RowProblem)]
    assert [line for line, _ in problems] == [3, 4, 5, 7, 8, 9, 10]
    assert "bad JSON" in problems[0][1] and "object" in problems[1][1]
    assert "chat_id" in problems[2][1] and "UTF-8" in problems[3][1]
    assert "tag" in problems[4][1] and "custom field" in problems[5][1]
    ok = [r for r in got if isinstance(r, ImportRow)]
    assert [(r.chat_id, r.tags) for r in ok] == [(1, ["a", "b"]), (3, [])]


def test_csv_problems_by_line_and_file_errors(tmp_path: Path) -> None:
    got = _read(
        tmp_path,
        "x.csv",
        '\ufeffchat_id,first_name,language\n1,"two\nlines",en\n2,x\n3,y,english!\n4,z,en\n'.encode()
        + b"5,\xff,en\n6,w,pt-BR\n",
    )
    assert [(r.line, isinstance(r, ImportRow)) for r in got] == [
        (2, True), (4, False), (5, False), (6, True), (7, False), (8, True),
    ]  # fmt: skip
    assert isinstance(got[0], ImportRow) and got[0].first_name == "two\nlines"
    with pytest.raises(ValidationError, match="no such file"):
        read_file(tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match="no chat_id column"):
        _read(tmp_path, "h.csv", b"id,name\n1,a\n")
    with pytest.raises(ValidationError, match="invalid column name"):
        _read(tmp_path, "h.csv", b"chat_id,bad name\n1,a\n")


async def test_timezone_column_is_checked_stored_and_fills_an_empty_one(
    db: Database, tmp_path: Path
) -> None:
    bot_id = await _bot(db)
    f = tmp_path / "tz.csv"
    f.write_text(
        "chat_id,timezone\n201,Europe/Berlin\n202,Mars/Olympus\n203,\n",
        encoding="utf-8",
    )
    report = await import_rows(db, bot_id, read_file(f), source="old", file_name=f.name, now=NOW)
    assert (report.added, report.skipped) == (2, 1)
    assert "unknown timezone 'Mars/Olympus'" in report.problems[0].reason
    j = tmp_path / "tz.jsonl"
    j.write_text(
        '{"chat_id": 203, "timezone": "Asia/Tokyo"}\n{"chat_id": 201, "timezone": "UTC"}\n',
        encoding="utf-8",
    )
    await import_rows(db, bot_id, read_file(j), source="old", file_name=j.name, now=NOW)
    async with db.read() as conn:
        got = dict((await conn.execute(select(Subscriber.chat_id, Subscriber.timezone))).all())
    # 203 had none: filled; 201 keeps the zone it had (an import fills, never overwrites).
    assert got == {201: "Europe/Berlin", 203: "Asia/Tokyo"}
    assert await audience.count(db, bot_id, "tz:Asia/Tokyo", now=NOW) == 1
