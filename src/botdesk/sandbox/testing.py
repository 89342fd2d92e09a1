"""Test helpers other test folders can reuse: a running sandbox as an async context manager.

``running_sandbox(**overrides)`` starts a sandbox on an ephemeral loopback port with no
latency and no faults unless overridden, and stops it on exit. ``aiogram_bot`` builds an
aiogram ``Bot`` pointed at it (aiogram is imported lazily: the sandbox itself needs none).
``until`` waits, letting the loop run, for a condition (the tests' and benches' one poll).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from .config import SandboxConfig
from .server import Sandbox

TEST_DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "latency": (0.0, 0.0)}


@asynccontextmanager
async def running_sandbox(**overrides: Any) -> AsyncIterator[Sandbox]:
    config = SandboxConfig().with_(**{**TEST_DEFAULTS, **overrides})
    async with Sandbox(config) as sb:
        yield sb


@asynccontextmanager
async def aiogram_bot(sb: Sandbox, token: str, **session_kwargs: Any) -> AsyncIterator[Any]:
    """An aiogram Bot talking to ``sb``; its session is closed on exit."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(sb.base_url), **session_kwargs)
    bot = Bot(token, session=session)
    try:
        yield bot
    finally:
        await session.close()


async def until(
    check: Callable[[], Any], *, within: float = 20.0, what: str = "", every: float = 0.05
) -> None:
    """Poll ``check()`` (awaited when it returns an awaitable) until it is truthy.

    Raises AssertionError naming ``what`` after ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        got = check()
        if isinstance(got, Awaitable):
            got = await got
        if got:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not reached in {within:g}s: {what or check}")
        await asyncio.sleep(every)
