"""The assistant's answers are written ahead as questions, so none is silently lost.

Three subscribers ask; the process stops while the assistant is still thinking (its effects
cancelled, as a kill leaves them: nothing was answered, each question is an outbox row
``asking``, committed with its update). The next owner of the bot asks again: the fresh
question is answered and sent once; the one whose assistant now fails, and the one too old
to answer now, go to a human (the conversation flagged with the reason), not sent. SQLite and
PostgreSQL, through the runtime's update processor and the sandbox on loopback.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogram import Dispatcher
from sqlalchemy import select, update
from tests.e2e.campaign_support import copies, seed
from tests.e2e.support import app_on, eventually, message_update, register, write_config

from botdesk.bots import BotRegistry
from botdesk.clock import SystemClock
from botdesk.runtime.channel import open_channel
from botdesk.runtime.handlers import build_router
from botdesk.runtime.metrics import Metrics
from botdesk.runtime.ports import Inbound, Reply, ReplyContext
from botdesk.runtime.updates import UpdateProcessor
from botdesk.store.models import Conversation, Outbox


class Thinking:
    """An assistant that never finishes (the process dies while it thinks)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def answers(self, bot: str) -> bool:
        return True

    async def reply(self, msg: Inbound, ctx: ReplyContext) -> Reply | None:
        self.asked.append(msg.chat_id)
        await asyncio.Event().wait()
        return None

    async def aclose(self) -> None:
        return None


class Answering:
    def __init__(self, broken: int) -> None:
        self.broken = broken

    async def reply(self, msg: Inbound, ctx: ReplyContext) -> Reply | None:
        if msg.chat_id == self.broken:
            raise RuntimeError("provider down")
        return Reply(text=f"ANSWER to {msg.text}", author="assistant")

    async def aclose(self) -> None:
        return None


def _processor(app: Any, rec: Any, port: Any) -> UpdateProcessor:
    dp = Dispatcher()
    dp.include_router(build_router())
    channel = open_channel(app, rec, clock=SystemClock(), metrics=Metrics())
    return UpdateProcessor(channel=channel, dispatcher=dp, port=port)


async def test_questions_unanswered_at_a_stop_are_answered_after_it_or_go_to_a_human(
    home: Path, sandbox: Any, backend: tuple[str, str | None]
) -> None:
    write_config(home, "[assistant]\nembeddings = false\n")
    async with app_on(home, *backend) as app:
        await register(app, sandbox, "shop", "shop_bot")
        fresh, broken, old = (u.id for u in await seed(app, sandbox, "shop", "shop_bot", 3))
        sandbox.world.bot("shop_bot").pending.clear()
        rec = await BotRegistry(app.db, app.secrets).get("shop")

        thinking = Thinking()
        first = _processor(app, rec, thinking)
        batch = [
            message_update(c, i, f"question {i}") for i, c in enumerate((fresh, broken, old), 1)
        ]
        assert await first.process(batch, advance_offset=False) == 3
        await eventually(lambda: _true(len(thinking.asked) == 3), within=5, every=0.01)
        await first.drain(grace=0)  # the stop: nothing answered
        await first.channel.aclose()
        assert await _states(app) == {fresh: "asking", broken: "asking", old: "asking"}

        async with app.db.write() as conn:  # the third was asked two hours ago
            await conn.execute(
                update(Outbox)
                .where(Outbox.chat_id == old)
                .values(created_at=datetime.now(UTC) - timedelta(hours=2))
            )
        second = _processor(app, rec, Answering(broken=broken))
        try:
            assert await second.resume_asks() == 2  # the old one goes to a human at once

            async def settled() -> bool:
                return "asking" not in (await _states(app)).values()

            await eventually(settled, within=10)
            await eventually(lambda: _true(len(copies(sandbox, "shop_bot", "ANSWER")) == 1))
        finally:
            await second.drain(grace=2)
            await second.channel.aclose()
        async with app.db.read() as conn:
            flagged = dict(
                (
                    await conn.execute(
                        select(Conversation.chat_id, Conversation.handoff_reason).where(
                            Conversation.needs_human.is_(True)
                        )
                    )
                ).all()
            )
        final = await _states(app)
    assert copies(sandbox, "shop_bot", "ANSWER") == {fresh: 1}
    assert copies(sandbox, "shop_bot", "ANSWER to question 1") == {fresh: 1}
    assert final == {fresh: "sent", broken: "failed", old: "failed"}
    assert set(flagged) == {broken, old}
    assert "the assistant failed: RuntimeError: provider down" in flagged[broken]
    assert flagged[old].startswith("not answered: the process stopped")


async def _true(value: bool) -> bool:
    return value


async def _states(app: Any) -> dict[int, str]:
    async with app.db.read() as conn:
        return dict((await conn.execute(select(Outbox.chat_id, Outbox.state))).all())


async def test_serve_stopped_while_the_assistant_thinks_answers_after_its_restart(
    home: Path, sandbox: Any
) -> None:
    """The same through the runtime `serve` runs: its effects cancelled (as the stop's grace
    running out, or a kill, leaves them), stopped, started again: its next turn of ownership
    asks again."""
    from botdesk.runtime.assembly import build_workers
    from botdesk.runtime.service import Runtime

    write_config(home, "[assistant]\nembeddings = false\n\n[delivery]\nlease_seconds = 2\n")
    async with app_on(home, "sqlite") as app:
        await register(app, sandbox, "shop", "shop_bot")
        (user,) = (u.id for u in await seed(app, sandbox, "shop", "shop_bot", 1))
        sandbox.world.bot("shop_bot").pending.clear()

        def runtime(port: Any) -> Runtime:
            return Runtime(
                app,
                port=port,
                bot_workers=build_workers(app, owner="w1", delivery=False),
                owner="w1",
                poll_timeout=1,
            )

        thinking = Thinking()
        rt = runtime(thinking)
        await rt.start()
        try:
            await sandbox.user_send(user, "shop_bot", "when do you open?")
            await eventually(lambda: _true(thinking.asked == [user]), within=10)
            for task in list(rt.runs["shop"].processor._effects):
                task.cancel()  # without waiting out the stop's 5 s grace for them
        finally:
            await rt.stop()
        assert await _states(app) == {user: "asking"}
        rt = runtime(Answering(broken=0))
        await rt.start()
        try:
            await eventually(lambda: _true(bool(copies(sandbox, "shop_bot", "ANSWER"))), within=10)
            await eventually(lambda: _has_state(app, user, "sent"))
        finally:
            await rt.stop()
    assert copies(sandbox, "shop_bot", "ANSWER to when do you open?") == {user: 1}


async def _has_state(app: Any, chat: int, state: str) -> bool:
    return (await _states(app)).get(chat) == state
