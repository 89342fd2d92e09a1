"""store/db.py on both backends: migrations, transactions, rollback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, insert, select

from botdesk.errors import MigrationError
from botdesk.store.db import Database, code_head, redact_url
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
    assert cur == head == "0012"
    await db.ensure_current()


async def test_upgrade_at_head_does_not_run_alembic(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(command, "upgrade", refuse)
    assert await db.stored_revisions() == [code_head()]
    await db.upgrade()  # told from alembic_version alone
    await db.ensure_current()


def test_code_head_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from botdesk.store import db as db_module

    cfg = Config()
    cfg.set_main_option("script_location", str(db_module._MIGRATIONS.parent))
    assert code_head() == ScriptDirectory.from_config(cfg).get_current_head() == "0012"


def test_code_head_is_none_unless_there_is_exactly_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def rev(name: str, revision: str, down: str) -> None:
        (tmp_path / f"{name}.py").write_text(
            f'"""x"""\nrevision: str = "{revision}"\ndown_revision = {down}\n'
        )

    rev("a", "0001", "None")
    rev("b", "0002", '"0001"')
    rev("c", "0003", '"0001"')
    assert code_head.__wrapped__(tmp_path) is None  # two heads: alembic decides
    rev("d", "0004", '("0002", "0003")')
    assert code_head.__wrapped__(tmp_path) == "0004"  # a merge revision


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


async def test_0012_backfills_timezone_from_the_field_where_valid(
    db_url: tuple[str, str | None],
) -> None:
    url, schema = db_url
    database = Database.open(url, schema=schema)
    try:
        await database.upgrade("0011")
        async with database.write() as conn:
            bot_id = (await conn.execute(insert(Bot).values(**_bot()).returning(Bot.id))).scalar()
            for chat, fields in (
                (1, {"timezone": "Asia/Tokyo"}),
                (2, {"timezone": "Mars/Olympus"}),
                (3, {"city": "Berlin"}),
                (4, None),
            ):
                await conn.exec_driver_sql(
                    "INSERT INTO subscribers (bot_id, chat_id, status, is_group, fields, "
                    "joined_at, updated_at) VALUES "
                    f"({bot_id}, {chat}, 'active', false, "
                    f"{'NULL' if fields is None else repr(json.dumps(fields))}, "
                    "'2026-12-07 00:00:00+00:00', '2026-12-07 00:00:00+00:00')"
                )
        await database.upgrade()
        async with database.read() as conn:
            got = dict((await conn.execute(select(Subscriber.chat_id, Subscriber.timezone))).all())
        assert got == {1: "Asia/Tokyo", 2: None, 3: None, 4: None}
    finally:
        await database.close()
