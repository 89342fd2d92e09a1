"""The runtime on its own thread (the console's single-machine mode), on a real SQLite home."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from botdesk import audience
from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.errors import ConfigError
from botdesk.runtime.background import BackgroundRuntime
from botdesk.sandbox.testing import running_sandbox, until


async def test_serves_from_its_own_thread_and_loop_and_stops(home: Path) -> None:
    from botdesk.runtime.assembly import build_runtime

    seen: dict[str, Any] = {}

    async def build(app: Any) -> Any:
        seen["thread"] = threading.current_thread().name
        seen["loop"] = asyncio.get_running_loop()
        return await build_runtime(app, poll_timeout=1)

    (home / "botdesk.toml").write_text("[assistant]\nembeddings = false\n")
    async with running_sandbox(seed=3) as sb:
        info = sb.add_bot("bg_test_bot")
        async with open_app(home, configure_logs=False) as app:
            await BotRegistry(app.db, app.secrets).add(
                "bg", info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=5
            )
            rt = BackgroundRuntime(home, build=build)
            await rt.start()
            try:
                assert seen["thread"] == "botdesk-runtime"
                assert seen["loop"] is not asyncio.get_running_loop()
                await until(lambda: "bg" in rt.runs, within=10, what="the bot served")
                # A /start reaches the runtime over loopback; its thread records the subscriber
                # in the home's database, where this loop's own App reads it.
                (user,) = sb.add_users(1)
                await sb.user_start(user.id, "bg_test_bot")

                bot_id = (await BotRegistry(app.db, app.secrets).get("bg")).id

                async def joined() -> bool:
                    return await audience.count(app.db, bot_id, None, now=datetime.now(UTC)) == 1

                await until(joined, within=10, what="the subscriber recorded")
            finally:
                await rt.stop()
    assert not any(t.name == "botdesk-runtime" for t in threading.enumerate())
    assert rt.runs == frozenset()
    await rt.stop()  # a second stop is harmless


async def test_an_error_while_starting_reaches_the_caller(home: Path) -> None:
    async def build(app: Any) -> Any:
        raise ConfigError("delivery.rate must be positive", key="delivery.rate")

    rt = BackgroundRuntime(home, build=build)
    with pytest.raises(ConfigError, match="must be positive"):
        await rt.start()
    assert not any(t.name == "botdesk-runtime" for t in threading.enumerate())
    assert rt.runs == frozenset()
