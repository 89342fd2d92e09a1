"""Updates: long polling semantics and webhook delivery to a loopback server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from botdesk.sandbox import BotInfo, Sandbox
from botdesk.sandbox.testing import running_sandbox


async def test_start_payload_commands_and_offset(sandbox: Sandbox, tg: Bot) -> None:
    plain, deep = sandbox.add_users(2)
    await sandbox.user_start(plain.id, "shop_bot")
    await sandbox.user_start(deep.id, "shop_bot", payload="promo")
    await sandbox.user_send(plain.id, "shop_bot", "hi /help there")
    updates = await tg.get_updates()
    texts = [u.message.text for u in updates if u.message]
    assert texts == ["/start", "/start promo", "hi /help there"]
    assert updates[2].message and updates[2].message.entities
    assert (updates[2].message.entities[0].offset, updates[2].message.entities[0].length) == (3, 5)
    again = await tg.get_updates(offset=updates[1].update_id)  # confirms the first one
    assert [u.update_id for u in again] == [u.update_id for u in updates[1:]]
    assert await tg.get_updates(offset=updates[-1].update_id + 1) == []
    assert len(await tg.get_updates(limit=1)) == 0


async def test_limit_and_negative_offset(sandbox: Sandbox, tg: Bot) -> None:
    sandbox.add_users(5, start_bots=["shop_bot"])
    assert len(await tg.get_updates(limit=2)) == 2
    last = await tg.get_updates(offset=-1)
    assert len(last) == 1 and len(await tg.get_updates()) == 1


async def test_timeout_holds_until_an_update_arrives(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    first = await tg.get_updates()
    offset = first[-1].update_id + 1
    poll = asyncio.create_task(tg.get_updates(offset=offset, timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await sandbox.user_send(user.id, "shop_bot", "late")
    updates = await asyncio.wait_for(poll, 5)
    assert updates[0].message and updates[0].message.text == "late"
    empty = await tg.get_updates(offset=updates[0].update_id + 1, timeout=1)
    assert empty == []


async def test_newer_poll_ends_older_with_conflict(sandbox: Sandbox, tg: Bot) -> None:
    old = asyncio.create_task(tg.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    newer = asyncio.create_task(tg.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(old, 5)
    assert await newer == []


async def test_allowed_updates_filter(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    await tg.get_updates(offset=-1)
    last = (await tg.get_updates())[-1].update_id
    await tg.get_updates(offset=last + 1, allowed_updates=["callback_query"])
    await sandbox.user_send(user.id, "shop_bot", "ignored")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="a")]]
    )
    msg = await tg.send_message(user.id, "pick", reply_markup=markup)
    await sandbox.user_press(user.id, "shop_bot", msg.message_id, "a")
    updates = await tg.get_updates(offset=last + 1)
    assert [u.callback_query.data for u in updates if u.callback_query] == ["a"]
    assert all(u.message is None for u in updates)


async def test_block_unblock_and_edit_updates(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    sent = await sandbox.user_send(user.id, "shop_bot", "typo")
    await sandbox.user_edit(user.id, "shop_bot", sent["message_id"], "fixed")
    await sandbox.user_block(user.id, "shop_bot")
    await sandbox.user_unblock(user.id, "shop_bot")
    updates = await tg.get_updates()
    edited = [u.edited_message for u in updates if u.edited_message]
    assert edited and edited[0].text == "fixed" and edited[0].edit_date
    members = [u.my_chat_member for u in updates if u.my_chat_member]
    assert [(m.old_chat_member.status, m.new_chat_member.status) for m in members] == [
        ("member", "kicked"),
        ("kicked", "member"),
    ]


class Receiver:
    """A loopback webhook endpoint that fails its first ``failures`` deliveries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.got: list[dict[str, Any]] = []
        self.secrets: list[str | None] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        self.got.append(await request.json())
        self.arrived.set()
        return web.Response(text="ok")


async def test_webhook_delivery_secret_retries_and_conflict(shop: BotInfo) -> None:
    receiver = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with running_sandbox(webhook_retry_base=0.05) as sb:
            info = sb.add_bot("hook_bot")
            from botdesk.sandbox.testing import aiogram_bot

            async with aiogram_bot(sb, info.token) as bot:
                with pytest.raises(Exception, match="loopback"):
                    await bot.set_webhook("https://example.com/hook")
                user = sb.add_users(1)[0]
                await sb.user_start(user.id, "hook_bot")
                assert await bot.set_webhook(
                    f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t", max_connections=5
                )
                with pytest.raises(TelegramConflictError, match="webhook is active"):
                    await bot.get_updates()
                await asyncio.wait_for(receiver.arrived.wait(), 5)
                assert receiver.got[0]["message"]["text"] == "/start"
                assert receiver.secrets == ["s3cr3t"] * 3  # two failures, one success
                hook = await bot.get_webhook_info()
                assert hook.url.endswith("/hook") and hook.pending_update_count == 0
                assert (
                    hook.last_error_message
                    == "Wrong response from the webhook: 500 Internal Server Error"
                )
                assert await bot.delete_webhook() is True
                await sb.user_send(user.id, "hook_bot", "polled")
                updates = await bot.get_updates()
                assert updates[-1].message and updates[-1].message.text == "polled"
                assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_webhook_pending_count_when_unreachable(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    assert await tg.set_webhook("http://127.0.0.1:9/nothing")  # port 9: nobody listens
    await asyncio.sleep(0.2)
    info = await tg.get_webhook_info()
    assert info.pending_update_count == 1 and info.last_error_message == "Connection refused"
    assert await tg.delete_webhook(drop_pending_updates=True)
    assert (await tg.get_webhook_info()).pending_update_count == 0
