"""Fixtures shared by every test folder: homes, databases on both backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("BOTDESK_TEST_PG_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's real home, keyring or BOTDESK_* settings."""
    for k in list(os.environ):
        if k.startswith("BOTDESK_") and k != "BOTDESK_TEST_PG_URL":
            monkeypatch.delenv(k)
    monkeypatch.setenv("BOTDESK_KEYRING", "off")
    monkeypatch.setenv("BOTDESK_HOME", str(tmp_path / "home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    p = tmp_path / "home"
    p.mkdir(exist_ok=True)
    return p


def pg_required() -> None:
    if not PG_URL:
        if IN_CI:
            pytest.fail(
                "BOTDESK_TEST_PG_URL must be set in CI: PostgreSQL tests may not be skipped"
            )
        pytest.skip("BOTDESK_TEST_PG_URL not set")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards."""
    pg_required()
    import asyncio

    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def exec_(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(exec_(f'CREATE SCHEMA "{schema}"'))
    yield schema
    asyncio.run(exec_(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) for each backend; the same storage tests run on both."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'botdesk.db'}", None
    else:
        schema = request.getfixturevalue("pg_schema")
        yield PG_URL, schema


@pytest.fixture
async def db(db_url: tuple[str, str | None]) -> AsyncIterator[object]:
    from botdesk.store.db import Database

    url, schema = db_url
    database = Database.open(url, schema=schema)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()
