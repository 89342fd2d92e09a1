"""A user starts a bot, writes, stops: the ledger, the inbox and the replies line up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tests.e2e.support import eventually, register, running

from botdesk import inbox
from botdesk.app import App
from botdesk.store.models import ConsentEvent, Subscriber


async def _subs(app: App) -> dict[int, tuple[str, str | None]]:
    async with app.db.read() as conn:
        rows = (
            await conn.execute(select(Subscriber.chat_id, Subscriber.status, Subscriber.source))
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def test_start_message_stop(app: App, sandbox: Any) -> None:
    await register(app, sandbox, "shop", "shop_bot")
    user = sandbox.add_users(1, start_bots=[])[0]
    async with running(app):
        await sandbox.user_start(user.id, "shop_bot", payload="spring_sale")

        async def subscribed() -> bool:
            return (await _subs(app)).get(user.id) == ("active", "spring_sale")

        await eventually(subscribed)
        await eventually(lambda: _has_text(sandbox, user.id, "Welcome"))
        await sandbox.user_send(user.id, "shop_bot", "where is my order?")
        await eventually(lambda: _has_text(sandbox, user.id, "Thanks for your message"))
        await sandbox.user_send(user.id, "shop_bot", "/stop")

        async def stopped() -> bool:
            return (await _subs(app)).get(user.id, ("",))[0] == "unsubscribed"

        await eventually(stopped)
        await eventually(lambda: _has_text(sandbox, user.id, "unsubscribed"))
    convs = await inbox.list_conversations(app.db, bot="shop")
    assert len(convs) == 1 and convs[0].chat_id == user.id
    msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
    texts = [(m.direction, m.text) for m in msgs]
    assert ("in", "where is my order?") in texts
    assert sum(1 for d, _t in texts if d == "out") == 3  # welcome, auto-reply, stop confirmation
    async with app.db.read() as conn:
        kinds = (
            (await conn.execute(select(ConsentEvent.kind).order_by(ConsentEvent.id)))
            .scalars()
            .all()
        )
    assert kinds == ["subscribe", "unsubscribe"]


async def _has_text(sb: Any, chat_id: int, needle: str) -> bool:
    return any(
        needle in (m.get("text") or "") for m in sb.messages(bot="shop_bot", chat_id=chat_id)
    )
