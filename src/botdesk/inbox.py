"""Conversations between a bot and each chat, and the human handoff flag.

Every inbound text and every outbound message of a bot is stored in the conversation of
that chat. A conversation marked ``needs_human`` keeps the assistant silent until an
operator releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from botdesk.errors import NotFoundError
from botdesk.store.db import Database
from botdesk.store.models import Bot, Conversation, Message, Subscriber

# Keys of an outgoing message's meta when it did not (surely) reach the chat.
NOT_DELIVERED = "not_delivered"  # the reason it was given up (blocked, chat gone, bad request)
UNCERTAIN = "delivery_uncertain"  # why it may or may not have been delivered


@dataclass(frozen=True)
class MessageView:
    direction: str
    author: str
    text: str
    at: datetime
    telegram_message_id: int | None
    meta: dict[str, Any] | None

    @property
    def not_delivered(self) -> str | None:
        """Why this reply was given up, or None (delivered, or an inbound message)."""
        reason = (self.meta or {}).get(NOT_DELIVERED)
        return None if reason is None else str(reason)

    @property
    def uncertain(self) -> str | None:
        """Why this reply may not have reached the chat (the request's answer was lost)."""
        reason = (self.meta or {}).get(UNCERTAIN)
        return None if reason is None else str(reason)

    def marker(self) -> str | None:
        """The line an inbox shows on a reply that did not surely arrive."""
        if self.not_delivered is not None:
            return f"not delivered: {self.not_delivered}"
        if self.uncertain is not None:
            return f"delivery uncertain: {self.uncertain}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "author": self.author,
            "text": self.text,
            "at": self.at.isoformat(),
            "telegram_message_id": self.telegram_message_id,
            "meta": self.meta,
            "not_delivered": self.not_delivered,
            "delivery_uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class ConversationView:
    bot: str
    chat_id: int
    name: str | None
    needs_human: bool
    handoff_reason: str | None
    messages: int
    last_message_at: datetime
    last_text: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "chat_id": self.chat_id,
            "name": self.name,
            "needs_human": self.needs_human,
            "handoff_reason": self.handoff_reason,
            "messages": self.messages,
            "last_message_at": self.last_message_at.isoformat(),
            "last_text": self.last_text,
        }


@dataclass(frozen=True)
class NewMessage:
    chat_id: int
    direction: str
    author: str
    text: str
    telegram_message_id: int | None = None
    update_id: int | None = None
    meta: dict[str, Any] | None = None


async def record_many(
    conn: AsyncConnection, *, bot_id: int, rows: list[NewMessage], now: datetime
) -> dict[int, bool]:
    """Append many messages in a few set-based statements; returns needs_human per chat.

    The inbound path of a busy bot writes a whole batch of updates this way: one statement
    per kind of write instead of four per message.
    """
    if not rows:
        return {}
    chats = sorted({r.chat_id for r in rows})

    async def known() -> dict[int, tuple[int, bool]]:
        found = (
            await conn.execute(
                select(Conversation.chat_id, Conversation.id, Conversation.needs_human).where(
                    Conversation.bot_id == bot_id, Conversation.chat_id.in_(chats)
                )
            )
        ).all()
        return {r[0]: (r[1], bool(r[2])) for r in found}

    convs = await known()
    missing = [c for c in chats if c not in convs]
    if missing:
        await conn.execute(
            insert(Conversation),
            [
                {"bot_id": bot_id, "chat_id": c, "needs_human": False, "last_message_at": now}
                for c in missing
            ],
        )
        convs = await known()
    await conn.execute(
        insert(Message),
        [
            {
                "conversation_id": convs[r.chat_id][0],
                "direction": r.direction,
                "author": r.author,
                "text": r.text,
                "telegram_message_id": r.telegram_message_id,
                "update_id": r.update_id,
                "meta": r.meta,
                "at": now,
            }
            for r in rows
        ],
    )
    await conn.execute(
        update(Conversation)
        .where(Conversation.id.in_([convs[c][0] for c in chats]))
        .values(last_message_at=now)
    )
    return {c: convs[c][1] for c in chats}


async def conversation_id(
    conn: AsyncConnection, *, bot_id: int, chat_id: int, now: datetime
) -> tuple[int, bool]:
    """(id, needs_human) of the chat's conversation, created on first use."""
    row = (
        await conn.execute(
            select(Conversation.id, Conversation.needs_human).where(
                Conversation.bot_id == bot_id, Conversation.chat_id == chat_id
            )
        )
    ).first()
    if row:
        return row[0], bool(row[1])
    new_id = (
        await conn.execute(
            insert(Conversation)
            .values(bot_id=bot_id, chat_id=chat_id, needs_human=False, last_message_at=now)
            .returning(Conversation.id)
        )
    ).scalar_one()
    return new_id, False


async def record(
    conn: AsyncConnection,
    *,
    bot_id: int,
    chat_id: int,
    direction: str,
    author: str,
    text: str,
    now: datetime,
    telegram_message_id: int | None = None,
    update_id: int | None = None,
    meta: dict[str, Any] | None = None,
) -> bool:
    """Append a message; returns whether the conversation currently needs a human."""
    conv, needs_human = await conversation_id(conn, bot_id=bot_id, chat_id=chat_id, now=now)
    await conn.execute(
        insert(Message).values(
            conversation_id=conv,
            direction=direction,
            author=author,
            text=text,
            telegram_message_id=telegram_message_id,
            update_id=update_id,
            meta=meta,
            at=now,
        )
    )
    await conn.execute(
        update(Conversation).where(Conversation.id == conv).values(last_message_at=now)
    )
    return needs_human


async def set_needs_human(
    conn: AsyncConnection, *, bot_id: int, chat_id: int, reason: str | None, now: datetime
) -> None:
    conv, _ = await conversation_id(conn, bot_id=bot_id, chat_id=chat_id, now=now)
    await conn.execute(
        update(Conversation)
        .where(Conversation.id == conv)
        .values(needs_human=reason is not None, handoff_reason=reason)
    )


async def history(
    conn: AsyncConnection, *, bot_id: int, chat_id: int, limit: int = 20
) -> list[MessageView]:
    """The last ``limit`` messages, oldest first."""
    rows = (
        await conn.execute(
            select(
                Message.direction,
                Message.author,
                Message.text,
                Message.at,
                Message.telegram_message_id,
                Message.meta,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.bot_id == bot_id, Conversation.chat_id == chat_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
    ).all()
    return [MessageView(*r) for r in reversed(rows)]


async def _bot_id(conn: AsyncConnection, name: str) -> int:
    bot_id = (await conn.execute(select(Bot.id).where(Bot.name == name))).scalar()
    if bot_id is None:
        raise NotFoundError(f"no bot named '{name}' (see `botdesk bot list`)")
    return int(bot_id)


async def _conversation_bot_id(conn: AsyncConnection, bot: str, chat_id: int) -> int:
    """The bot's id, once its conversation with ``chat_id`` is known to exist."""
    bot_id = await _bot_id(conn, bot)
    exists = (
        await conn.execute(
            select(Conversation.id).where(
                Conversation.bot_id == bot_id, Conversation.chat_id == chat_id
            )
        )
    ).first()
    if not exists:
        raise NotFoundError(f"no conversation with chat {chat_id} on bot '{bot}'")
    return bot_id


async def list_conversations(
    db: Database, *, bot: str | None = None, needs_human: bool = False, limit: int = 100
) -> list[ConversationView]:
    async with db.read() as conn:
        count = (
            select(func.count())
            .where(Message.conversation_id == Conversation.id)
            .correlate(Conversation)
            .scalar_subquery()
        )
        last_text = (
            select(Message.text)
            .where(Message.conversation_id == Conversation.id)
            .order_by(Message.id.desc())
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        q = (
            select(
                Bot.name,
                Conversation.chat_id,
                Subscriber.first_name,
                Conversation.needs_human,
                Conversation.handoff_reason,
                count,
                Conversation.last_message_at,
                last_text,
            )
            .join(Bot, Bot.id == Conversation.bot_id)
            .outerjoin(
                Subscriber,
                (Subscriber.bot_id == Conversation.bot_id)
                & (Subscriber.chat_id == Conversation.chat_id),
            )
            .order_by(Conversation.last_message_at.desc())
            .limit(limit)
        )
        if bot is not None:
            q = q.where(Conversation.bot_id == await _bot_id(conn, bot))
        if needs_human:
            q = q.where(Conversation.needs_human.is_(True))
        rows = (await conn.execute(q)).all()
    return [ConversationView(*r) for r in rows]


async def show(db: Database, *, bot: str, chat_id: int, limit: int = 50) -> list[MessageView]:
    async with db.read() as conn:
        bot_id = await _conversation_bot_id(conn, bot, chat_id)
        return await history(conn, bot_id=bot_id, chat_id=chat_id, limit=limit)


async def take_over(db: Database, *, bot: str, chat_id: int) -> None:
    """An operator takes the conversation: the assistant stays silent until released."""
    async with db.write() as conn:
        bot_id = await _bot_id(conn, bot)
        res = await conn.execute(
            update(Conversation)
            .where(Conversation.bot_id == bot_id, Conversation.chat_id == chat_id)
            .values(needs_human=True, handoff_reason="operator took over")
        )
        if not res.rowcount:
            raise NotFoundError(f"no conversation with chat {chat_id} on bot '{bot}'")


async def release(db: Database, *, bot: str, chat_id: int) -> None:
    """Hand the conversation back to the assistant."""
    from botdesk.store.models import utcnow

    async with db.write() as conn:
        bot_id = await _bot_id(conn, bot)
        res = await conn.execute(
            update(Conversation)
            .where(Conversation.bot_id == bot_id, Conversation.chat_id == chat_id)
            .values(needs_human=False, handoff_reason=None, last_message_at=utcnow())
        )
        if not res.rowcount:
            raise NotFoundError(f"no conversation with chat {chat_id} on bot '{bot}'")


# -- operator replies (outbox) ---------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    id: int
    bot_id: int
    chat_id: int
    text: str
    author: str
    meta: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    is_group: bool = False


@dataclass(frozen=True)
class QueuedReply:
    """A reply of the bot's own, written ahead with the update it answers."""

    chat_id: int
    text: str
    author: str = "bot"
    meta: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    is_group: bool = False
    # ``asking``: a question for the assistant, its answer not computed yet (``answer_ask``).
    state: str = "pending"


async def queue_replies(
    conn: AsyncConnection, *, bot_id: int, rows: list[QueuedReply], now: datetime
) -> list[int]:
    """Write replies ahead in the caller's transaction; their outbox ids, in order."""
    from botdesk.store.models import Outbox

    if not rows:
        return []
    ids = (
        await conn.execute(
            insert(Outbox).returning(Outbox.id, sort_by_parameter_order=True),
            [
                {
                    "bot_id": bot_id,
                    "chat_id": r.chat_id,
                    "text": r.text,
                    "author": r.author,
                    "state": r.state,
                    "created_at": now,
                    "meta": r.meta,
                    "payload": r.payload,
                    "is_group": r.is_group,
                }
                for r in rows
            ],
        )
    ).scalars()
    return [int(i) for i in ids]


async def enqueue_reply(db: Database, *, bot: str, chat_id: int, text: str) -> int:
    """Queue an operator's reply; the process that owns the bot sends it (same limiter).

    Replying takes the conversation over: the assistant stays silent until released.
    """
    from botdesk.errors import ValidationError
    from botdesk.store.models import utcnow

    if not text.strip():
        raise ValidationError("the reply text is empty")
    if len(text) > 4096:
        raise ValidationError(f"the reply is {len(text)} characters; Telegram allows 4096")
    now = utcnow()
    async with db.write() as conn:
        # Only people who wrote to the bot (and so started it) can be answered.
        bot_id = await _conversation_bot_id(conn, bot, chat_id)
        await set_needs_human(conn, bot_id=bot_id, chat_id=chat_id, reason="operator", now=now)
        (item,) = await queue_replies(
            conn,
            bot_id=bot_id,
            rows=[QueuedReply(chat_id=chat_id, text=text, author="operator")],
            now=now,
        )
        return item


async def pending_replies(
    db: Database,
    *,
    bot_id: int,
    limit: int = 50,
    after_id: int = 0,
) -> list[OutboxItem]:
    """Replies not sent yet, oldest first, from ids above ``after_id`` (paging)."""
    from botdesk.store.models import Outbox

    q = select(
        Outbox.id,
        Outbox.bot_id,
        Outbox.chat_id,
        Outbox.text,
        Outbox.author,
        Outbox.meta,
        Outbox.payload,
        Outbox.is_group,
    ).where(Outbox.bot_id == bot_id, Outbox.state == "pending", Outbox.id > after_id)
    async with db.read() as conn:
        rows = (await conn.execute(q.order_by(Outbox.id).limit(limit))).all()
    return [
        OutboxItem(
            id=r[0],
            bot_id=r[1],
            chat_id=r[2],
            text=r[3],
            author=r[4],
            meta=r[5],
            payload=r[6],
            is_group=bool(r[7]),
        )
        for r in rows
    ]


async def _move_reply(db: Database, item_id: int, *, old: str, new: str) -> bool:
    from botdesk.store.models import Outbox

    async with db.write() as conn:
        res = await conn.execute(
            update(Outbox).where(Outbox.id == item_id, Outbox.state == old).values(state=new)
        )
    return bool(res.rowcount)


async def claim_reply(db: Database, item_id: int) -> bool:
    """``pending -> sending``, committed before the request leaves; False if it was not
    pending (another sender has it, or it was settled)."""
    return await _move_reply(db, item_id, old="pending", new="sending")


async def unclaim_reply(db: Database, item_id: int) -> None:
    """Back to ``pending``: Telegram refused it (429) or it cannot have left (connect
    failed, server error), so it was not delivered."""
    await _move_reply(db, item_id, old="sending", new="pending")


async def settle_reply(
    db: Database,
    *,
    bot_id: int,
    chat_id: int,
    author: str,
    text: str,
    meta: dict[str, Any] | None,
    state: str,
    now: datetime,
    item_id: int | None = None,
    message_id: int | None = None,
    error: str | None = None,
) -> None:
    """Record a reply's end in its conversation and, if it was written ahead, its outbox
    row, in one transaction. ``state``: sent | failed | uncertain; a failed or uncertain
    reply is kept in the conversation with its reason (``MessageView.marker``)."""
    from botdesk.store.models import Outbox

    meta = dict(meta or {})
    if state == "failed":
        meta[NOT_DELIVERED] = error or "not delivered"
    elif state == "uncertain":
        meta[UNCERTAIN] = error or "the request's answer was lost"
    async with db.write() as conn:
        if item_id is not None:
            res = await conn.execute(
                update(Outbox)
                .where(Outbox.id == item_id, Outbox.state == "sending")
                .values(state=state, message_id=message_id, error=error, sent_at=now)
            )
            if not res.rowcount:  # settled by someone else (recovered as uncertain)
                return
        await record(
            conn,
            bot_id=bot_id,
            chat_id=chat_id,
            direction="out",
            author=author,
            text=text,
            telegram_message_id=message_id,
            meta=meta or None,
            now=now,
        )


async def recover_replies(
    db: Database, *, bot_id: int, exclude: set[int] | frozenset[int], now: datetime
) -> int:
    """Rows a stopped owner left ``sending`` become ``uncertain`` (the request may have
    left), recorded in their conversations; never resent automatically."""
    from botdesk.store.models import Outbox

    reason = "the process stopped while sending it"
    async with db.read() as conn:
        q = select(Outbox.id, Outbox.chat_id, Outbox.author, Outbox.text, Outbox.meta).where(
            Outbox.bot_id == bot_id, Outbox.state == "sending"
        )
        rows = [r for r in (await conn.execute(q.order_by(Outbox.id))).all() if r[0] not in exclude]
    for item_id, chat_id, author, text, meta in rows:
        await settle_reply(
            db,
            bot_id=bot_id,
            chat_id=chat_id,
            author=author,
            text=text,
            meta=meta,
            state="uncertain",
            error=reason,
            item_id=item_id,
            now=now,
        )
    return len(rows)


# -- the assistant's answers, written ahead as questions ---------------------------------
#
# A question the assistant will answer is an outbox row ``asking`` (the question's text, and
# in ``payload["ask"]`` what the port is given), committed with the update. Its answer turns
# it ``pending`` in one transaction (``answer_ask``), and it is sent like every reply. A row
# still ``asking`` after its process stopped has no answer anywhere (an answer is only sent
# once it is ``pending``): the next owner of the bot asks again (``open_asks``), or, when the
# question is too old to answer now, gives it to a human (``give_up_ask``).


@dataclass(frozen=True)
class OpenAsk:
    id: int
    chat_id: int
    text: str
    ask: dict[str, Any]
    created_at: datetime
    needs_human: bool


async def answer_ask(
    db: Database,
    item_id: int,
    *,
    bot_id: int,
    chat_id: int,
    text: str,
    author: str,
    meta: dict[str, Any] | None,
    handoff_reason: str | None,
    now: datetime,
) -> bool:
    """The assistant's answer to a written-ahead question: ``asking -> pending`` with its
    text (and the hand-off to a human, if it asks for one) in one transaction. False if the
    row was not ``asking`` (answered by another owner of the bot, or given up)."""
    from botdesk.store.models import Outbox

    async with db.write() as conn:
        res = await conn.execute(
            update(Outbox)
            .where(Outbox.id == item_id, Outbox.state == "asking")
            .values(state="pending", text=text, author=author, meta=meta, payload=None)
        )
        if not res.rowcount:
            return False
        if handoff_reason is not None:
            await set_needs_human(
                conn, bot_id=bot_id, chat_id=chat_id, reason=handoff_reason, now=now
            )
    return True


async def drop_ask(db: Database, item_id: int) -> None:
    """A question the assistant chose not to answer (or a human has the conversation)."""
    from botdesk.store.models import Outbox

    async with db.write() as conn:
        await conn.execute(delete(Outbox).where(Outbox.id == item_id, Outbox.state == "asking"))


async def give_up_ask(
    db: Database, item_id: int, *, bot_id: int, chat_id: int, reason: str, now: datetime
) -> bool:
    """No answer will come (the assistant failed, or the question is too old): the row is
    ``failed`` with ``reason`` and the conversation goes to a human, so the question shows
    in `inbox list --needs-human` instead of being lost."""
    from botdesk.store.models import Outbox

    async with db.write() as conn:
        res = await conn.execute(
            update(Outbox)
            .where(Outbox.id == item_id, Outbox.state == "asking")
            .values(state="failed", error=reason, sent_at=now)
        )
        if not res.rowcount:
            return False
        await set_needs_human(conn, bot_id=bot_id, chat_id=chat_id, reason=reason, now=now)
    return True


async def open_asks(
    db: Database, *, bot_id: int, exclude: set[int] | frozenset[int], limit: int = 500
) -> list[OpenAsk]:
    """Questions left ``asking`` (oldest first) that no effect of this process holds."""
    from botdesk.store.models import Outbox

    q = (
        select(
            Outbox.id,
            Outbox.chat_id,
            Outbox.text,
            Outbox.payload,
            Outbox.created_at,
            Conversation.needs_human,
        )
        .join(
            Conversation,
            (Conversation.bot_id == Outbox.bot_id) & (Conversation.chat_id == Outbox.chat_id),
            isouter=True,
        )
        .where(Outbox.bot_id == bot_id, Outbox.state == "asking")
        .order_by(Outbox.id)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(q)).all()
    return [
        OpenAsk(
            id=r[0],
            chat_id=r[1],
            text=r[2],
            ask=dict((r[3] or {}).get("ask") or {}),
            created_at=r[4],
            needs_human=bool(r[5]),
        )
        for r in rows
        if r[0] not in exclude
    ]


async def reply_state(db: Database, item_id: int) -> tuple[str, str | None]:
    from botdesk.store.models import Outbox

    async with db.read() as conn:
        row = (
            await conn.execute(select(Outbox.state, Outbox.error).where(Outbox.id == item_id))
        ).one()
    return row[0], row[1]
