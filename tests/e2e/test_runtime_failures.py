"""A handler that fails skips only its own update: its writes and its replies are dropped,
it is still recorded as processed, and the rest of its batch goes through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.support import QUICK_TOML, eventually, processed, register, write_config

from botdesk.app import App
from botdesk.runtime.assembly import build_runtime
from botdesk.store.models import ConsentEvent, Message, Subscriber

BOT = "shop_bot"


@pytest.fixture(autouse=True)
def _quick_home(home: Path) -> None:
    write_config(home, QUICK_TOML)  # autouse: written before the app fixture opens the home


async def explode_after_handling(
    handler: Callable[[Any, dict[str, Any]], Awaitable[Any]], event: Any, data: dict[str, Any]
) -> Any:
    """Fails *after* the handlers wrote and queued their reply: all of it must be undone."""
    result = await handler(event, data)
    if getattr(event, "text", None) == "/start boom":
        raise RuntimeError("handler exploded")
    return result


async def test_failing_update_is_skipped_alone(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", BOT)
    a, b, c = (u.id for u in sandbox.add_users(3))
    # queued before the runtime starts, so the first getUpdates returns them as one batch
    await sandbox.user_start(a, BOT)
    await sandbox.user_start(b, BOT, payload="boom")
    await sandbox.user_start(c, BOT)
    await sandbox.user_send(b, BOT, "still there?")
    rt = await build_runtime(app, poll_timeout=1)
    rt.dispatcher.message.outer_middleware(explode_after_handling)
    await rt.start()
    try:
        await eventually(lambda: _processed_is(app, 4))
        await eventually(lambda: _welcomed(sandbox, {a, c}))
        run = rt.runs["shop"]
        assert run.processor.errors == 1 and run.processor.handled == 4
    finally:
        await rt.stop()
    async with app.db.read() as conn:
        subs = dict((await conn.execute(select(Subscriber.chat_id, Subscriber.status))).all())
        events = (await conn.execute(select(ConsentEvent.chat_id))).scalars().all()
        texts = (
            (await conn.execute(select(Message.text).where(Message.direction == "in")))
            .scalars()
            .all()
        )
    assert subs == {a: "active", c: "active"}  # b's /start was rolled back
    assert sorted(events) == sorted([a, c])
    assert sorted(texts) == sorted(["/start", "/start", "still there?"])
    # b got no welcome for the failed /start (at most the auto-reply to the next message)
    assert not any("Welcome" in m["text"] for m in sandbox.messages(bot=BOT, chat_id=b))


async def _processed_is(app: App, n: int) -> bool:
    return await processed(app) == n


async def _welcomed(sb: Any, chats: set[int]) -> bool:
    got = {m["chat_id"] for m in sb.messages(bot=BOT) if "Welcome" in m["text"]}
    return chats <= got
