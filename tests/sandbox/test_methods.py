"""Every Bot API method through the real aiogram client over loopback HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    LinkPreviewOptions,
    ReplyKeyboardMarkup,
    ReplyParameters,
)

from botdesk.sandbox import BotInfo, Sandbox
from botdesk.sandbox.testing import aiogram_bot

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x40\x00\x00\x00\x20" + b"\x00" * 20


def keyboard(data: str = "buy") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Buy", callback_data=data)]]
    )


async def test_get_me_log_out_close(tg: Bot, shop: BotInfo) -> None:
    me = await tg.get_me()
    assert (me.id, me.username, me.is_bot) == (shop.id, "shop_bot", True)
    assert await tg.log_out() is True
    assert await tg.close() is True


async def test_token_shape_and_ids(sandbox: Sandbox, shop: BotInfo, user: Any) -> None:
    head, secret = shop.token.split(":")
    assert int(head) == shop.id and len(secret) == 35
    again = Sandbox(sandbox.config)  # same seed, same tokens and users
    assert again.add_bot("shop_bot").token == shop.token
    assert again.add_users(1)[0].id == user.id


async def test_send_message_html_records_and_increasing_ids(
    sandbox: Sandbox, tg: Bot, user: Any
) -> None:
    first = await tg.send_message(
        user.id,
        "<b>Hello</b> &amp; welcome",
        parse_mode="HTML",
        reply_markup=keyboard(),
        protect_content=True,
        disable_notification=True,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
    second = await tg.send_message(user.id, "again")
    assert first.text == "Hello & welcome"
    assert first.entities is not None and first.entities[0].type == "bold"
    assert first.entities[0].length == 5
    assert first.has_protected_content is True
    assert first.reply_markup is not None
    assert first.reply_markup.inline_keyboard[0][0].callback_data == "buy"
    assert second.message_id > first.message_id  # the /start message came first
    recorded = sandbox.messages(bot="shop_bot", chat_id=user.id)
    assert [m["text"] for m in recorded] == ["Hello & welcome", "again"]
    assert recorded[0]["method"] == "sendMessage" and recorded[0]["caption"] is None
    assert recorded[0]["disable_notification"] and recorded[0]["protect_content"]


async def test_markdown_modes(tg: Bot, user: Any) -> None:
    v2 = await tg.send_message(
        user.id, "*bold* _it_ \\. [link](https://ex.org)", parse_mode="MarkdownV2"
    )
    assert v2.text == "bold it . link"
    assert [e.type for e in v2.entities or []] == ["bold", "italic", "text_link"]
    v1 = await tg.send_message(user.id, "*bold* `code`", parse_mode="Markdown")
    assert v1.text == "bold code"


@pytest.mark.parametrize(
    ("text", "mode", "description"),
    [
        (
            "<foo>x</foo>",
            "HTML",
            'can\'t parse entities: Unsupported start tag "foo" at byte offset 0',
        ),
        (
            "<b>x",
            "HTML",
            "can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        ("a.b", "MarkdownV2", "can't parse entities: Character '.' is reserved"),
        (
            "*x",
            "MarkdownV2",
            "can't parse entities: Can't find end of Bold entity at byte offset 0",
        ),
        (
            "_x",
            "Markdown",
            "can't parse entities: Can't find end of the entity starting at byte offset 0",
        ),
        ("x", "Nope", "unsupported parse_mode"),
        ("   ", None, "message text is empty"),
        ("<b></b>", "HTML", "message text is empty"),
        ("x" * 4097, None, "message is too long"),
    ],
)
async def test_send_message_rejects_like_telegram(
    tg: Bot, user: Any, text: str, mode: str | None, description: str
) -> None:
    with pytest.raises(TelegramBadRequest) as err:
        await tg.send_message(user.id, text, parse_mode=mode)
    assert description in err.value.message


async def test_length_counts_utf16_after_parsing(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    emoji = "\U0001f600"  # two UTF-16 code units
    ok = await tg.send_message(user.id, "<b>" + emoji * 2048 + "</b>", parse_mode="HTML")
    assert ok.entities is not None and ok.entities[0].length == 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await tg.send_message(user.id, emoji * 2048 + "x")


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        (
            InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x")]]),
            "Text buttons are unallowed in the inline keyboard",
        ),
        (
            InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
            ),
            "BUTTON_DATA_INVALID",
        ),
        (
            InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", url="ftp://a")]]),
            "BUTTON_URL_INVALID",
        ),
    ],
)
async def test_bad_inline_keyboards(tg: Bot, user: Any, markup: Any, description: str) -> None:
    with pytest.raises(TelegramBadRequest, match=description):
        await tg.send_message(user.id, "x", reply_markup=markup)


async def test_reply_keyboards_accepted(tg: Bot, user: Any) -> None:
    rk = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Yes")]])
    assert (await tg.send_message(user.id, "q", reply_markup=rk)).reply_markup is None
    assert await tg.send_message(user.id, "q", reply_markup=ForceReply(force_reply=True))


async def test_user_states_answer_like_telegram(sandbox: Sandbox, tg: Bot) -> None:
    blocked, deactivated, deleted, stranger = sandbox.add_users(4, start_bots=["shop_bot"])[
        :3
    ] + sandbox.add_users(1)
    await sandbox.user_block(blocked.id, "shop_bot")
    sandbox.user_deactivate(deactivated.id)
    sandbox.user_delete(deleted.id)
    cases = [
        (blocked.id, TelegramForbiddenError, "Forbidden: bot was blocked by the user"),
        (deactivated.id, TelegramForbiddenError, "Forbidden: user is deactivated"),
        (deleted.id, TelegramBadRequest, "Bad Request: chat not found"),
        (
            stranger.id,
            TelegramForbiddenError,
            "Forbidden: bot can't initiate conversation with a user",
        ),
        (424242, TelegramBadRequest, "Bad Request: chat not found"),
    ]
    for chat_id, kind, description in cases:
        with pytest.raises(kind) as err:
            await tg.send_message(chat_id, "hi")
        assert err.value.message == description
    assert sandbox.messages(bot="shop_bot") == []
    assert sandbox.stats()["errors"] == {"403": 3, "400": 2}


async def test_unauthorized_and_not_found(sandbox: Sandbox, tg: Bot, shop: BotInfo) -> None:
    async with aiogram_bot(sandbox, "1:" + "A" * 35) as other:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await other.get_me()

    class Bogus(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "sendUnicorn"

    with pytest.raises(TelegramNotFound, match="Not Found"):
        await tg(Bogus())
    sandbox.revoke_token("shop_bot")
    with pytest.raises(TelegramUnauthorizedError):
        await tg.get_me()


async def test_raw_http_json_get_and_case_insensitive(
    sandbox: Sandbox, shop: BotInfo, user: Any
) -> None:
    base = f"{sandbox.base_url}/bot{shop.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/SENDMESSAGE", json={"chat_id": user.id, "text": "j"}) as r:
            body = await r.json()
            assert r.status == 200 and body["ok"] and body["result"]["text"] == "j"
            assert "entities" not in body["result"]  # empty optional fields are omitted
        async with http.get(f"{base}/sendMessage", params={"chat_id": str(user.id)}) as r:
            body = await r.json()
            assert r.status == 400
            assert body == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        async with http.post(f"{base}/sendMessage", json={"text": "x"}) as r:
            assert (await r.json())["description"] == "Bad Request: chat_id is empty"


async def test_photo_document_and_file_id_reuse(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    photo = await tg.send_photo(
        user.id, BufferedInputFile(PNG, "p.png"), caption="<i>c</i>", parse_mode="HTML"
    )
    assert photo.photo and (photo.photo[0].width, photo.photo[0].height) == (64, 32)
    assert photo.caption == "c" and photo.caption_entities
    again = await tg.send_photo(user.id, photo.photo[0].file_id)
    assert again.photo and again.photo[0].file_id == photo.photo[0].file_id
    doc = await tg.send_document(user.id, BufferedInputFile(b"%PDF-1", "r.pdf"))
    assert doc.document and doc.document.file_name == "r.pdf"
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await tg.send_photo(user.id, "AgACnope")
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await tg.send_photo(user.id, doc.document.file_id)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await tg.send_document(user.id, doc.document.file_id, caption="x" * 1025)
    assert [m["method"] for m in sandbox.messages(chat_id=user.id)] == [
        "sendPhoto",
        "sendPhoto",
        "sendDocument",
    ]
    assert sandbox.messages(chat_id=user.id)[0]["caption"] == "c"


async def test_media_group(tg: Bot, user: Any) -> None:
    media: list[Any] = [
        InputMediaPhoto(media=BufferedInputFile(PNG, f"{i}.png"), caption=str(i)) for i in range(3)
    ]
    sent = await tg.send_media_group(user.id, media)
    assert len(sent) == 3 and len({m.media_group_id for m in sent}) == 1
    with pytest.raises(TelegramBadRequest, match="media group must contain 2-10 items"):
        await tg.send_media_group(user.id, media[:1])
    with pytest.raises(TelegramBadRequest, match="can't be mixed"):
        await tg.send_media_group(
            user.id, [media[0], InputMediaDocument(media=BufferedInputFile(b"d", "d.txt"))]
        )


async def test_copy_forward_edit_delete(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    original = await tg.send_message(user.id, "orig", reply_markup=keyboard())
    copied = await tg.copy_message(user.id, user.id, original.message_id)
    forwarded = await tg.forward_message(user.id, user.id, original.message_id)
    assert copied.message_id < forwarded.message_id
    assert forwarded.text == "orig" and forwarded.forward_origin is not None
    edited = await tg.edit_message_text("new", chat_id=user.id, message_id=original.message_id)
    assert isinstance(edited, object) and getattr(edited, "edit_date", None)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await tg.edit_message_text("new", chat_id=user.id, message_id=original.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await tg.edit_message_text("x", chat_id=user.id, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await tg.copy_message(user.id, user.id, 999)
    with pytest.raises(TelegramBadRequest, match="message to forward not found"):
        await tg.forward_message(user.id, user.id, 999)
    assert await tg.delete_message(user.id, original.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await tg.delete_message(user.id, original.message_id)
    record = sandbox.messages(chat_id=user.id)[0]
    assert record["text"] == "new" and record["edited"] and record["deleted"]


async def test_reply_parameters(tg: Bot, user: Any) -> None:
    first = await tg.send_message(user.id, "a")
    reply = await tg.send_message(
        user.id, "b", reply_parameters=ReplyParameters(message_id=first.message_id)
    )
    assert reply.reply_to_message and reply.reply_to_message.message_id == first.message_id
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await tg.send_message(user.id, "c", reply_parameters=ReplyParameters(message_id=999))


async def test_callback_query_answer(sandbox: Sandbox, tg: Bot, user: Any) -> None:
    msg = await tg.send_message(user.id, "pick", reply_markup=keyboard("buy"))
    query = await sandbox.user_press(user.id, "shop_bot", msg.message_id, "buy")
    assert await tg.answer_callback_query(query["id"], text="ok") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await tg.answer_callback_query(query["id"])


async def test_chat_action_commands_chat_member(
    sandbox: Sandbox, tg: Bot, user: Any, shop: BotInfo
) -> None:
    assert await tg.send_chat_action(user.id, "typing") is True
    with pytest.raises(TelegramBadRequest, match="wrong parameter action in request"):
        await tg.send_chat_action(user.id, "dancing")  # type: ignore[arg-type]
    cmds = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await tg.set_my_commands(cmds) is True
    got = await tg.get_my_commands()
    assert [(c.command, c.description) for c in got] == [("start", "Start"), ("help", "Help")]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await tg.set_my_commands([BotCommand(command="Bad Cmd", description="x")])
    assert await tg.delete_my_commands() is True
    assert await tg.get_my_commands() == []
    chat = await tg.get_chat(user.id)
    assert chat.id == user.id and chat.type == "private"
    member = await tg.get_chat_member(user.id, user.id)
    assert member.status == "member" and member.user.id == user.id
    group_id = sandbox.add_group("Fans", [user.id], "shop_bot")
    assert group_id < 0 and (await tg.get_chat(group_id)).title == "Fans"
    assert (await tg.get_chat_member(group_id, user.id)).status == "member"
    assert (await tg.get_chat_member(group_id, shop.id)).status == "member"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await tg.get_chat(-123)
    sent = await tg.send_message(group_id, "hello group")
    assert sent.chat.type == "group"
