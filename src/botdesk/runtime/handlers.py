"""aiogram routers wired to the services.

Handlers run inside the database transaction that also marks their update as processed
(``updates.UpdateProcessor``), so they only write to the database and queue *effects*
(replies, assistant questions); effects run after the commit, outside the write lock.
Consent changes are written by the handlers in order; inbox rows and subscriber touches
are queued in ``Effects`` and written once per batch.
Each handler receives ``conn`` (the open connection), ``fx`` (the effects list) and ``ctx``
(the bot's context) from ``Dispatcher.feed_update``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Chat, ChatMemberUpdated, Message, User
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk import clicks, inbox, reply_rules, sequence_runner, subscribers
from botdesk.config import BotOptions
from botdesk.reply_rules import RuleSet
from botdesk.runtime.ports import Inbound
from botdesk.runtime.rules import reply_parts
from botdesk.telegram.gateway import OutgoingMessage

HELP_TEXT = "Send me a message and we will answer. /stop unsubscribes, /start subscribes again."


@dataclass(frozen=True)
class BotContext:
    bot_id: int
    name: str
    options: BotOptions
    now: datetime
    rules: RuleSet | None = None  # keyword rules and menus (runtime/rules.py)


@dataclass(frozen=True)
class SendEffect:
    chat_id: int
    text: str
    author: str = "bot"
    is_group: bool = False
    meta: dict[str, Any] | None = None
    message: OutgoingMessage | None = None  # media and buttons (a rule's reply)
    outbox_id: int | None = None  # its row, written ahead with the update (runtime/updates)


@dataclass(frozen=True)
class AskEffect:
    inbound: Inbound
    is_group: bool = False
    outbox_id: int | None = None  # its question, written ahead ``asking`` (runtime/updates)


@dataclass(frozen=True)
class CallbackEffect:
    callback_id: str
    text: str | None = None


@dataclass
class Effects:
    """What a batch of handlers asks for. Inbox rows and subscriber touches are written once
    per batch (``UpdateProcessor`` flushes them with executemany); consent changes are
    written by the handlers themselves, in order."""

    items: list[SendEffect | AskEffect | CallbackEffect] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    records: list[inbox.NewMessage] = field(default_factory=list)
    touches: list[subscribers.Person] = field(default_factory=list)
    # Questions for the assistant (also in ``items``); dropped at the flush where a human
    # has the conversation.
    asks: list[AskEffect] = field(default_factory=list)
    # Chats whose status changed without a message recorded (a block): their sequences'
    # stop rules are applied in the batch's transaction with those of the chats that wrote
    # (``stop_candidates``). Not rolled back with a failed update: a check that finds
    # nothing changed stops nothing.
    status_changed: set[int] = field(default_factory=set)

    def count(self, change: str) -> None:
        if change != "none":
            self.changes[change] = self.changes.get(change, 0) + 1

    def record(
        self,
        chat_id: int,
        text: str,
        *,
        message_id: int | None,
        update_id: int,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.records.append(
            inbox.NewMessage(
                chat_id=chat_id,
                direction="in",
                author="user",
                text=text,
                telegram_message_id=message_id,
                update_id=update_id,
                meta=meta,
            )
        )

    def stop_candidates(self) -> dict[int, bool]:
        """Chats whose sequence stop rules this batch may have triggered -> whether the chat
        sent a reply (``sequence_runner.is_reply``)."""
        out = dict.fromkeys(self.status_changed, False)
        for r in self.records:
            replied = r.direction == "in" and sequence_runner.is_reply(r.text)
            out[r.chat_id] = out.get(r.chat_id, False) or replied
        return out

    def mark(self) -> tuple[int, int, int, int, dict[str, int]]:
        return (
            len(self.items),
            len(self.records),
            len(self.touches),
            len(self.asks),
            dict(self.changes),
        )

    def rollback(self, mark: tuple[int, int, int, int, dict[str, int]]) -> None:
        """Forget what one failed update queued (its writes were rolled back too)."""
        del self.items[mark[0] :]
        del self.records[mark[1] :]
        del self.touches[mark[2] :]
        del self.asks[mark[3] :]
        self.changes = mark[4]


def person(chat: Chat, user: User | None) -> subscribers.Person:
    is_group = chat.type in ("group", "supergroup")
    if is_group:
        return subscribers.Person(chat_id=chat.id, first_name=chat.title, is_group=True)
    return subscribers.Person(
        chat_id=chat.id,
        first_name=user.first_name if user else chat.first_name,
        username=user.username if user else chat.username,
        language=user.language_code if user else None,
    )


def presser(query: CallbackQuery) -> subscribers.Person:
    """Who pressed a button, in the chat of the message that carries it."""
    chat = query.message.chat if query.message else None
    return subscribers.Person(
        chat_id=chat.id if chat else query.from_user.id,
        first_name=query.from_user.first_name,
        username=query.from_user.username,
        language=query.from_user.language_code,
    )


class _Safe(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def personal(text: str, p: subscribers.Person) -> str:
    """Fill {first_name}/{username} in configured texts; unknown names become empty."""
    try:
        return text.format_map(_Safe(first_name=p.first_name or "", username=p.username or ""))
    except (ValueError, IndexError):  # a stray brace in an operator's text: send it as written
        return text


def build_router() -> Router:
    router = Router(name="botdesk")

    @router.message(CommandStart())
    async def on_start(
        message: Message,
        command: CommandObject,
        conn: AsyncConnection,
        fx: Effects,
        ctx: BotContext,
        event_update: Any,
    ) -> None:
        p = person(message.chat, message.from_user)
        change = await subscribers.start(
            conn,
            bot_id=ctx.bot_id,
            person=p,
            payload=command.args,
            update_id=event_update.update_id,
            now=ctx.now,
        )
        fx.count(change)
        fx.record(
            p.chat_id,
            message.text or "/start",
            message_id=message.message_id,
            update_id=event_update.update_id,
        )
        fx.items.append(
            SendEffect(p.chat_id, personal(ctx.options.welcome_text, p), is_group=p.is_group)
        )

    @router.message(Command("stop", "unsubscribe"))
    async def on_stop(
        message: Message, conn: AsyncConnection, fx: Effects, ctx: BotContext, event_update: Any
    ) -> None:
        p = person(message.chat, message.from_user)
        change = await subscribers.stop(
            conn, bot_id=ctx.bot_id, person=p, update_id=event_update.update_id, now=ctx.now
        )
        fx.count(change)
        fx.record(
            p.chat_id,
            message.text or "/stop",
            message_id=message.message_id,
            update_id=event_update.update_id,
        )
        if change != "none":
            fx.items.append(SendEffect(p.chat_id, personal(ctx.options.stop_text, p)))

    @router.message(Command("help"))
    async def on_help(message: Message, fx: Effects) -> None:
        fx.items.append(SendEffect(message.chat.id, HELP_TEXT))

    @router.message(F.text)
    async def on_text(
        message: Message, conn: AsyncConnection, fx: Effects, ctx: BotContext, event_update: Any
    ) -> None:
        p = person(message.chat, message.from_user)
        text = message.text or ""
        fx.touches.append(p)
        fx.record(p.chat_id, text, message_id=message.message_id, update_id=event_update.update_id)
        fx.count("message")
        rule = ctx.rules.match(text, p.language) if ctx.rules and not p.is_group else None
        if rule is not None:  # a keyword rule answers before the assistant
            await reply_rules.retag(conn, bot_id=ctx.bot_id, chat_id=p.chat_id, add=rule.tags)
            body, msg, meta = reply_parts(rule, p)
            fx.items.append(SendEffect(p.chat_id, body, meta=meta, message=msg))
            return
        if text.startswith("/") or p.is_group:
            # Unknown commands are kept but not answered; in groups the bot speaks only when
            # spoken to with a command.
            return
        ask = AskEffect(
            Inbound(
                bot_id=ctx.bot_id,
                bot=ctx.name,
                chat_id=p.chat_id,
                text=text,
                language=p.language,
                first_name=p.first_name,
                update_id=event_update.update_id,
                message_id=message.message_id,
            )
        )
        fx.items.append(ask)  # in order with the chat's other effects
        fx.asks.append(ask)

    @router.message()
    async def on_other(message: Message, fx: Effects, event_update: Any) -> None:
        p = person(message.chat, message.from_user)
        fx.touches.append(p)
        kind = message.content_type
        fx.record(
            p.chat_id,
            message.caption or f"[{kind}]",
            message_id=message.message_id,
            update_id=event_update.update_id,
            meta={"content_type": str(kind)},
        )

    @router.edited_message()
    async def on_edit(message: Message, fx: Effects, event_update: Any) -> None:
        p = person(message.chat, message.from_user)
        fx.touches.append(p)
        fx.record(
            p.chat_id,
            message.text or message.caption or "",
            message_id=message.message_id,
            update_id=event_update.update_id,
            meta={"edited": True},
        )

    @router.callback_query()
    async def on_callback(
        query: CallbackQuery,
        conn: AsyncConnection,
        fx: Effects,
        ctx: BotContext,
        event_update: Any,
    ) -> None:
        p = presser(query)
        chat_id = p.chat_id
        # A campaign button: the click (and its tag, menu choice or queued reply) commits with
        # the update; a menu choice is answered with what it saved.
        action = await clicks.record_callback(
            conn,
            bot_id=ctx.bot_id,
            chat_id=chat_id,
            data=query.data,
            message_id=query.message.message_id if query.message else None,
            update_id=event_update.update_id,
            now=ctx.now,
        )
        fx.touches.append(p)
        fx.record(
            chat_id,
            f"[button] {query.data or ''}",
            message_id=None,
            update_id=event_update.update_id,
            meta={"callback_data": query.data},
        )
        fx.items.append(CallbackEffect(query.id, action.answer() if action else None))

    @router.my_chat_member()
    async def on_member(
        event: ChatMemberUpdated,
        conn: AsyncConnection,
        fx: Effects,
        ctx: BotContext,
        event_update: Any,
    ) -> None:
        p = person(event.chat, event.from_user)
        status = event.new_chat_member.status
        change = await subscribers.member_status(
            conn,
            bot_id=ctx.bot_id,
            person=p,
            new_status=str(getattr(status, "value", status)),
            update_id=event_update.update_id,
            now=ctx.now,
        )
        fx.count(change)
        fx.status_changed.add(p.chat_id)

    return router
