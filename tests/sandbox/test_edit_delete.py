"""Editing and deleting sent messages: captions, keyboards, batches, the 48-hour window."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from botdesk.sandbox import Sandbox
from botdesk.sandbox.errors import SandboxError
from botdesk.sandbox.methods import DELETE_WINDOW_S

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x40\x00\x00\x00\x20" + b"\x00" * 20


def link(label: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, url="https://example.com")]]
    )


def record(sandbox: Sandbox, chat_id: int, message_id: int) -> dict[str, Any]:
    return next(m for m in sandbox.messages(chat_id=chat_id) if m["message_id"] == message_id)


async def test_edit_caption_and_keyboard(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    photo = await tg.send_photo(user.id, BufferedInputFile(PNG, "p.png"), caption="old")
    edited = await tg.edit_message_caption(
        chat_id=user.id,
        message_id=photo.message_id,
        caption="<b>new</b>",
        parse_mode="HTML",
        reply_markup=link("Shop"),
    )
    assert getattr(edited, "caption", None) == "new"
    rec = record(sandbox, user.id, photo.message_id)
    assert rec["caption"] == "new" and rec["entities"][0]["type"] == "bold"
    assert rec["reply_markup"]["inline_keyboard"][0][0]["text"] == "Shop"
    assert rec["edits"] == 1 and rec["edit_calls"] == 1
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await tg.edit_message_caption(
            chat_id=user.id,
            message_id=photo.message_id,
            caption="<b>new</b>",
            parse_mode="HTML",
            reply_markup=link("Shop"),
        )
    # Only the keyboard: the caption stays.
    await tg.edit_message_reply_markup(
        chat_id=user.id, message_id=photo.message_id, reply_markup=link("Other")
    )
    rec = record(sandbox, user.id, photo.message_id)
    assert rec["caption"] == "new" and rec["edits"] == 2 and rec["edit_calls"] == 3
    assert rec["reply_markup"]["inline_keyboard"][0][0]["text"] == "Other"


async def test_caption_rules(tg: Bot, user: Any) -> None:
    text = await tg.send_message(user.id, "plain")
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await tg.edit_message_caption(chat_id=user.id, message_id=text.message_id, caption="x")
    photo = await tg.send_photo(user.id, BufferedInputFile(PNG, "p.png"), caption="c")
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await tg.edit_message_text("x", chat_id=user.id, message_id=photo.message_id)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await tg.edit_message_caption(
            chat_id=user.id, message_id=photo.message_id, caption="x" * 1025
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await tg.edit_message_caption(chat_id=user.id, message_id=999, caption="x")


async def test_delete_window_follows_the_sandbox_clock(
    sandbox: Sandbox, tg: Bot, user: Any
) -> None:
    old = await tg.send_message(user.id, "old")
    sandbox.advance_clock(DELETE_WINDOW_S - 60)
    fresh = await tg.send_message(user.id, "fresh")
    sandbox.advance_clock(61)  # "old" is now 48 hours and a second old; "fresh" 61 s
    with pytest.raises(TelegramBadRequest, match="message can't be deleted for everyone"):
        await tg.delete_message(user.id, old.message_id)
    assert await tg.delete_message(user.id, fresh.message_id) is True
    assert not record(sandbox, user.id, old.message_id)["deleted"]
    assert record(sandbox, user.id, old.message_id)["delete_calls"] == 1
    # Editing has no such window for the bot's own messages.
    await tg.edit_message_text("still editable", chat_id=user.id, message_id=old.message_id)
    with pytest.raises(SandboxError):
        sandbox.advance_clock(-1)


async def test_delete_messages_skips_what_it_cannot_delete(
    sandbox: Sandbox, tg: Bot, user: Any
) -> None:
    sent = [await tg.send_message(user.id, f"m{i}") for i in range(3)]
    ids = [m.message_id for m in sent]
    assert await tg.delete_messages(user.id, [*ids, 999]) is True
    assert all(record(sandbox, user.id, i)["deleted"] for i in ids)
    assert await tg.delete_messages(user.id, ids) is True  # already gone: skipped
    assert all(record(sandbox, user.id, i)["delete_calls"] == 2 for i in ids)
    with pytest.raises(TelegramBadRequest, match="too many messages to delete"):
        await tg.delete_messages(user.id, list(range(1, 102)))


async def test_clock_control_endpoint(sandbox: Sandbox, shop: Any) -> None:
    base = sandbox.base_url
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sandbox/clock", json={"advance": 7200}) as r:
            assert (await r.json()) == {"offset": 7200.0}
        async with http.get(f"{base}/sandbox/clock") as r:
            body = await r.json()
        assert body["offset"] == 7200.0 and body["now"] == sandbox.world.now()
        async with http.post(f"{base}/sandbox/clock", json={"advance": -5}) as r:
            assert r.status == 400
