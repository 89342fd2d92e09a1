"""Webhook mode: the sandbox delivers to a loopback webhook with the secret header; requests
with a wrong or missing secret get 401, an unknown bot 404, and none of them is processed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from tests.e2e.support import (
    QUICK_TOML,
    eventually,
    free_port,
    processed,
    register,
    running,
    scalar,
    write_config,
)

from botdesk.app import App
from botdesk.runtime.webhook import SECRET_HEADER
from botdesk.store.models import Message, Subscriber

BOT = "shop_bot"


@pytest.fixture(autouse=True)
def _quick_home(home: Path) -> None:
    write_config(home, QUICK_TOML)  # autouse: written before the app fixture opens the home


def fake_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Mallory"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Mallory"},
            "from": user,
            "text": text,
        },
    }


async def _messages(app: App) -> int:
    return int(await scalar(app, select(func.count()).select_from(Message)))


async def test_webhook_secrets(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", BOT)
    user = sandbox.add_users(1)[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}/hook"
    async with running(app, webhook_base=base, listen=f"127.0.0.1:{port}"):
        hook = sandbox.world.bot(BOT).webhook
        assert hook.url == f"{base}/shop"
        secret = hook.secret_token
        assert len(secret) >= 32

        # the right secret, from the sandbox acting as Telegram
        await sandbox.user_start(user.id, BOT, payload="web")

        async def subscribed() -> bool:
            status = await scalar(
                app, select(Subscriber.status).where(Subscriber.chat_id == user.id)
            )
            return bool(status == "active")

        await eventually(subscribed)
        await eventually(lambda: _welcomed(sandbox, user.id))
        assert await processed(app) == 1

        # The sandbox shows the welcome before the runtime has recorded it as sent: wait for
        # both rows (the /start and the welcome), or the count races the forged requests.
        async def recorded() -> bool:
            return await _messages(app) == 2

        await eventually(recorded)
        before = await _messages(app)

        upd = fake_update(10_000, 555_000_111, "/start forged")
        async with aiohttp.ClientSession() as http:
            cases = [
                (f"{base}/shop", {SECRET_HEADER: "not-the-secret"}, 401),
                (f"{base}/shop", {}, 401),
                (f"{base}/shop", {SECRET_HEADER: secret[:-1]}, 401),
                (f"{base}/other", {SECRET_HEADER: secret}, 404),
            ]
            for url, headers, want in cases:
                async with http.post(url, json=upd, headers=headers) as resp:
                    assert resp.status == want, (url, headers)
            assert await processed(app) == 1
            assert await _messages(app) == before
            forged = select(func.count()).where(Subscriber.chat_id == 555_000_111)
            assert await scalar(app, forged) == 0

            # with the secret a body still has to be an update
            async with http.post(
                f"{base}/shop", data=b"{not json", headers={SECRET_HEADER: secret}
            ) as resp:
                assert resp.status == 400
            # a real update with the secret is processed once, even when posted twice
            for _ in range(2):
                async with http.post(
                    f"{base}/shop", json=upd, headers={SECRET_HEADER: secret}
                ) as resp:
                    assert resp.status == 200
        assert await processed(app) == 2
        assert await scalar(app, forged) == 1
        assert sandbox.world.bot(BOT).webhook.last_error_message == ""
    # stopping removes the webhook, so a later polling start is not refused with 409
    assert sandbox.world.bot(BOT).webhook.url == ""


async def _welcomed(sb: Any, chat_id: int) -> bool:
    return any("Welcome" in (m.get("text") or "") for m in sb.messages(bot=BOT, chat_id=chat_id))
