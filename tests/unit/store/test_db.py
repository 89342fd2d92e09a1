"""store/db.py on both backends: migrations, transactions, rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from botdesk.errors import MigrationError
from botdesk.store.db import Database, redact_url
from botdesk.store.models import Bot, Subscriber


def _bot(name: str = "shop") -> dict[str, object]:
    return {
        "name": name,
        "telegram_id": 1,
        "username": name + "_bot",
        "token_secret": f"bot.{name}.token",
        "status": "active",
        "update_offset": 0,
    }


async def test_upgrade_is_idempotent_and_at_head(db: Database) -> None:
    await db.upgrade()
    cur, head = await db.revision_status()
    assert cur == head == "0011"
    await db.ensure_current()


async def test_write_commits_and_read_sees_it(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(insert(Bot).values(**_bot()))
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(Bot))).scalar() == 1


async def test_write_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(insert(Bot).values(**_bot()))
            raise RuntimeError("boom")
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(Bot))).scalar() == 0


async def test_foreign_keys_enforced_and_cascade(db: Database) -> None:
    async with db.write() as conn:
        bot_id = (await conn.execute(insert(Bot).values(**_bot()).returning(Bot.id))).scalar_one()
        await conn.execute(insert(Subscriber).values(bot_id=bot_id, chat_id=42, status="active"))
    async with db.write() as conn:
        await conn.execute(Bot.__table__.delete())
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(Subscriber))).scalar() == 0


async def test_timestamps_come_back_aware(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(insert(Bot).values(**_bot()))
    async with db.read() as conn:
        created = (await conn.execute(select(Bot.created_at))).scalar_one()
    assert created.tzinfo is not None


async def test_fresh_database_reports_missing_schema(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        with pytest.raises(MigrationError, match="botdesk db upgrade"):
            await database.ensure_current()
    finally:
        await database.close()


def test_redact_url_hides_password() -> None:
    assert "s3cret" not in redact_url("postgresql+asyncpg://u:s3cret@h/db")
