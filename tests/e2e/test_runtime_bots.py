"""Two bots served by one runtime: separate ledgers and update ids; a revoked token stops
only its own bot, with the reason recorded, while the other keeps serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.support import QUICK_TOML, eventually, processed, register, running, write_config

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.store.models import Subscriber


@pytest.fixture(autouse=True)
def _quick_home(home: Path) -> None:
    write_config(home, QUICK_TOML)  # autouse: written before the app fixture opens the home


async def _subs(app: App, bot_id: int) -> dict[int, str]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(Subscriber.chat_id, Subscriber.status).where(Subscriber.bot_id == bot_id)
        )
        return {r[0]: r[1] for r in rows}


async def test_two_bots_and_a_revoked_token(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", "shop_bot")
    await register(app, sandbox, "news", "news_bot")
    reg = BotRegistry(app.db, app.secrets)
    shop, news = (await reg.get("shop")).id, (await reg.get("news")).id
    users = [u.id for u in sandbox.add_users(6)]
    async with running(app) as rt:
        for uid in users[:4]:
            await sandbox.user_start(uid, "shop_bot")
        for uid in users[2:]:
            await sandbox.user_start(uid, "news_bot", payload="digest")

        async def both_served() -> bool:
            return await processed(app, shop) == 4 and await processed(app, news) == 4

        await eventually(both_served)
        assert await _subs(app, shop) == dict.fromkeys(users[:4], "active")
        assert await _subs(app, news) == dict.fromkeys(users[2:], "active")
        assert {n: r.state for n, r in rt.runs.items()} == {"shop": "serving", "news": "serving"}

        sandbox.revoke_token("news_bot")

        async def news_stopped() -> bool:
            return rt.runs["news"].state == "stopped"

        await eventually(news_stopped)
        reason = rt.runs["news"].reason or ""
        assert "401" in reason and "token" in reason
        # the other bot is untouched: it keeps answering
        await sandbox.user_send(users[0], "shop_bot", "/stop")
        await sandbox.user_start(users[5], "shop_bot")

        async def shop_kept_going() -> bool:
            return await processed(app, shop) == 6

        await eventually(shop_kept_going)
        assert rt.runs["shop"].state == "serving"
        news_task = rt.runs["news"].task
        assert news_task is not None

        async def news_task_ended() -> bool:
            # "stopped" is set first; the task then records the status and frees the lease
            # (two writes that may wait for the shop bot's on a slow machine)
            return news_task.done()

        await eventually(news_task_ended)
        # updates for the stopped bot are not consumed by anyone
        with_news = await processed(app, news)
    assert with_news == 4
    subs = await _subs(app, shop)
    assert subs[users[0]] == "unsubscribed" and subs[users[5]] == "active"
    rec = await reg.get("news")
    assert rec.status == "unauthorized"
    assert rec.status_reason is not None and "401" in rec.status_reason
    assert (await reg.get("shop")).status == "active"
    welcomes = sandbox.messages(bot="shop_bot")
    assert len([m for m in welcomes if "Welcome" in m["text"]]) == 5
