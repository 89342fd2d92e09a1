"""Sends operators' queued replies for a bot, in the process that owns the bot.

Replies go through the bot's channel, so they share its rate limiter (reply priority) with
campaigns and the assistant.
"""

from __future__ import annotations

import asyncio

from botdesk import inbox
from botdesk.clock import wait_event
from botdesk.log import get_logger
from botdesk.runtime.channel import BotChannel
from botdesk.telegram.gateway import Outcome

log = get_logger(__name__)

POLL_EVERY_S = 0.5


async def send_pending(channel: BotChannel) -> int:
    items = await inbox.pending_replies(channel.db, bot_id=channel.record.id)
    for item in items:
        result = await channel.send_reply(item.chat_id, item.text, author=item.author)
        ok = result.outcome is Outcome.SENT
        await inbox.finish_reply(
            channel.db,
            item_id=item.id,
            message_id=result.message_id,
            error=None if ok else (result.description or result.outcome.value),
            now=channel.clock.now(),
        )
    return len(items)


async def outbox_worker(channel: BotChannel, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await send_pending(channel)
        except Exception as exc:  # the next round retries; a broken row must not stop the bot
            log.error("operator reply failed", bot=channel.name, error=str(exc))
        await wait_event(stop, POLL_EVERY_S)
