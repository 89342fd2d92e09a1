"""Sends a bot's written-ahead replies, in the process that owns the bot.

Every conversational reply has an ``outbox`` row (``inbox.queue_replies``): an operator's
when it is queued, the bot's own (welcome, rule reply, a button's reply) in the transaction of
the update it answers, the assistant's as its question (``asking``, turned ``pending`` with the
answer; the update processor asks again for those a stopped process left, ``resume_asks``).
Replies run through the bot's channel, so they share its rate limiter (reply
priority) with campaigns and the assistant.

At the start of each turn of ownership this worker takes over what a stopped process left:
rows left ``sending`` become ``uncertain`` (the request may have left). Then it sends every
``pending`` row that no effect of this process holds (``BotChannel.held_replies``): the
operator's replies, a button's reply, what a stopped process left. The bot's own replies
written with an update are held by the update processor's effects, which send them in order
with their chat's other replies. Every send claims its row first (``pending -> sending``,
conditional), so a row is never sent twice even if both paths reach it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botdesk import inbox
from botdesk.clock import wait_event
from botdesk.log import get_logger
from botdesk.runtime.channel import BotChannel
from botdesk.telegram.gateway import OutgoingMessage

log = get_logger(__name__)

POLL_EVERY_S = 0.5
# Pending rows read per round, a page at a time: the rows effects hold are skipped in Python
# (a flood can hold thousands; an SQL NOT IN of them would not scale).
PAGE = 200
MAX_PAGES = 25


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


async def send_pending(channel: BotChannel) -> int:
    """Send the bot's pending replies that no effect of this process holds: the operator's,
    a button's reply (``clicks``), and whatever a stopped process left. Returns how many
    were tried."""
    tried, after = 0, 0
    for _page in range(MAX_PAGES):
        items = await inbox.pending_replies(
            channel.db, bot_id=channel.record.id, after_id=after, limit=PAGE
        )
        for item in items:
            after = item.id
            if item.id in channel.held_replies:  # an effect of this process sends it
                continue
            tried += 1
            await channel.send_reply(
                item.chat_id,
                item.text,
                author=item.author,
                meta=item.meta,
                is_group=item.is_group,
                message=load_message(item.chat_id, item.payload),
                outbox_id=item.id,
            )
        if len(items) < PAGE:
            break
    return tried


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
    try:
        await recover(channel)
    except Exception as exc:
        log.error("reply recovery failed", bot=channel.name, error=str(exc))
    while not stop.is_set():
        try:
            await send_pending(channel)
        except Exception as exc:  # the next round retries; a broken row must not stop the bot
            log.error("reply failed", bot=channel.name, error=str(exc))
        await wait_event(stop, POLL_EVERY_S)
