"""Sends a bot's written-ahead replies, in the process that owns the bot.

Every conversational reply has an ``outbox`` row (``inbox.queue_replies``): an operator's
when it is queued, the bot's own (welcome, rule reply) in the transaction of the update it
answers. Replies run through the bot's channel, so they share its rate limiter (reply
priority) with campaigns and the assistant.

This worker sends the operator's replies, and at the start of each turn of ownership it
takes over what a stopped process left: rows left ``sending`` become ``uncertain`` (the
request may have left), rows left ``pending`` are sent. The bot's own replies written during
this turn are sent by the update processor's effects, in order with their chat's other
replies; the worker leaves them alone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from botdesk import inbox
from botdesk.clock import wait_event
from botdesk.log import get_logger
from botdesk.runtime.channel import BotChannel
from botdesk.telegram.gateway import OutgoingMessage

log = get_logger(__name__)

POLL_EVERY_S = 0.5


def dump_message(msg: OutgoingMessage | None) -> dict[str, Any] | None:
    """An OutgoingMessage as JSON for the outbox row (a Path is an upload, a str a file_id)."""
    if msg is None:
        return None

    def media(v: str | Path | None) -> dict[str, str] | None:
        if v is None:
            return None
        return {"path": str(v)} if isinstance(v, Path) else {"id": v}

    return {
        "text": msg.text,
        "parse_mode": msg.parse_mode,
        "photo": media(msg.photo),
        "document": media(msg.document),
        "buttons": [list(b) for b in msg.buttons],
        "callbacks": [list(c) for c in msg.callbacks],
        "disable_notification": msg.disable_notification,
        "protect_content": msg.protect_content,
        "link_preview_disabled": msg.link_preview_disabled,
    }


def load_message(chat_id: int, data: dict[str, Any] | None) -> OutgoingMessage | None:
    if not data:
        return None

    def media(v: dict[str, str] | None) -> str | Path | None:
        if not v:
            return None
        return Path(v["path"]) if "path" in v else v["id"]

    return OutgoingMessage(
        chat_id=chat_id,
        text=data["text"],
        parse_mode=data.get("parse_mode"),
        photo=media(data.get("photo")),
        document=media(data.get("document")),
        buttons=tuple((str(a), str(b)) for a, b in data.get("buttons") or ()),
        callbacks=tuple((str(a), str(b)) for a, b in data.get("callbacks") or ()),
        disable_notification=bool(data.get("disable_notification")),
        protect_content=bool(data.get("protect_content")),
        link_preview_disabled=bool(data.get("link_preview_disabled")),
    )


async def send_pending(channel: BotChannel, *, leftovers_before: datetime | None = None) -> int:
    """Send the operator's pending replies and, with ``leftovers_before``, the bot's own
    replies written ahead before that time. Returns how many were tried."""
    items = await inbox.pending_replies(
        channel.db,
        bot_id=channel.record.id,
        operator_only=leftovers_before is None,
        created_before=leftovers_before,
        exclude=set(channel.held_replies),
    )
    for item in items:
        await channel.send_reply(
            item.chat_id,
            item.text,
            author=item.author,
            meta=item.meta,
            is_group=item.is_group,
            message=load_message(item.chat_id, item.payload),
            outbox_id=item.id,
        )
    return len(items)


async def recover(channel: BotChannel) -> int:
    """At the start of a turn of ownership: what the previous owner left ``sending``."""
    n = await inbox.recover_replies(
        channel.db,
        bot_id=channel.record.id,
        exclude=set(channel.held_replies),
        now=channel.clock.now(),
    )
    if n:
        log.warning(
            "replies left sending by a stopped process are uncertain", bot=channel.name, n=n
        )
    return n


async def outbox_worker(channel: BotChannel, stop: asyncio.Event) -> None:
    turn_began = channel.clock.now()
    leftovers = True
    try:
        await recover(channel)
    except Exception as exc:
        log.error("reply recovery failed", bot=channel.name, error=str(exc))
    while not stop.is_set():
        try:
            tried = await send_pending(channel, leftovers_before=turn_began if leftovers else None)
            if leftovers and tried == 0:
                leftovers = False  # what the stopped process left has gone out
        except Exception as exc:  # the next round retries; a broken row must not stop the bot
            log.error("reply failed", bot=channel.name, error=str(exc))
        await wait_event(stop, POLL_EVERY_S)
