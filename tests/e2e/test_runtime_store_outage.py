"""The database refusing writes for a while (SQLite locked by another process past every
retry) pauses a bot; it does not end it: once writes work again, the bot catches up.

A bot can still be "paused" at the moment its update is recorded: a per-bot worker whose
write the outage caught fails and ends the bot's turn, the turn's shielded update batch
commits once the lock is released, then the supervisor pauses the bot for ``lease_ttl/3``
before it takes the lease again. So the tests wait for "serving", and prove it with one more
update, rather than reading the state at that instant (which failed once under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import eventually, processed, register, running, write_config

from botdesk.app import App
from botdesk.runtime.assembly import build_runtime
from botdesk.runtime.service import Runtime

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
        async with _write_outage(home):
            await sandbox.user_send(user, BOT, "written during the outage")
            await asyncio.sleep(OUTAGE_S)
            assert await processed(app) == 1
        await eventually(lambda: _processed_is(app, 2), within=30)
        await _serves_again(app, sandbox, rt, user, expect=3)


async def test_bot_resumes_after_a_worker_failed_on_the_outage(
    app: App, sandbox: Any, home: Path
) -> None:
    """The path of the docstring made certain: a worker whose write starts during the outage
    fails past every retry. Its failure ends the turn (the bot is paused), unless the lease
    renewal failing meanwhile ended it first; either way the bot serves again."""
    await register(app, sandbox, "shop", BOT)
    user = sandbox.add_users(1)[0].id
    outage = asyncio.Event()
    failed = asyncio.Event()

    async def writes_during_the_outage(_channel: Any, stop: asyncio.Event) -> None:
        if outage.is_set():  # a later turn: nothing to do
            await stop.wait()
            return
        await outage.wait()
        try:
            async with app.db.write():
                pass
        finally:
            failed.set()

    rt = await build_runtime(app, poll_timeout=1)
    rt.bot_workers.append(writes_during_the_outage)
    await rt.start()
    try:
        await sandbox.user_start(user, BOT)
        await eventually(lambda: _processed_is(app, 1))
        async with _write_outage(home):
            outage.set()
            await sandbox.user_send(user, BOT, "written during the outage")
            await asyncio.wait_for(failed.wait(), 30)  # gave up after its retries
        await eventually(lambda: _processed_is(app, 2), within=30)
        await _serves_again(app, sandbox, rt, user, expect=3)
    finally:
        await rt.stop()


@contextlib.asynccontextmanager
async def _write_outage(home: Path) -> AsyncIterator[None]:
    """Another process's connection holds SQLite's write lock for the block."""
    # The blocker waits for the lock in a thread: waiting in the event loop itself would
    # freeze a runtime transaction that already holds the lock (a deadlock until timeout).
    blocker = sqlite3.connect(
        home / "botdesk.db", isolation_level=None, timeout=60, check_same_thread=False
    )
    try:
        await asyncio.to_thread(blocker.execute, "BEGIN IMMEDIATE")  # takes the lock, keeps it
        yield
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


async def _serves_again(app: App, sandbox: Any, rt: Runtime, user: int, *, expect: int) -> None:
    # The supervisor retries every lease_ttl/3 (1 s here): serving again within a few rounds.
    await eventually(lambda: _state_is(rt, "serving"), within=15)
    await sandbox.user_send(user, BOT, "after the outage")
    await eventually(lambda: _processed_is(app, expect), within=15)
    assert rt.runs["shop"].state == "serving"  # nothing failed since the outage ended
    assert rt.runs["shop"].task is not None and not rt.runs["shop"].task.done()


async def _state_is(rt: Runtime, state: str) -> bool:
    return rt.runs["shop"].state == state


async def _processed_is(app: App, n: int) -> bool:
    return await processed(app) == n
