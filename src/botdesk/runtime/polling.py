"""Long polling for one bot, with the offset kept in the database.

Transient failures (network, 5xx, 429, a webhook still set) back off with jitter and recover
by themselves; a rejected token (401) stops this bot only, with its reason recorded.
"""

from __future__ import annotations

import asyncio
import random

from aiogram.exceptions import (
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiohttp import ClientError
from sqlalchemy import select

from botdesk.errors import InvalidToken, StoreError
from botdesk.log import get_logger
from botdesk.runtime.updates import ALLOWED_UPDATES, UpdateProcessor
from botdesk.store.models import Bot

log = get_logger(__name__)

POLL_TIMEOUT = 20  # seconds a getUpdates call is held open by the server
BATCH_LIMIT = 100
MAX_BACKOFF = 30.0


class BotStopped(InvalidToken):
    """The bot cannot run (its token was rejected); the reason is in the message."""


async def poll(
    processor: UpdateProcessor, stop: asyncio.Event, *, poll_timeout: int = POLL_TIMEOUT
) -> None:
    ch = processor.channel
    async with ch.db.read() as conn:
        offset = (
            await conn.execute(select(Bot.update_offset).where(Bot.id == ch.record.id))
        ).scalar()
    offset = int(offset or 0)
    delay = 0.0
    rng = random.Random()
    webhook_checked = False
    store_failures = 0
    read_timeout = getattr(ch.bot.session, "read_timeout", 30.0)
    while not stop.is_set():
        if delay:
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return
            except TimeoutError:
                pass
        try:
            if not webhook_checked:
                # getUpdates answers 409 while a webhook is set: polling means no webhook.
                await ch.bot.delete_webhook(drop_pending_updates=False)
                webhook_checked = True
            call = asyncio.ensure_future(
                ch.bot.get_updates(
                    offset=offset or None,
                    timeout=poll_timeout,
                    limit=BATCH_LIMIT,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=int(poll_timeout + read_timeout),
                )
            )
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({call, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if call not in done:
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
                return
            stopper.cancel()
            updates = call.result()
        except TelegramUnauthorizedError as exc:
            raise BotStopped(f"the token was rejected by the server (401): {exc.message}") from exc
        except TelegramRetryAfter as exc:
            delay = float(exc.retry_after)
            log.warning("getUpdates rate limited", bot=ch.name, retry_after=delay)
            continue
        except (
            TelegramNetworkError,
            TelegramServerError,
            TelegramConflictError,
            ClientError,
            OSError,
        ) as exc:
            delay = min(MAX_BACKOFF, max(0.5, delay * 2)) * (0.5 + rng.random() / 2)
            ch.metrics.errors.labels(ch.name, "poll").inc()
            log.warning(
                "getUpdates failed; backing off",
                bot=ch.name,
                error=str(exc),
                retry_in=round(delay, 2),
            )
            webhook_checked = not isinstance(exc, TelegramConflictError)
            continue
        delay = 0.0
        if updates:
            try:
                # Shielded: a shutdown waits for the batch's transaction instead of tearing it.
                await asyncio.shield(processor.process(updates, advance_offset=True))
            except StoreError as exc:
                # Nothing was committed and the offset did not move: the same updates come
                # back on the next call, once the database accepts writes again.
                store_failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2**store_failures) * (0.5 + rng.random() / 2)
                ch.metrics.errors.labels(ch.name, "store").inc()
                log.error(
                    "could not record updates; retrying",
                    bot=ch.name,
                    error=str(exc),
                    retry_in=round(delay, 2),
                )
                continue
            store_failures = 0
            offset = max(u.update_id for u in updates) + 1
