"""`botdesk serve` as a real process: kill -9 mid-flood loses nothing and repeats nothing;
SIGTERM and SIGINT end it cleanly (exit 0, lease released) within a bound; a revoked token
is logged with its reason while the other bot keeps serving, as /metrics shows.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from tests.e2e.support import (
    ServeProcess,
    eventually,
    free_port,
    processed,
    register,
    scalar,
    write_config,
)

from botdesk.app import App, open_app
from botdesk.bots import BotRegistry
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Bot, BotLease, Message, ProcessedUpdate

BOT = "shop_bot"
# Short leases: the killed process cannot release its lease, the restarted one (another
# pid, so another owner) waits for it to expire.
QUIET_TOML = """
[assistant]
embeddings = false

[delivery]
rate = 1000.0
lease_seconds = 2

[bots.shop]
auto_reply = ""
"""
REPLYING_TOML = """
[assistant]
embeddings = false

[delivery]
rate = 1000.0
lease_seconds = 2
"""


@pytest.fixture
async def sb() -> AsyncIterator[Any]:
    async with running_sandbox(seed=5, limits=False) as s:
        yield s


async def _home_app(home: Path, sb: Any, toml: str) -> AsyncIterator[App]:
    write_config(home, toml)
    async with open_app(home, configure_logs=False) as app:
        await register(app, sb, "shop", BOT)
        yield app


@pytest.fixture
async def quiet_app(home: Path, sb: Any) -> AsyncIterator[App]:
    async for a in _home_app(home, sb, QUIET_TOML):
        yield a


@pytest.fixture
async def replying_app(home: Path, sb: Any) -> AsyncIterator[App]:
    async for a in _home_app(home, sb, REPLYING_TOML):
        yield a


async def _inbound_texts(app: App) -> list[str]:
    async with app.db.read() as conn:
        rows = await conn.execute(select(Message.text).where(Message.direction == "in"))
        return [r[0] for r in rows]


async def test_kill_9_mid_flood_processes_each_update_exactly_once(
    quiet_app: App, sb: Any, home: Path
) -> None:
    app = quiet_app
    users = [u.id for u in sb.add_users(250)]
    texts = [f"m{uid}-{k}" for k in range(10) for uid in users]  # 2,500 updates
    first, while_dead, after = texts[:1500], texts[1500:2000], texts[2000:]
    by_text = {t: int(t[1:].split("-")[0]) for t in texts}

    async def push(batch: list[str], pace: float) -> None:
        for i, t in enumerate(batch):
            await sb.user_send(by_text[t], BOT, t)
            if i % 25 == 24:
                await asyncio.sleep(pace)

    serve = await ServeProcess(home).start()
    try:
        flood = asyncio.create_task(push(first, 0.005))
        await eventually(lambda: _at_least(app, 400), within=60, every=0.01)
        await serve.kill()  # mid-flood: the pusher is still going or the backlog is not drained
        killed_at = await processed(app)
        await flood
        assert killed_at < len(first), "the flood was over before the kill; nothing was tested"
        await push(while_dead, 0)
        assert await processed(app) == killed_at  # nobody is serving
        serve = await ServeProcess(home).start()
        await push(after, 0.002)
        await eventually(lambda: _at_least(app, len(texts)), within=90)
        assert await serve.signal(signal.SIGTERM) == 0
    finally:
        await serve.close()

    inbound = Counter(await _inbound_texts(app))
    assert set(inbound) == set(texts)
    assert max(inbound.values()) == 1
    async with app.db.read() as conn:
        ids = list(
            (await conn.execute(select(ProcessedUpdate.update_id).order_by("update_id"))).scalars()
        )
    assert ids == list(range(1, len(texts) + 1))  # no gap, no duplicate
    assert await scalar(app, select(Bot.update_offset)) == len(texts) + 1
    assert "Traceback" not in serve.output


async def _at_least(app: App, n: int) -> bool:
    return await processed(app) >= n


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_cleanly(replying_app: App, sb: Any, home: Path, sig: int) -> None:
    app = replying_app
    users = [u.id for u in sb.add_users(20)]
    serve = await ServeProcess(home, "--metrics", "127.0.0.1:0").start()
    try:
        for uid in users:
            await sb.user_start(uid, BOT)
        await eventually(lambda: _at_least(app, 20), within=30)
        bot_id = (await BotRegistry(app.db, app.secrets).get("shop")).id
        assert await scalar(app, select(BotLease.owner).where(BotLease.bot_id == bot_id))
        for uid in users:  # in flight when the signal lands
            await sb.user_send(uid, BOT, "hello?")
        started = asyncio.get_running_loop().time()
        code = await serve.signal(sig, within=20)
        took = asyncio.get_running_loop().time() - started
    finally:
        await serve.close()
    assert code == 0, serve.output
    assert took < 20
    assert "stopped cleanly" in serve.output
    # a clean stop hands the bot over at once instead of letting the lease expire
    assert await scalar(app, select(func.count()).select_from(BotLease)) == 0
    # whatever was committed is whole: each processed update left its inbound message
    n = await processed(app)
    assert 20 <= n <= 40
    assert len(await _inbound_texts(app)) == n


async def test_revoked_token_is_logged_and_the_other_bot_keeps_serving(
    quiet_app: App, sb: Any, home: Path
) -> None:
    app = quiet_app
    await register(app, sb, "news", "news_bot")
    reg = BotRegistry(app.db, app.secrets)
    shop, news = (await reg.get("shop")).id, (await reg.get("news")).id
    user = sb.add_users(1)[0].id
    mport = free_port()
    serve = await ServeProcess(home, "--metrics", f"127.0.0.1:{mport}").start()
    try:
        await sb.user_start(user, BOT)
        await sb.user_start(user, "news_bot")
        await eventually(lambda: _at_least(app, 2), within=30)
        sb.revoke_token("news_bot")
        # wakes the long poll already held open (accepted before the revocation), so the
        # next getUpdates meets the 401 now instead of after the 20 s poll timeout
        await sb.user_send(user, "news_bot", "anyone?")
        await eventually(lambda: _logged(serve, "bot stopped"), within=30)
        await sb.user_send(user, BOT, "still here")
        await eventually(lambda: _processed_for(app, shop, 2), within=30)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{mport}/metrics") as resp,
        ):
            metrics = await resp.text()
        assert await serve.signal(signal.SIGTERM) == 0
    finally:
        await serve.close()
    line = next(ln for ln in serve.output.splitlines() if "bot stopped" in ln)
    assert "bot=news" in line and "401" in line and "token was rejected" in line
    assert await processed(app, news) == 2
    assert (await reg.get("news")).status == "unauthorized"
    assert 'botdesk_bot_up{bot="shop"} 1.0' in metrics
    assert 'botdesk_bot_up{bot="news"} 0.0' in metrics


async def _logged(serve: ServeProcess, needle: str) -> bool:
    return needle in serve.output


async def _processed_for(app: App, bot_id: int, n: int) -> bool:
    return await processed(app, bot_id) == n
