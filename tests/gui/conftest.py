"""Fixtures for the desktop console's tests: Qt offscreen, one qasync loop per test, and a
console opened on a home whose bot is registered against a sandbox on loopback.

A test is a coroutine run on the qasync loop (``drive``): the services, the sandbox and the
widgets all live on the GUI thread, as in the real console.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import qasync

from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.sandbox.testing import running_sandbox, until

BOT = "shop"
USERNAME = "shop_test_bot"
# Lexical retrieval (no model load per test); the sandbox's limits are Telegram's.
QUICK_TOML = """
[assistant]
embeddings = false
"""


@pytest.fixture
def qloop(qapp: Any) -> Iterator[qasync.QEventLoop]:
    qapp.setQuitOnLastWindowClosed(False)  # closing a window must not stop the test's loop
    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def drive(qloop: qasync.QEventLoop) -> Callable[..., Any]:
    def run(coro: Coroutine[Any, Any, Any], timeout: float = 90.0) -> Any:
        return qloop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run


@asynccontextmanager
async def console_on(
    home: Path, *, toml: str = QUICK_TOML, users: int = 0, **sb_kw: Any
) -> AsyncIterator[Any]:
    """(window, sandbox, bot info): a served console with ``users`` subscribers who started."""
    from botdesk.gui.app import console

    home.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - set-up
    (home / "botdesk.toml").write_text(toml, encoding="utf-8")
    async with running_sandbox(seed=11, **sb_kw) as sb:
        info = sb.add_bot(USERNAME)
        async with open_app(home, configure_logs=False) as app:
            await BotRegistry(app.db, app.secrets).add(
                BOT, info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=5
            )
        async with console(home, serve=True) as window:
            window.ctx.confirm = lambda *_a: True
            people = sb.add_users(users) if users else []
            for u in people:
                await sb.user_start(u.id, USERNAME)
            if users:
                services = window.ctx.services

                async def all_in() -> bool:
                    return await services.subscriber_count(BOT, None) >= users

                await until(all_in, within=30, what=f"{users} subscribers")
            window.show()
            yield window, sb, people
