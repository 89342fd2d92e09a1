"""The database refusing writes for a while (SQLite locked by another process past every
retry) pauses a bot; it does not end it: once writes work again, the bot catches up.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import eventually, processed, register, running, write_config

from botdesk.app import App

BOT = "shop_bot"
# Writers give up after about 5 s of retries with this busy timeout; the outage lasts longer.
IMPATIENT_TOML = """
[assistant]
embeddings = false

[database]
busy_timeout_ms = 50

[delivery]
lease_seconds = 3
"""
OUTAGE_S = 8.0


@pytest.fixture(autouse=True)
def _impatient_home(home: Path) -> None:
    write_config(home, IMPATIENT_TOML)


async def test_bot_survives_a_write_outage(app: App, sandbox: Any, home: Path) -> None:
    await register(app, sandbox, "shop", BOT)
    user = sandbox.add_users(1)[0].id
    async with running(app) as rt:
        await sandbox.user_start(user, BOT)
        await eventually(lambda: _processed_is(app, 1))
        # The blocker waits for the lock in a thread: waiting in the event loop itself would
        # freeze a runtime transaction that already holds the lock (a deadlock until timeout).
        blocker = sqlite3.connect(
            home / "botdesk.db", isolation_level=None, timeout=60, check_same_thread=False
        )
        try:
            await asyncio.to_thread(blocker.execute, "BEGIN IMMEDIATE")  # takes the lock, keeps it
            await sandbox.user_send(user, BOT, "written during the outage")
            await asyncio.sleep(OUTAGE_S)
            assert await processed(app) == 1
        finally:
            if blocker.in_transaction:
                blocker.execute("ROLLBACK")
            blocker.close()
        await eventually(lambda: _processed_is(app, 2), within=30)
        assert rt.runs["shop"].state == "serving"
        assert rt.runs["shop"].task is not None and not rt.runs["shop"].task.done()


async def _processed_is(app: App, n: int) -> bool:
    return await processed(app) == n
