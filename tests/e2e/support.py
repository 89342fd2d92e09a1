"""Helpers for end-to-end tests: register bots against the sandbox, run the runtime, wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.runtime.assembly import build_runtime
from botdesk.runtime.service import Runtime


async def register(app: App, sb: Any, name: str, username: str) -> Any:
    info = sb.add_bot(username)
    await BotRegistry(app.db, app.secrets).add(
        name, info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=5
    )
    return info


@asynccontextmanager
async def running(app: App, **kw: Any) -> AsyncIterator[Runtime]:
    kw.setdefault("poll_timeout", 1)
    rt = await build_runtime(app, **kw)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, every: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every)
