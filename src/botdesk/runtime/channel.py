"""One bot's outbound channel: its aiogram ``Bot``, its rate limiter, and replies.

Campaign sends and conversational replies of a bot share the same ``BotRateLimiter`` (replies
go first). A reply is recorded in the conversation once Telegram confirms it; a reply that
cannot be confirmed is logged, never resent (at most once, like campaigns). A reply that draws
429 was refused, not delivered: it waits ``retry_after`` (the bot's pause) and goes out ahead
of campaign sends, however many times that takes; only a chat that can no longer be written
to (blocked, gone) or repeated network/server failures give it up.

The rates the limiter learns from 429s are kept on the bot's row, so a restart starts from
them instead of provoking the same 429s again.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from aiogram import Bot

from botdesk import bots, inbox, subscribers
from botdesk.app import App
from botdesk.bots import BotRecord
from botdesk.clock import Clock
from botdesk.config import BotOptions
from botdesk.delivery.ratelimit import BotRateLimiter, Priority
from botdesk.log import get_logger
from botdesk.runtime.metrics import Metrics
from botdesk.store.db import Database
from botdesk.telegram.gateway import Outcome, OutgoingMessage, SendResult, send

log = get_logger(__name__)

MAX_REPLY_ATTEMPTS = 4
UNREACHABLE = {
    Outcome.BLOCKED: "blocked",
    Outcome.DEACTIVATED: "deactivated",
    Outcome.CHAT_GONE: "gone",
    Outcome.NOT_STARTED: "gone",
}


@dataclass
class ReplyStats:
    sent: int = 0
    failed: int = 0


class BotChannel:
    def __init__(
        self,
        *,
        record: BotRecord,
        bot: Bot,
        limiter: BotRateLimiter,
        options: BotOptions,
        db: Database,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.record = record
        self.bot = bot
        self.limiter = limiter
        self.options = options
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.stats = ReplyStats()
        self._rng = random.Random()
        self._delivery_counters: dict[str, Any] = {}
        self._remembered: tuple[float | None, float | None] = (None, None)

    @property
    def name(self) -> str:
        return self.record.name

    async def send_reply(
        self,
        chat_id: int,
        text: str,
        *,
        author: str = "bot",
        meta: dict[str, Any] | None = None,
        is_group: bool = False,
        parse_mode: str | None = None,
        message: OutgoingMessage | None = None,
    ) -> SendResult:
        """Send through the limiter with reply priority; record it in the conversation.

        ``message`` (media, buttons) is sent instead of a plain ``text``; ``text`` is what the
        conversation records."""
        msg = message or OutgoingMessage(chat_id=chat_id, text=text, parse_mode=parse_mode)
        result = SendResult(outcome=Outcome.CONNECT_FAILED)
        attempt = 0
        while attempt < MAX_REPLY_ATTEMPTS:
            # After a 429 this waits out the bot's pause; reply priority goes first then.
            await self.limiter.acquire(chat_id, is_group=is_group, priority=Priority.REPLY)
            sent_at = self.clock.monotonic()
            result = await send(self.bot, msg)
            if result.outcome is Outcome.RETRY_AFTER:
                # Refused, not delivered: not an attempt, Telegram said when to come back.
                self.limiter.on_rate_limited(result.retry_after or 1.0)
                log.info(
                    "reply rate limited, waiting",
                    bot=self.name,
                    chat_id=chat_id,
                    retry_after=result.retry_after,
                )
                await self.remember_rates()
                continue
            attempt += 1
            if result.outcome in (Outcome.CONNECT_FAILED, Outcome.SERVER_ERROR):
                await self.clock.sleep(min(8.0, 0.25 * 2**attempt) * self._rng.random())
                continue
            break
        self.metrics.replies.labels(self.name, result.outcome.value).inc()
        now = self.clock.now()
        if result.outcome is Outcome.SENT:
            self.limiter.on_accepted(sent_at=sent_at)
            self.stats.sent += 1
            async with self.db.write() as conn:
                await inbox.record(
                    conn,
                    bot_id=self.record.id,
                    chat_id=chat_id,
                    direction="out",
                    author=author,
                    text=text,
                    telegram_message_id=result.message_id,
                    meta=meta,
                    now=now,
                )
            return result
        self.stats.failed += 1
        status = UNREACHABLE.get(result.outcome)
        if status is not None:
            async with self.db.write() as conn:
                await subscribers.mark_unreachable(
                    conn,
                    bot_id=self.record.id,
                    chat_id=chat_id,
                    status=status,  # type: ignore[arg-type]
                    reason=result.description or result.outcome.value,
                    now=now,
                )
        log.warning(
            "reply not delivered",
            bot=self.name,
            chat_id=chat_id,
            outcome=result.outcome.value,
            description=result.description,
        )
        return result

    async def remember_rates(self) -> None:
        """Store the rates learned from 429s on the bot's row when they changed."""
        learned = self.limiter.learned_rates()
        if learned == self._remembered:
            return
        self._remembered = learned
        try:
            await bots.store_learned_rates(self.db, self.record.id, *learned)
        except Exception as exc:  # a lost figure only costs a few 429s after a restart
            log.warning("learned rate not stored", bot=self.name, error=str(exc))

    def restore_rates(self) -> None:
        """Start the limiter from the rates learned before (see ``remember_rates``), as the
        bot's record read at start-up holds them."""
        self.limiter.restore_rates(self.record.learned_rate, self.record.learned_paid_rate)
        self._remembered = self.limiter.learned_rates()

    def count_delivery(self, state: str) -> None:
        # Called once per campaign message: the labelled child is looked up once per state
        # (``labels`` locks and hashes its arguments on every call).
        counter = self._delivery_counters.get(state)
        if counter is None:
            counter = self._delivery_counters[state] = self.metrics.deliveries.labels(
                self.name, state
            )
        counter.inc()

    async def typing(self, chat_id: int) -> None:
        """Best effort "typing…" indicator; failures only matter to the log."""
        try:
            await asyncio.wait_for(self.bot.send_chat_action(chat_id, "typing"), timeout=5)
        except Exception as exc:  # an indicator must never break the conversation
            log.debug("typing indicator failed", bot=self.name, error=str(exc))

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        try:
            await asyncio.wait_for(self.bot.answer_callback_query(callback_id, text=text), 5)
        except Exception as exc:
            log.debug("answerCallbackQuery failed", bot=self.name, error=str(exc))

    async def aclose(self) -> None:
        await self.bot.session.close()


def open_channel(app: App, rec: BotRecord, *, clock: Clock, metrics: Metrics) -> BotChannel:
    """A channel for a registered bot, configured from the home's settings."""
    from botdesk.bots import BotRegistry
    from botdesk.telegram.gateway import make_bot

    s = app.settings
    opts = s.bot(rec.name)
    bot = make_bot(
        BotRegistry(app.db, app.secrets).token(rec),
        api_base=rec.api_base,
        connect_timeout=s.network.connect_timeout,
        read_timeout=s.network.read_timeout,
        proxy=s.network.proxy or None,
    )
    limiter = BotRateLimiter(
        clock=clock, rate=opts.rate or s.delivery.rate, paid_rate=s.delivery.paid_rate
    )
    return BotChannel(
        record=rec,
        bot=bot,
        limiter=limiter,
        options=opts,
        db=app.db,
        clock=clock,
        metrics=metrics,
    )
