"""``gateway.send`` builds the Bot API call itself: the call aiogram's ``Bot`` methods make."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions

from botdesk.telegram.gateway import Broadcast, OutgoingMessage, _method
from botdesk.telegram.session import SplitTimeoutSession

TOKEN = "123456:" + "A" * 35


class _Captured(Exception):
    pass


class CaptureSession(AiohttpSession):
    """Records the method a ``Bot`` call builds instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[TelegramMethod[Any]] = []

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: Any = None) -> Any:  # noqa: ASYNC109
        self.seen.append(method)
        raise _Captured


async def _via_bot(bot: Bot, msg: OutgoingMessage) -> TelegramMethod[Any]:
    """What a hand-written aiogram call for ``msg`` sends (botdesk's own call before it built the
    method itself)."""
    keyboard = (
        InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text=t, url=u)] for t, u in msg.buttons]
        )
        if msg.buttons
        else None
    )
    common: dict[str, Any] = {
        "chat_id": msg.chat_id,
        "parse_mode": msg.parse_mode,
        "disable_notification": msg.disable_notification or None,
        "protect_content": msg.protect_content or None,
        "allow_paid_broadcast": msg.allow_paid_broadcast or None,
        "reply_markup": keyboard,
    }
    with pytest.raises(_Captured):
        if msg.photo is not None:
            await bot.send_photo(photo=str(msg.photo), caption=msg.text, **common)
        elif msg.document is not None:
            await bot.send_document(document=str(msg.document), caption=msg.text, **common)
        else:
            preview = LinkPreviewOptions(is_disabled=True) if msg.link_preview_disabled else None
            await bot.send_message(text=msg.text, link_preview_options=preview, **common)
    session = bot.session
    assert isinstance(session, CaptureSession)
    return session.seen[-1]


MESSAGES = [
    OutgoingMessage(chat_id=42, text="plain ünïcødé & more", parse_mode=None),
    OutgoingMessage(
        chat_id=-1001234567890,
        text="<b>Hi</b> Ann",
        parse_mode="HTML",
        buttons=(("Shop", "https://example.com/?a=1&b=2"), ("Help", "https://example.com/h")),
        disable_notification=True,
        protect_content=True,
        allow_paid_broadcast=True,
        link_preview_disabled=True,
    ),
    OutgoingMessage(chat_id=7, text="*caption*", parse_mode="MarkdownV2", photo="AgACAgIAAx"),
    OutgoingMessage(chat_id=7, text="price list", parse_mode=None, document="BQACAgIAAxkB"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=["plain", "everything", "photo", "document"])
async def test_the_same_request_as_aiogram_bot_methods(msg: OutgoingMessage) -> None:
    capture, ours = CaptureSession(), SplitTimeoutSession()
    try:
        reference = await _via_bot(Bot(TOKEN, session=capture), msg)
        built = _method(msg)
        assert type(built) is type(reference)
        assert built.model_dump() == reference.model_dump()
        bot = Bot(TOKEN, session=ours)
        assert (
            ours.build_form_data(bot, built)._value == ours.build_form_data(bot, reference)._value
        )  # type: ignore[union-attr]
    finally:
        await capture.close()
        await ours.close()


@pytest.mark.parametrize("msg", MESSAGES, ids=["plain", "everything", "photo", "document"])
async def test_a_broadcast_body_is_the_body_send_posts(msg: OutgoingMessage) -> None:
    session = SplitTimeoutSession()
    try:
        bot = Bot(TOKEN, session=session)
        broadcast = Broadcast(replace(msg, chat_id=0))
        for chat_id in (1, 42, 7_000_000_123, -1001234567890, 0):
            built = session.build_form_data(bot, _method(replace(msg, chat_id=chat_id)))
            assert broadcast.body(bot, chat_id) == built._value  # type: ignore[union-attr]
        for text in ("Hi Ann", "ünï & = + % ?\n<b>x</b> 🎉", "a" * 4096):
            built = session.build_form_data(bot, _method(replace(msg, chat_id=9, text=text)))
            assert broadcast.body(bot, 9, text) == built._value  # type: ignore[union-attr]
        # Another bot (its defaults are part of a body) gets a body of its own.
        other = Bot("654321:" + "B" * 35, session=session)
        assert (
            broadcast.body(other, 5)
            == session.build_form_data(other, _method(replace(msg, chat_id=5)))._value
        )  # type: ignore[union-attr]
    finally:
        await session.close()


async def test_a_broadcast_does_not_upload(tmp_path: Path) -> None:
    photo = tmp_path / "pic.jpg"
    photo.write_bytes(b"\xff\xd8")
    with pytest.raises(ValueError, match="file_id"):
        Broadcast(OutgoingMessage(chat_id=0, text="x", parse_mode=None, photo=photo))
