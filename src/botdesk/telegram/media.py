"""Albums (sendMediaGroup) and copies (copyMessage) as outcome values, like ``gateway.send``.

An album is one request for 2-10 messages: the first send uploads every file (multipart,
``attach://``) and its answer carries each message's file_id, which later sends reuse. A copy
names its source (``from_chat_id``, ``message_id``); Telegram keeps the source's text,
entities, media and, unless ``reply_markup`` is given, its inline keyboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.methods import CopyMessage, SendMediaGroup
from aiogram.types import (
    FSInputFile,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
)

from botdesk.telegram.gateway import _CALL_ERRORS, OutgoingMessage, _keyboard, _session, file_id_of
from botdesk.telegram.outcomes import Outcome, SendResult, classify_exception

_INPUT = {
    "photo": InputMediaPhoto,
    "video": InputMediaVideo,
    "document": InputMediaDocument,
    "audio": InputMediaAudio,
}


@dataclass(frozen=True)
class AlbumItem:
    kind: str  # photo | video | document | audio
    media: str | Path  # a Path uploads, a str is a file_id


def _common(msg: OutgoingMessage) -> dict[str, Any]:
    return {
        "chat_id": msg.chat_id,
        "disable_notification": msg.disable_notification or None,
        "protect_content": msg.protect_content or None,
        "allow_paid_broadcast": msg.allow_paid_broadcast or None,
    }


async def send_album(bot: Bot, msg: OutgoingMessage, items: Sequence[AlbumItem]) -> SendResult:
    """Send ``items`` as one album to ``msg.chat_id``, ``msg.text`` as the first item's
    caption; the result has every message id and file_id in order. Never raises for a
    Telegram or network outcome."""
    for item in items:
        if isinstance(item.media, Path) and not item.media.is_file():
            return SendResult(Outcome.BAD_REQUEST, description=f"file not found: {item.media.name}")
    media = []
    for i, item in enumerate(items):
        value = FSInputFile(item.media) if isinstance(item.media, Path) else item.media
        extra: dict[str, Any] = {}
        if i == 0 and msg.text:
            extra = {"caption": msg.text, "parse_mode": msg.parse_mode}
        media.append(_INPUT[item.kind](media=value, **extra))
    method = SendMediaGroup(media=media, **_common(msg))
    try:
        messages = await _session(bot).messages_result(bot, method)
    except _CALL_ERRORS as exc:
        return classify_exception(exc)
    ids = tuple(int(m["message_id"]) for m in messages)
    return SendResult(
        Outcome.SENT,
        message_id=ids[0],
        message_ids=ids,
        file_ids=tuple(file_id_of(m) for m in messages),
    )


async def copy_message(
    bot: Bot, msg: OutgoingMessage, *, from_chat: int | str, message_id: int
) -> SendResult:
    """copyMessage of ``from_chat``/``message_id`` to ``msg.chat_id``; ``msg``'s buttons, when
    it has any, replace the source's keyboard. Never raises for a Telegram or network
    outcome."""
    method = CopyMessage(
        from_chat_id=from_chat,
        message_id=message_id,
        reply_markup=_keyboard(msg),
        **_common(msg),
    )
    try:
        answer = await _session(bot).message_result(bot, method)  # type: ignore[arg-type]
    except _CALL_ERRORS as exc:
        return classify_exception(exc)
    return SendResult(Outcome.SENT, message_id=answer["message_id"])
