"""Presses on self-tagging menu buttons (callback data ``m:<key>``), in their own router.

Included ahead of the main router (whose catch-all callback handler records other presses),
so campaign buttons and menus stay apart. The key is looked up in the bot's current rule set:
a key that is not there (forged, or from a menu since removed) tags nobody and is answered
as expired. The tag change (and the time zone a "Which time zone?" button sets) is written in
the update's transaction: a redelivered press changes nothing twice.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.types import CallbackQuery
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import reply_rules
from botdesk.runtime.handlers import BotContext, CallbackEffect, Effects, presser

EXPIRED_TEXT = "This button is no longer available."
NOT_SUBSCRIBED_TEXT = "Send /start first, then choose again."


def build_menu_router() -> Router:
    router = Router(name="botdesk-menus")

    @router.callback_query(F.data.startswith(reply_rules.MENU_PREFIX))
    async def on_menu(
        query: CallbackQuery,
        conn: AsyncConnection,
        fx: Effects,
        ctx: BotContext,
        event_update: Any,
    ) -> None:
        data = query.data or ""
        p = presser(query)
        chat_id = p.chat_id
        fx.touches.append(p)
        button = ctx.rules.button(data) if ctx.rules is not None else None
        if button is None:
            fx.record(
                chat_id,
                "[menu] (no longer offered)",
                message_id=None,
                update_id=event_update.update_id,
                meta={"kind": "menu", "callback_data": data, "valid": False},
            )
            fx.items.append(CallbackEffect(query.id, EXPIRED_TEXT))
            return
        others = [t for t in button.group if t != button.tag] if button.exclusive else []
        tagged = await reply_rules.retag(
            conn,
            bot_id=ctx.bot_id,
            chat_id=chat_id,
            add=[button.tag] if button.tag else [],
            remove=others,
            timezone=button.timezone,
            now=ctx.now,
        )
        fx.record(
            chat_id,
            f"[menu] {button.label}",
            message_id=None,
            update_id=event_update.update_id,
            meta={
                "kind": "menu",
                "rule": button.rule,
                "tag": button.tag or None,
                "timezone": button.timezone,
                "tagged": tagged,
            },
        )
        answer = button.answer.replace("{label}", button.label) if tagged else NOT_SUBSCRIBED_TEXT
        fx.items.append(CallbackEffect(query.id, answer or None))

    return router
