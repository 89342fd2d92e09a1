"""Exactly-once handling of inbound updates, for polling and webhooks alike.

A batch of updates is handled in ONE write transaction that also records the processed
update ids (and, when polling, the next offset). A crash before the commit loses nothing
(Telegram redelivers: the offset was not advanced); a redelivered update after the commit is
found in ``processed_updates`` and skipped. Each update runs under a savepoint, so one that
makes a handler fail is recorded as processed (and counted) instead of blocking the bot.

Effects (replies, assistant questions) run after the commit. A reply's outbox row is written
in the same transaction (write-ahead): a process stopped or killed before it sent the reply
leaves it ``pending``, and the next owner of the bot sends it (``runtime/outbox.py``); one
stopped while sending leaves it ``sending``, which becomes ``uncertain``, never resent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiogram import Dispatcher
from aiogram.types import Update
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import inbox, sequence_runner, subscribers
from botdesk.inbox import MessageView
from botdesk.log import get_logger
from botdesk.runtime.channel import BotChannel
from botdesk.runtime.handlers import AskEffect, BotContext, CallbackEffect, Effects, SendEffect
from botdesk.runtime.ports import AssistantPort, Inbound, Reply, ReplyContext
from botdesk.runtime.rules import RuleBook
from botdesk.store.db import Database
from botdesk.store.models import Bot, ProcessedUpdate

log = get_logger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
# Processed ids older than this many ids below the newest are pruned: Telegram never
# redelivers an update that far back once the offset has moved past it.
PRUNE_KEEP = 100_000
HISTORY_LIMIT = 20  # messages of context given to the assistant port
# A question left unanswered by a stopped process is asked again up to this old; an older
# one goes to a human (an answer hours late would answer a conversation that moved on).
ASK_MAX_AGE = timedelta(hours=1)


class _QuietPerUpdateLines(logging.Filter):
    """Drops aiogram's one INFO line per update ("Update id=... is handled").

    At a thousand updates a second it would be most of the log and a good share of the CPU;
    the runtime's own summary lines and metrics count updates instead. Kept at DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not str(record.msg).startswith("Update id="):
            return True
        return logging.getLogger().isEnabledFor(logging.DEBUG)


_AIOGRAM_EVENTS = logging.getLogger("aiogram.event")
if not any(isinstance(f, _QuietPerUpdateLines) for f in _AIOGRAM_EVENTS.filters):
    _AIOGRAM_EVENTS.addFilter(_QuietPerUpdateLines())


class HistoryReader:
    """Reads conversation histories for concurrent effects, many per read transaction.

    Every AskEffect needs its chat's recent history, read after its update committed and
    after the previous reply in that chat was recorded. One read transaction each costs a
    connection per message on SQLite; here the requests that arrive while a read is under
    way share the next one.
    """

    def __init__(self, db: Database, *, limit: int = HISTORY_LIMIT) -> None:
        self.db = db
        self.limit = limit
        self._wanted: dict[tuple[int, int], list[asyncio.Future[list[MessageView]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, bot_id: int, chat_id: int) -> list[MessageView]:
        fut: asyncio.Future[list[MessageView]] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault((bot_id, chat_id), []).append(fut)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._serve())
        return await fut

    async def _serve(self) -> None:
        await asyncio.sleep(0)  # let the other effects of the same batch ask first
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            try:
                async with self.db.read() as conn:
                    for (bot_id, chat_id), futs in wanted.items():
                        if all(f.done() for f in futs):
                            continue
                        hist = await inbox.history(
                            conn, bot_id=bot_id, chat_id=chat_id, limit=self.limit
                        )
                        for f in futs:
                            if not f.done():
                                f.set_result(list(hist))
            except Exception as exc:
                for futs in wanted.values():
                    for f in futs:
                        if not f.done():
                            f.set_exception(exc)
            finally:  # cancelled mid-read: nobody may wait forever
                for futs in wanted.values():
                    for f in futs:
                        f.cancel()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for futs in self._wanted.values():
            for f in futs:
                f.cancel()
        self._wanted.clear()


def _automatic(item: SendEffect | AskEffect | CallbackEffect, silent: set[int]) -> bool:
    """An answer the bot gives by itself (the assistant's, a rule's) in a chat a human has."""
    if isinstance(item, AskEffect):
        return item.inbound.chat_id in silent
    if isinstance(item, SendEffect):
        return item.chat_id in silent and (item.meta or {}).get("kind") == "rule"
    return False


def _ask_fields(q: Inbound) -> dict[str, Any]:
    """What ``resume_asks`` needs besides the row's chat and text to ask again."""
    return {
        "language": q.language,
        "first_name": q.first_name,
        "update_id": q.update_id,
        "message_id": q.message_id,
    }


def update_type(u: Update) -> str:
    for name in ("message", "edited_message", "callback_query", "my_chat_member"):
        if getattr(u, name, None) is not None:
            return name
    return "other"


class UpdateProcessor:
    def __init__(
        self,
        *,
        channel: BotChannel,
        dispatcher: Dispatcher,
        port: AssistantPort,
        max_concurrent_effects: int = 64,
    ) -> None:
        self.channel = channel
        self.dp = dispatcher
        self.port = port
        self.handled = 0
        self.duplicates = 0
        self.errors = 0
        self._effects: set[asyncio.Task[None]] = set()
        # chat id -> (lock, effects using it); dropped when unused, or a bot with a million
        # chats would keep a million locks for ever.
        self._chat_locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self._sem = asyncio.Semaphore(max_concurrent_effects)
        self._histories = HistoryReader(channel.db)
        self.rules = RuleBook(channel.record.id, name=channel.name)

    async def process(self, updates: Sequence[Update], *, advance_offset: bool) -> int:
        """Handle a batch once; returns how many were new. Raises only on database failure."""
        if not updates:
            return 0
        ch = self.channel
        started = time.perf_counter()
        ids = [u.update_id for u in updates]
        fx = Effects()
        new = 0
        async with ch.db.write() as conn:
            ctx = BotContext(
                bot_id=ch.record.id,
                name=ch.name,
                options=ch.options,
                now=ch.clock.now(),
                rules=await self.rules.current(conn),
            )
            seen = set(
                (
                    await conn.execute(
                        select(ProcessedUpdate.update_id).where(
                            ProcessedUpdate.bot_id == ch.record.id,
                            ProcessedUpdate.update_id.in_(ids),
                        )
                    )
                ).scalars()
            )
            batch: list[Update] = []
            for u in updates:
                if u.update_id in seen:
                    self.duplicates += 1
                    ch.metrics.duplicates.labels(ch.name).inc()
                    continue
                seen.add(u.update_id)
                batch.append(u)
            fresh = [u.update_id for u in batch]
            try:
                # One savepoint for the whole batch: two statements instead of two per update.
                async with conn.begin_nested():
                    for u in batch:
                        await self.dp.feed_update(ch.bot, u, conn=conn, fx=fx, ctx=ctx)
            except Exception:
                # Some update makes its handler fail: redo the batch one savepoint per update,
                # so only that update is skipped (and its effects dropped with it).
                fx = Effects()
                await self._one_by_one(conn, batch, fx, ctx)
            await self._flush(conn, fx, ctx)
            # A reply, /stop, a block or a goal tag stops the chat's sequences here, in the
            # transaction that records it: a step not yet committed `sending` never leaves.
            await sequence_runner.stop_now(
                conn, bot_id=ch.record.id, chats=fx.stop_candidates(), now=ctx.now
            )
            await self._write_ahead(conn, fx, ctx)
            for u in batch:
                ch.metrics.updates.labels(ch.name, update_type(u)).inc()
            if fresh:
                await conn.execute(
                    insert(ProcessedUpdate),
                    [{"bot_id": ch.record.id, "update_id": i, "at": ctx.now} for i in fresh],
                )
                new = len(fresh)
            if advance_offset:
                top = max(ids)
                await conn.execute(
                    update(Bot).where(Bot.id == ch.record.id).values(update_offset=top + 1)
                )
                if top % 1000 < len(ids):  # now and then, keep the table small
                    await conn.execute(
                        delete(ProcessedUpdate).where(
                            ProcessedUpdate.bot_id == ch.record.id,
                            ProcessedUpdate.update_id < top - PRUNE_KEEP,
                        )
                    )
        self.handled += new
        if new:
            ch.metrics.handler_seconds.labels(ch.name).observe(
                (time.perf_counter() - started) / new
            )
        for item in fx.items:
            if isinstance(item, SendEffect | AskEffect) and item.outbox_id is not None:
                ch.held_replies.add(item.outbox_id)  # ours: the outbox worker leaves it alone
            self._spawn(item)
        return new

    async def _write_ahead(self, conn: AsyncConnection, fx: Effects, ctx: BotContext) -> None:
        """The batch's replies as outbox rows, committed with the updates they answer."""
        from botdesk.runtime.outbox import dump_message

        answers = getattr(self.port, "answers", None)
        asking = answers is None or answers(ctx.name)
        rows: list[tuple[int, inbox.QueuedReply]] = []
        for i, item in enumerate(fx.items):
            if isinstance(item, SendEffect):
                rows.append(
                    (
                        i,
                        inbox.QueuedReply(
                            chat_id=item.chat_id,
                            text=item.text,
                            author=item.author,
                            meta=item.meta,
                            payload=dump_message(item.message),
                            is_group=item.is_group,
                        ),
                    )
                )
            elif isinstance(item, AskEffect) and asking:
                # The question, so that an answer not computed before a crash is asked for
                # again by the next owner (``resume_asks``) instead of lost.
                q = item.inbound
                rows.append(
                    (
                        i,
                        inbox.QueuedReply(
                            chat_id=q.chat_id,
                            text=q.text,
                            author="assistant",
                            meta={"kind": "ask"},
                            payload={"ask": _ask_fields(q)},
                            state="asking",
                        ),
                    )
                )
        if not rows:
            return
        ids = await inbox.queue_replies(
            conn, bot_id=self.channel.record.id, rows=[r for _, r in rows], now=ctx.now
        )
        for (i, _r), item_id in zip(rows, ids, strict=True):
            item = fx.items[i]
            assert isinstance(item, SendEffect | AskEffect)
            fx.items[i] = dataclasses.replace(item, outbox_id=item_id)

    async def _flush(self, conn: AsyncConnection, fx: Effects, ctx: BotContext) -> None:
        """The batch's inbox rows and subscriber touches, in a few set-based statements."""
        bot_id = self.channel.record.id
        needs_human = await inbox.record_many(conn, bot_id=bot_id, rows=fx.records, now=ctx.now)
        await subscribers.touch_many(conn, bot_id=bot_id, people=fx.touches, now=ctx.now)
        if any(needs_human.values()):
            # A human has these conversations: the assistant and keyword rules stay silent.
            silent = {c for c, flag in needs_human.items() if flag}
            fx.items = [i for i in fx.items if not _automatic(i, silent)]

    async def _one_by_one(
        self, conn: AsyncConnection, batch: Sequence[Update], fx: Effects, ctx: BotContext
    ) -> None:
        ch = self.channel
        for u in batch:
            mark = fx.mark()
            try:
                async with conn.begin_nested():
                    await self.dp.feed_update(ch.bot, u, conn=conn, fx=fx, ctx=ctx)
            except Exception as exc:
                # The update's writes were rolled back: so are the effects it queued.
                fx.rollback(mark)
                self.errors += 1
                ch.metrics.errors.labels(ch.name, "handler").inc()
                log.error(
                    "update handler failed; update skipped",
                    bot=ch.name,
                    update_id=u.update_id,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def _spawn(self, item: SendEffect | AskEffect | CallbackEffect) -> None:
        task = asyncio.create_task(self._run_effect(item))
        self._effects.add(task)
        task.add_done_callback(self._effects.discard)

    async def _run_effect(self, item: SendEffect | AskEffect | CallbackEffect) -> None:
        ch = self.channel
        try:
            async with self._sem:
                if isinstance(item, CallbackEffect):
                    await ch.answer_callback(item.callback_id, item.text)
                    return
                # One chat's effects run in order: the welcome before the answer to the
                # first question, and never two assistant calls racing in one chat.
                chat = item.chat_id if isinstance(item, SendEffect) else item.inbound.chat_id
                lock, users = self._chat_locks.get(chat) or (asyncio.Lock(), 0)
                self._chat_locks[chat] = (lock, users + 1)
                try:
                    async with lock:
                        if isinstance(item, SendEffect):
                            await ch.send_reply(
                                item.chat_id,
                                item.text,
                                author=item.author,
                                meta=item.meta,
                                is_group=item.is_group,
                                message=item.message,
                                outbox_id=item.outbox_id,
                            )
                        else:
                            await self._ask(item)
                finally:
                    lock, users = self._chat_locks[chat]
                    if users > 1:
                        self._chat_locks[chat] = (lock, users - 1)
                    else:
                        del self._chat_locks[chat]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A written-ahead reply stays pending or sending: the next owner of the bot sends
            # it or records it uncertain.
            self.errors += 1
            ch.metrics.errors.labels(ch.name, "effect").inc()
            log.error("reply failed", bot=ch.name, error=f"{type(exc).__name__}: {exc}")
        finally:
            if isinstance(item, SendEffect | AskEffect) and item.outbox_id is not None:
                ch.held_replies.discard(item.outbox_id)

    async def _ask(self, item: AskEffect) -> None:
        ch = self.channel
        msg = item.inbound
        typing: list[asyncio.Task[None]] = []

        async def history() -> Sequence[MessageView]:
            hist = await self._histories.get(msg.bot_id, msg.chat_id)
            if hist and hist[-1].direction == "in" and hist[-1].author == "user":
                return hist[:-1]  # the question itself is passed separately
            return hist

        def start_typing() -> None:
            if not typing:
                typing.append(asyncio.create_task(ch.typing(msg.chat_id)))

        try:
            reply = await self.port.reply(msg, ReplyContext(history=history, typing=start_typing))
        except Exception as exc:
            if item.outbox_id is not None:  # no answer will come: a human gets the question
                await inbox.give_up_ask(
                    ch.db,
                    item.outbox_id,
                    bot_id=msg.bot_id,
                    chat_id=msg.chat_id,
                    reason=f"the assistant failed: {type(exc).__name__}: {exc}"[:500],
                    now=ch.clock.now(),
                )
            raise
        finally:
            for t in typing:
                t.cancel()
        if item.outbox_id is not None:
            await self._answer(item.outbox_id, msg, reply)
            return
        if reply is None:
            return
        if reply.handoff_reason is not None:
            async with ch.db.write() as conn:
                await inbox.set_needs_human(
                    conn,
                    bot_id=msg.bot_id,
                    chat_id=msg.chat_id,
                    reason=reply.handoff_reason,
                    now=ch.clock.now(),
                )
        await ch.send_reply(msg.chat_id, reply.text, author=reply.author, meta=dict(reply.meta))

    async def _answer(self, outbox_id: int, msg: Inbound, reply: Reply | None) -> None:
        """The written-ahead question gets its answer (``asking -> pending``, committed with
        the hand-off if any), then it is sent like every reply: claimed ``sending``, settled."""
        ch = self.channel
        if reply is None:
            await inbox.drop_ask(ch.db, outbox_id)
            return
        if not await inbox.answer_ask(
            ch.db,
            outbox_id,
            bot_id=msg.bot_id,
            chat_id=msg.chat_id,
            text=reply.text,
            author=reply.author,
            meta=dict(reply.meta),
            handoff_reason=reply.handoff_reason,
            now=ch.clock.now(),
        ):
            return  # answered by another owner of the bot, or given up: never twice
        await ch.send_reply(
            msg.chat_id, reply.text, author=reply.author, meta=dict(reply.meta), outbox_id=outbox_id
        )

    async def resume_asks(self) -> int:
        """At the start of a turn of ownership: questions a stopped process wrote ahead but
        did not answer (rows ``asking``) are asked again, in order with their chat's other
        effects; one older than ``ASK_MAX_AGE`` goes to a human instead (the conversation is
        flagged with the reason), and one whose conversation a human has is dropped. Returns
        how many were asked again."""
        ch = self.channel
        now = ch.clock.now()
        asked = 0
        for a in await inbox.open_asks(ch.db, bot_id=ch.record.id, exclude=set(ch.held_replies)):
            if a.needs_human:
                await inbox.drop_ask(ch.db, a.id)
                continue
            age = now - a.created_at
            if age > ASK_MAX_AGE:
                await inbox.give_up_ask(
                    ch.db,
                    a.id,
                    bot_id=ch.record.id,
                    chat_id=a.chat_id,
                    reason=(
                        "not answered: the process stopped before the assistant answered, "
                        f"{int(age.total_seconds() // 60)} min ago"
                    ),
                    now=now,
                )
                continue
            item = AskEffect(
                Inbound(
                    bot_id=ch.record.id,
                    bot=ch.name,
                    chat_id=a.chat_id,
                    text=a.text,
                    language=a.ask.get("language"),
                    first_name=a.ask.get("first_name"),
                    update_id=a.ask.get("update_id"),
                    message_id=a.ask.get("message_id"),
                ),
                outbox_id=a.id,
            )
            ch.held_replies.add(a.id)
            self._spawn(item)
            asked += 1
        if asked:
            log.warning("unanswered questions asked again", bot=ch.name, n=asked)
        return asked

    async def drain(self, grace: float) -> None:
        """Let queued replies finish (graceful shutdown), then cancel what is left: a
        cancelled reply keeps its outbox row (pending, or sending if its request may have
        left), so the next owner of the bot sends it or records it uncertain."""
        pending = set(self._effects)
        if pending:
            _done, left = await asyncio.wait(pending, timeout=grace)
            for t in left:
                t.cancel()
            if left:
                await asyncio.gather(*left, return_exceptions=True)
        await self._histories.aclose()
