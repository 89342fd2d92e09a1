"""Edits and deletions of sent messages, with Telegram's answers as values (``ActionResult``).

A campaign's delivered messages can be edited (editMessageText for a text message,
editMessageCaption for a photo's or document's caption; the keyboard rides along) and deleted
(deleteMessage). Transport and chat outcomes are the send outcomes (``classify_exception``:
429, blocked, network, ...); on top of them Telegram has rules of its own about what may be
edited or deleted, returned as a ``Refusal`` read from the answer's description:

- "message is not modified"                      -> NOT_MODIFIED (the message already says it)
- "message to edit not found" / "... delete ..." -> MESSAGE_GONE (deleted meanwhile)
- "message can't be deleted for everyone"        -> TOO_OLD (sent 48 hours ago or more)
- "message can't be deleted"                     -> CANT_DELETE
- "message can't be edited"                      -> CANT_EDIT
- "there is no text/caption in the message ..."  -> WRONG_KIND
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aiogram import Bot
from aiogram.methods import DeleteMessage, EditMessageCaption, EditMessageText
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from botdesk.telegram.gateway import _CALL_ERRORS, _session
from botdesk.telegram.outcomes import Outcome, SendResult, classify_exception


class Refusal(StrEnum):
    NOT_MODIFIED = "not_modified"
    MESSAGE_GONE = "message_gone"
    TOO_OLD = "too_old"
    CANT_DELETE = "cant_delete"
    CANT_EDIT = "cant_edit"
    WRONG_KIND = "wrong_kind"


# Most specific first: "can't be deleted for everyone" also contains "can't be deleted".
_REFUSALS: tuple[tuple[str, Refusal], ...] = (
    ("message is not modified", Refusal.NOT_MODIFIED),
    ("message to edit not found", Refusal.MESSAGE_GONE),
    ("message to delete not found", Refusal.MESSAGE_GONE),
    ("message_id_invalid", Refusal.MESSAGE_GONE),
    ("can't be deleted for everyone", Refusal.TOO_OLD),
    ("message can't be deleted", Refusal.CANT_DELETE),
    ("message can't be edited", Refusal.CANT_EDIT),
    ("there is no text in the message", Refusal.WRONG_KIND),
    ("there is no caption in the message", Refusal.WRONG_KIND),
)


@dataclass(frozen=True)
class ActionResult:
    """``result`` is the send outcome (SENT when Telegram did it); ``refusal`` the rule
    Telegram cited when it answered 400 for a reason of editing or deleting."""

    result: SendResult
    refusal: Refusal | None = None


def refusal_of(result: SendResult) -> Refusal | None:
    if result.outcome is not Outcome.BAD_REQUEST:
        return None
    low = result.description.lower()
    for needle, refusal in _REFUSALS:
        if needle in low:
            return refusal
    return None


@dataclass(frozen=True)
class EditRequest:
    """New content for one sent message. ``caption``: the message is a photo or document.
    ``buttons`` are (label, url) pairs; none removes the keyboard, as Telegram does."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    caption: bool = False
    buttons: tuple[tuple[str, str], ...] = ()


def _markup(buttons: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, url=url)] for label, url in buttons]
    )


def _classified(exc: BaseException) -> ActionResult:
    result = classify_exception(exc)
    return ActionResult(result, refusal_of(result))


async def edit(bot: Bot, req: EditRequest) -> ActionResult:
    """Edit one message; every Telegram or network outcome is returned, never raised."""
    method: EditMessageText | EditMessageCaption
    if req.caption:
        method = EditMessageCaption(
            chat_id=req.chat_id,
            message_id=req.message_id,
            caption=req.text,
            parse_mode=req.parse_mode,
            reply_markup=_markup(req.buttons),
        )
    else:
        method = EditMessageText(
            chat_id=req.chat_id,
            message_id=req.message_id,
            text=req.text,
            parse_mode=req.parse_mode,
            reply_markup=_markup(req.buttons),
        )
    try:
        await _session(bot).acknowledged(bot, method)
    except _CALL_ERRORS as exc:
        return _classified(exc)
    return ActionResult(SendResult(Outcome.SENT, message_id=req.message_id))


async def delete(bot: Bot, chat_id: int, message_id: int) -> ActionResult:
    """Delete one message; every Telegram or network outcome is returned, never raised."""
    try:
        await _session(bot).acknowledged(bot, DeleteMessage(chat_id=chat_id, message_id=message_id))
    except _CALL_ERRORS as exc:
        return _classified(exc)
    return ActionResult(SendResult(Outcome.SENT, message_id=message_id))


async def delete_album(bot: Bot, chat_id: int, message_ids: tuple[int, ...]) -> ActionResult:
    """Delete every message of an album, one deleteMessage each (deleteMessages answers
    ``true`` even for messages it skipped). A message already gone ("message to delete not
    found": the recipient deleted it, or an earlier attempt of this row did before a 429)
    counts as deleted; the first other refusal or failure is the album's answer."""
    for mid in message_ids:
        answer = await delete(bot, chat_id, mid)
        if answer.result.outcome is Outcome.SENT or answer.refusal is Refusal.MESSAGE_GONE:
            continue
        return answer
    return ActionResult(SendResult(Outcome.SENT, message_id=message_ids[0]))
