"""gateway.send against a real loopback Bot API server: every answer maps to one Outcome."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from tg_fake_api import (
    BAD,
    BLOCKED,
    DEACT,
    E500,
    E502_HTML,
    HANG,
    KICKED,
    MIGRATED,
    NO_ID,
    NO_RESULT,
    NOT_FOUND,
    NOT_JSON,
    NOT_STARTED,
    ODD_PHOTO,
    OK,
    RESET,
    RETRY,
    STR_ID,
    TOKEN,
    UNAUTH,
    FakeBotApi,
)

from botdesk.telegram.gateway import (
    Broadcast,
    Outcome,
    OutgoingMessage,
    SendResult,
    bot_session,
    send,
)


async def _send(
    api_base: str, msg: OutgoingMessage, *, read_timeout: float = 5.0, via: str = "send"
) -> SendResult:
    """``send(msg)``, or with ``via="broadcast"`` a ``Broadcast`` of it to ``msg.chat_id``."""
    async with bot_session(
        TOKEN, api_base=api_base, connect_timeout=0.5, read_timeout=read_timeout
    ) as bot:
        if via == "broadcast":
            return await Broadcast(replace(msg, chat_id=0)).send(bot, msg.chat_id)
        return await send(bot, msg)


@pytest.fixture(params=["send", "broadcast"])
def via(request: pytest.FixtureRequest) -> str:
    """The tests of a message without an upload run both ways: the outcomes must not differ."""
    return str(request.param)


def _msg(chat_id: int, **kw: object) -> OutgoingMessage:
    return OutgoingMessage(chat_id=chat_id, text="hello <b>you</b>", parse_mode="HTML", **kw)  # type: ignore[arg-type]


async def test_sent_returns_message_id_and_sends_the_fields(fake_api: FakeBotApi, via: str) -> None:
    msg = _msg(
        OK,
        buttons=(("Site", "https://example.org"), ("Docs", "https://example.org/d")),
        disable_notification=True,
        protect_content=True,
        allow_paid_broadcast=True,
        link_preview_disabled=True,
    )
    result = await _send(fake_api.base, msg, via=via)
    assert result == SendResult(Outcome.SENT, message_id=101)
    _, method, form = fake_api.requests[-1]
    assert method == "sendMessage"
    assert form["text"] == "hello <b>you</b>"
    assert form["parse_mode"] == "HTML"
    assert form["disable_notification"] == "true"
    assert form["protect_content"] == "true"
    assert form["allow_paid_broadcast"] == "true"
    assert json.loads(form["link_preview_options"]) == {"is_disabled": True}
    keyboard = json.loads(form["reply_markup"])["inline_keyboard"]
    assert keyboard == [
        [{"text": "Site", "url": "https://example.org"}],
        [{"text": "Docs", "url": "https://example.org/d"}],
    ]


async def test_plain_message_sends_no_optional_fields(fake_api: FakeBotApi, via: str) -> None:
    msg = OutgoingMessage(chat_id=OK, text="hi", parse_mode=None)
    result = await _send(fake_api.base, msg, via=via)
    assert result.outcome is Outcome.SENT
    _, _, form = fake_api.requests[-1]
    assert set(form) == {"chat_id", "text"}


async def test_photo_upload_uses_caption_and_returns_largest_file_id(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    photo = tmp_path / "pic.jpg"
    photo.write_bytes(b"\xff\xd8fakejpeg")
    result = await _send(fake_api.base, _msg(OK, photo=photo, buttons=(("A", "https://a.b"),)))
    assert result.outcome is Outcome.SENT
    assert result.file_id == "big"
    _, method, form = fake_api.requests[-1]
    assert method == "sendPhoto"
    assert form["caption"] == "hello <b>you</b>"
    assert "text" not in form
    uploaded = [v for v in form.values() if isinstance(v, tuple)]
    assert uploaded == [("pic.jpg", b"\xff\xd8fakejpeg")]
    assert form["photo"].startswith("attach://")


async def test_document_by_file_id_is_not_uploaded(fake_api: FakeBotApi, via: str) -> None:
    result = await _send(fake_api.base, _msg(OK, document="doc-id"), via=via)
    assert result == SendResult(Outcome.SENT, message_id=101, file_id="doc-id")
    _, method, form = fake_api.requests[-1]
    assert method == "sendDocument"
    assert form["document"] == "doc-id"


async def test_a_broadcast_leaves_an_empty_caption_out(fake_api: FakeBotApi) -> None:
    async with bot_session(TOKEN, api_base=fake_api.base) as bot:
        broadcast = Broadcast(_msg(0, document="doc-id"))
        for text in ("", "Price list for Ann"):
            result = await broadcast.send(bot, OK, text)
            assert result == SendResult(Outcome.SENT, message_id=fake_api.next_id, file_id="doc-id")
            _, method, form = fake_api.requests[-1]
            assert method == "sendDocument" and form.get("caption", "") == text
            assert ("caption" in form) is bool(text)


async def test_a_broadcast_that_cannot_be_prepared_builds_each_request(
    fake_api: FakeBotApi,
) -> None:
    # A button holding the text slot's own characters: the slot is not in the body once.
    label = "@botdesk_text_slot@"
    msg = _msg(0, buttons=((label, "https://example.org"),))
    async with bot_session(TOKEN, api_base=fake_api.base) as bot:
        broadcast = Broadcast(msg)
        assert broadcast.body(bot, OK) is None
        for text in (None, "personal @botdesk_text_slot@ & more"):
            result = await broadcast.send(bot, OK, text)
            assert result == SendResult(Outcome.SENT, message_id=fake_api.next_id)
            _, method, form = fake_api.requests[-1]
            assert method == "sendMessage" and form["chat_id"] == str(OK)
            assert form["text"] == (msg.text if text is None else text)
            assert json.loads(form["reply_markup"])["inline_keyboard"][0][0]["text"] == label


async def test_missing_upload_file_is_bad_request_without_a_request(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    result = await _send(fake_api.base, _msg(OK, photo=tmp_path / "nope.jpg"))
    assert result.outcome is Outcome.BAD_REQUEST
    assert "nope.jpg" in result.description
    assert fake_api.requests == []


@pytest.mark.parametrize(
    ("chat", "outcome", "code", "needle"),
    [
        (BLOCKED, Outcome.BLOCKED, 403, "blocked"),
        (DEACT, Outcome.DEACTIVATED, 403, "deactivated"),
        (NOT_STARTED, Outcome.NOT_STARTED, 403, "initiate"),
        (KICKED, Outcome.CHAT_GONE, 403, "kicked"),
        (NOT_FOUND, Outcome.CHAT_GONE, 400, "chat not found"),
        (BAD, Outcome.BAD_REQUEST, 400, "can't parse entities"),
        (MIGRATED, Outcome.BAD_REQUEST, 400, "-100777"),
        (UNAUTH, Outcome.UNAUTHORIZED, 401, "Unauthorized"),
        (E500, Outcome.SERVER_ERROR, 500, "Internal"),
        (E502_HTML, Outcome.SERVER_ERROR, 502, "502"),
    ],
)
async def test_error_answers_map_to_outcomes(
    fake_api: FakeBotApi, chat: int, outcome: Outcome, code: int, needle: str, via: str
) -> None:
    result = await _send(fake_api.base, _msg(chat), via=via)
    assert result.outcome is outcome
    assert result.error_code == code
    assert needle in result.description
    assert result.message_id is None


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        # Not a message: aiogram's model refuses it, as on aiogram's own path; the request was
        # received, so nobody can say whether it was delivered.
        (
            NO_ID,
            SendResult(
                Outcome.UNKNOWN_AFTER_SEND,
                error_code=200,
                description="unreadable response (HTTP 200)",
            ),
        ),
        (
            NO_RESULT,
            SendResult(
                Outcome.UNKNOWN_AFTER_SEND,
                error_code=200,
                description="unreadable response (HTTP 200)",
            ),
        ),
        (
            NOT_JSON,
            SendResult(
                Outcome.UNKNOWN_AFTER_SEND,
                error_code=200,
                description="unreadable response (HTTP 200)",
            ),
        ),
        # Read by aiogram's model where the quick read declines it.
        (STR_ID, SendResult(Outcome.SENT, message_id=777)),
        # Delivered, with a photo field in no known shape: sent, no file_id to reuse.
        (ODD_PHOTO, SendResult(Outcome.SENT, message_id=55)),
    ],
)
async def test_success_answers_in_odd_shapes(
    fake_api: FakeBotApi, chat: int, expected: SendResult, via: str
) -> None:
    assert await _send(fake_api.base, _msg(chat), via=via) == expected


async def test_a_bot_not_made_by_make_bot_is_refused() -> None:
    from aiogram import Bot

    bot = Bot(TOKEN)
    try:
        with pytest.raises(TypeError, match="make_bot"):
            await send(bot, _msg(OK))
    finally:
        await bot.session.close()


async def test_429_carries_retry_after(fake_api: FakeBotApi, via: str) -> None:
    result = await _send(fake_api.base, _msg(RETRY), via=via)
    assert result.outcome is Outcome.RETRY_AFTER
    assert result.retry_after == 3.0
    assert result.error_code == 429


async def test_read_timeout_after_send_is_unknown(fake_api: FakeBotApi, via: str) -> None:
    result = await _send(fake_api.base, _msg(HANG), read_timeout=0.3, via=via)
    assert result.outcome is Outcome.UNKNOWN_AFTER_SEND
    # The server did receive the request: exactly the case that must not be retried.
    assert fake_api.requests[-1][2]["chat_id"] == str(HANG)


async def test_reset_after_request_read_is_unknown(fake_api: FakeBotApi, via: str) -> None:
    result = await _send(fake_api.base, _msg(RESET), via=via)
    assert result.outcome is Outcome.UNKNOWN_AFTER_SEND
    assert fake_api.requests[-1][2]["chat_id"] == str(RESET)


async def test_refused_connection_is_connect_failed(closed_port: int) -> None:
    result = await _send(f"http://127.0.0.1:{closed_port}", _msg(OK))
    assert result.outcome is Outcome.CONNECT_FAILED
    assert TOKEN not in result.description


async def test_connect_timeout_is_connect_failed() -> None:
    # A listener that never accepts, with its accept queue filled: the next SYN is dropped, so
    # the client's connect times out (loopback only).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                fillers.append(s)
            result = await _send(f"http://127.0.0.1:{port}", _msg(OK))
        finally:
            for s in fillers:
                s.close()
    assert result.outcome is Outcome.CONNECT_FAILED
    assert "timeout" in result.description.lower()
