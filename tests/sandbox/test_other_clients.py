"""A second, unrelated Bot API client (python-telegram-bot, httpx-based) works unmodified."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Bot
from telegram.error import Forbidden

from botdesk.sandbox import Sandbox


async def test_python_telegram_bot(sandbox: Sandbox, shop: Any, user: Any) -> None:
    async with Bot(shop.token, base_url=f"{sandbox.base_url}/bot") as bot:
        assert (await bot.get_me()).username == "shop_bot"
        sent = await bot.send_message(user.id, "<b>x</b> y", parse_mode="HTML")
        assert sent.text == "x y" and sent.entities[0].type == "bold"
        updates = await bot.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "/start"
        await sandbox.user_block(user.id, "shop_bot")
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(user.id, "z")
