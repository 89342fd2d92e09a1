"""One bot's outbound channel: its aiogram ``Bot``, its rate limiter, and replies.

Campaign sends and conversational replies of a bot share the same ``BotRateLimiter`` (replies
go first). A reply is recorded in the conversation when it ends: sent, given up with its reason
(blocked, chat gone, bad request: the inbox shows "not delivered: REASON") or uncertain (the
answer was lost; never resent: at most once, like campaigns). A reply that draws
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
        # Outbox rows this process is sending now: recovery leaves them alone.
        self.held_replies: set[int] = set()

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
        outbox_id: int | None = None,
    ) -> SendResult:
        """Send through the limiter with reply priority; record it in the conversation.

        ``message`` (media, buttons) is sent instead of a plain ``text``; ``text`` is what the
        conversation records. ``outbox_id``: the reply was written ahead (``inbox.
        queue_replies``); it is claimed ``sending`` before each request and settled after, so
        a crash leaves it ``pending`` (sent by the next owner) or ``sending`` (uncertain)."""
        msg = message or OutgoingMessage(chat_id=chat_id, text=text, parse_mode=parse_mode)
        result = SendResult(outcome=Outcome.CONNECT_FAILED)
        attempt = 0
        sent_at = self.clock.monotonic()
        if outbox_id is not None:
            self.held_replies.add(outbox_id)
        try:
            while attempt < MAX_REPLY_ATTEMPTS:
                # After a 429 this waits out the bot's pause; reply priority goes first then.
                await self.limiter.acquire(chat_id, is_group=is_group, priority=Priority.REPLY)
                admitted_at = self.clock.monotonic()
                if outbox_id is not None and not await inbox.claim_reply(self.db, outbox_id):
                    # Settled already (recovered, or sent by another path): never twice.
                    return SendResult(outcome=Outcome.SENT, description="already handled")
                if self.limiter.rate_limited_since(admitted_at) is not None:
                    # A 429 came back while the claim committed: wait the pause out first.
                    if outbox_id is not None:
                        await inbox.unclaim_reply(self.db, outbox_id)
                    continue
                sent_at = self.clock.monotonic()
                result = await send(self.bot, msg)
                if result.outcome is Outcome.RETRY_AFTER:
                    # Refused, not delivered: not an attempt, Telegram said when to come back.
                    self.limiter.on_rate_limited(result.retry_after or 1.0, chat_id=chat_id)
                    log.info(
                        "reply rate limited, waiting",
                        bot=self.name,
                        chat_id=chat_id,
                        retry_after=result.retry_after,
                    )
                    if outbox_id is not None:
                        await inbox.unclaim_reply(self.db, outbox_id)
                    await self.remember_rates()
                    continue
                attempt += 1
                if result.outcome in (Outcome.CONNECT_FAILED, Outcome.SERVER_ERROR):
                    if outbox_id is not None:  # the request cannot have been delivered
                        await inbox.unclaim_reply(self.db, outbox_id)
                    await self.clock.sleep(min(8.0, 0.25 * 2**attempt) * self._rng.random())
                    continue
                break
            await self._settle(chat_id, text, author, meta, result, outbox_id, sent_at)
        finally:
            if outbox_id is not None:
                self.held_replies.discard(outbox_id)
        return result

    async def _settle(
        self,
        chat_id: int,
        text: str,
        author: str,
        meta: dict[str, Any] | None,
        result: SendResult,
        outbox_id: int | None,
        sent_at: float,
    ) -> None:
        self.metrics.replies.labels(self.name, result.outcome.value).inc()
        now = self.clock.now()
        reason = result.description or result.outcome.value
        if result.outcome is Outcome.SENT:
            self.limiter.on_accepted(sent_at=sent_at)
            self.stats.sent += 1
            state = "sent"
        else:
            self.stats.failed += 1
            state = "uncertain" if result.outcome is Outcome.UNKNOWN_AFTER_SEND else "failed"
            if outbox_id is not None and state == "failed":
                # Retries exhausted after connect or server errors left it pending.
                await inbox.claim_reply(self.db, outbox_id)
        await inbox.settle_reply(
            self.db,
            bot_id=self.record.id,
            chat_id=chat_id,
            author=author,
            text=text,
            meta=meta,
            state=state,
            item_id=outbox_id,
            message_id=result.message_id,
            error=None if state == "sent" else reason,
            now=now,
        )
        if state == "sent":
            return
        status = UNREACHABLE.get(result.outcome)
        if status is not None:
            async with self.db.write() as conn:
                await subscribers.mark_unreachable(
                    conn,
                    bot_id=self.record.id,
                    chat_id=chat_id,
                    status=status,  # type: ignore[arg-type]
                    reason=reason,
                    now=now,
                )
        log.warning(
            "reply not delivered" if state == "failed" else "reply delivery uncertain",
            bot=self.name,
            chat_id=chat_id,
            outcome=result.outcome.value,
            description=result.description,
        )

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
        clock=clock,
        rate=opts.rate or s.delivery.rate,
        paid_rate=s.delivery.paid_rate,
        paid_slow_start=s.delivery.paid_slow_start,
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
