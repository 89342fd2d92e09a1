"""Conversational replies are written ahead and never silently lost.

- A reply that can no longer be sent (the user blocked the bot) is given up and kept in the
  conversation with its reason, which `botdesk inbox show` prints.
- `serve` killed with -9 right after it accepted 30 /start updates and sent its first
  welcomes, the rest queued behind a 4 msg/s limit: a restarted `serve` sends what was
  pending; each welcome is delivered once, or recorded uncertain when its request may have
  left, never twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.campaign_support import copies
from tests.e2e.support import (
    QUICK_TOML,
    ServeProcess,
    eventually,
    processed,
    register,
    running,
    write_config,
)

from botdesk import inbox
from botdesk.app import App, open_app
from botdesk.cli.common import STATE
from botdesk.cli.main import main
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import Outbox

WELCOME = "Hello there"
TOML = (
    QUICK_TOML
    + "\n[delivery]\nlease_seconds = 2\n\n[network]\nread_timeout = 5.0\nconnect_timeout = 2.0\n"
    + f'\n[bots.shop]\nwelcome_text = "{WELCOME} {{first_name}}"\n'
)


async def _states(app: App) -> Counter[str]:
    async with app.db.read() as conn:
        rows = await conn.execute(select(Outbox.state, func.count()).group_by(Outbox.state))
        return Counter({s: int(n) for s, n in rows})


async def test_a_reply_to_a_user_who_blocked_the_bot_is_shown_not_delivered(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(STATE, "home", None)
    monkeypatch.setenv("COLUMNS", "220")
    write_config(home, TOML)
    async with running_sandbox(seed=41) as sb:
        async with open_app(home, configure_logs=False) as app:
            await register(app, sb, "shop", "shop_bot")
            user = sb.add_users(1)[0].id
            async with running(app):
                await sb.user_start(user, "shop_bot")
                await eventually(lambda: _welcomed(sb, user))
                await sb.user_block(user, "shop_bot")
                item = await inbox.enqueue_reply(app.db, bot="shop", chat_id=user, text="late")

                async def settled() -> bool:
                    return (await inbox.reply_state(app.db, item))[0] not in ("pending", "sending")

                await eventually(settled)
                state, error = await inbox.reply_state(app.db, item)
            shown = await inbox.show(app.db, bot="shop", chat_id=user)
    assert state == "failed" and error and "blocked" in error
    last = shown[-1]
    assert (last.author, last.text) == ("operator", "late")
    assert last.not_delivered == error
    assert shown[-2].marker() is None  # the welcome arrived
    # The CLI runs its own event loop: on a thread, as a user's shell would beside serve.
    argv = ["inbox", "show", "--bot", "shop", "--chat", str(user), "--home", str(home)]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert f"not delivered: {error}" in out


async def _welcomed(sb: Any, user: int) -> bool:
    return copies(sb, "shop_bot", WELCOME).get(user, 0) == 1


async def test_kill_9_with_welcomes_queued_each_is_sent_once_after_restart(home: Path) -> None:
    write_config(home, TOML)
    # 4 msg/s with 50-150 ms per request: the welcomes queue up behind the limit.
    async with (
        running_sandbox(seed=42, bot_rate=4.0, bot_burst=2.0, latency=(0.05, 0.15)) as sb,
        open_app(home, configure_logs=False) as app,
    ):
        await register(app, sb, "shop", "shop_bot")
        users = [u.id for u in sb.add_users(30)]
        serve = await ServeProcess(home).start()
        try:
            for uid in users:
                await sb.user_start(uid, "shop_bot")
            await eventually(lambda: _processed_at_least(app, 30), within=60, every=0.01)
            await eventually(lambda: _sent_at_least(sb, 3), within=30, every=0.01)
            await serve.kill()  # mid-stream: some welcomes out, some on the wire, most queued
            before = copies(sb, "shop_bot", WELCOME)
            left = await _states(app)
            assert sum(before.values()) < 20, "the welcomes were out before the kill"
            assert left["pending"] + left["sending"] > 10  # written ahead, not lost
            serve = await ServeProcess(home).start()

            async def done() -> bool:
                s = await _states(app)
                return s["pending"] + s["sending"] == 0

            await eventually(done, within=90)
            assert await serve.signal(signal.SIGTERM) == 0
        finally:
            await serve.close()
        got = copies(sb, "shop_bot", WELCOME)
        final = await _states(app)
        async with app.db.read() as conn:
            rows = (await conn.execute(select(Outbox.chat_id, Outbox.state))).all()
    assert "Traceback" not in serve.output
    assert len(rows) == 30 and {c for c, _ in rows} == set(users)
    assert max(got.values()) == 1  # nobody welcomed twice
    for chat, state in rows:
        if state == "sent":
            assert got.get(chat) == 1
        else:  # only a request that may have left is uncertain
            assert state == "uncertain" and got.get(chat, 0) <= 1
    # Exactly the rows whose request was on the wire at the kill are uncertain.
    assert final["uncertain"] == left["sending"]
    assert sum(got.values()) >= 28
    print(
        f"before the kill: {sum(before.values())} sent; states then {dict(left)}; end {dict(final)}"
    )


async def _sent_at_least(sb: Any, n: int) -> bool:
    return sum(copies(sb, "shop_bot", WELCOME).values()) >= n


async def _processed_at_least(app: App, n: int) -> bool:
    return await processed(app) >= n
