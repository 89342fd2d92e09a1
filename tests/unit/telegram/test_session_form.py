"""The session's url-encoded form is byte for byte what aiogram's FormData sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import SendDocument, SendMessage, TelegramMethod
from aiogram.types import (
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)
from aiohttp import FormData
from aiohttp.payload import BytesPayload

from botdesk.telegram.session import SplitTimeoutSession

TOKEN = "123456:" + "A" * 35

METHODS: list[TelegramMethod] = [  # type: ignore[type-arg]
    SendMessage(chat_id=42, text="Spring sale: 20% off & more = fun? ünïcødé 🎉", parse_mode=None),
    SendMessage(
        chat_id=-1001234567890,
        text="<b>Hi</b> {first_name}",
        parse_mode="HTML",
        disable_notification=True,
        protect_content=True,
        allow_paid_broadcast=True,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text="Shop", url="https://example.com/?a=1&b=2")]
            ]
        ),
    ),
    SendDocument(chat_id=7, document="BQACAgIAAxkBAAIB", caption="by file_id"),
]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: type(m).__name__)
async def test_same_bytes_as_aiogram_without_files(method: TelegramMethod) -> None:  # type: ignore[type-arg]
    ours, theirs = SplitTimeoutSession(), AiohttpSession()
    try:
        bot = Bot(TOKEN, session=ours)
        lean = ours.build_form_data(bot, method)
        reference = theirs.build_form_data(bot, method)()
        assert isinstance(lean, BytesPayload)
        assert lean._value == reference._value
        assert lean.content_type == reference.content_type == "application/x-www-form-urlencoded"
        assert dict(lean.headers) == dict(reference.headers)
    finally:
        await ours.close()
        await theirs.close()


async def test_a_file_still_goes_as_multipart(tmp_path: Path) -> None:
    doc = tmp_path / "price list.pdf"
    doc.write_bytes(b"%PDF-1.4 botdesk")
    session = SplitTimeoutSession()
    try:
        bot = Bot(TOKEN, session=session)
        form = session.build_form_data(bot, SendDocument(chat_id=7, document=FSInputFile(doc)))
        assert isinstance(form, FormData)
        assert form.is_multipart
        fields = {opts["name"]: (opts.get("filename"), value) for opts, _h, value in form._fields}
        assert fields["chat_id"] == (None, "7")
        # aiogram's way: the field names an attachment, the file goes as its own part
        attach = fields["document"][1]
        assert attach.startswith("attach://")
        assert fields[attach.removeprefix("attach://")][0] == "price list.pdf"
        assert "multipart/form-data" in form().content_type
    finally:
        await session.close()
