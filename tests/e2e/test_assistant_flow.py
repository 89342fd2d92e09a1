"""The assistant through the sandbox: answers from the KB, hands off, the operator replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.support import eventually, register, running

from botdesk import inbox, knowledge_base
from botdesk.app import App
from botdesk.cli.main import main

KB = """## How much does shipping cost?
Standard shipping is 4.95 EUR and free for orders over 60 EUR.

## Can I return an item?
You have 30 days from delivery to return unworn items.

## Which payment methods do you accept?
Visa, Mastercard, PayPal and bank transfer.
"""


def texts(sb: Any, chat_id: int) -> list[str]:
    return [m.get("text") or "" for m in sb.messages(bot="shop_bot", chat_id=chat_id)]


async def test_answer_handoff_operator_reply_release(
    app: App, sandbox: Any, home: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    await register(app, sandbox, "shop", "shop_bot")
    kb = tmp_path / "kb.md"
    kb.write_text(KB)
    await knowledge_base.import_file(app.db, kb, bot="shop", now=datetime.now(UTC))
    user = sandbox.add_users(1)[0]
    async with running(app):
        await sandbox.user_start(user.id, "shop_bot")
        await eventually(lambda: _any(sandbox, user.id, "Welcome"))
        await sandbox.user_send(user.id, "shop_bot", "how much is shipping??")
        await eventually(lambda: _any(sandbox, user.id, "4.95 EUR"))
        await sandbox.user_send(user.id, "shop_bot", "I want to talk to a human")
        await eventually(lambda: _needs_human(app, user.id))
        # The hand-off commits with the answer, which is sent right after it.
        await eventually(lambda: _any(sandbox, user.id, "passing you to a person"))
        n_before = len(texts(sandbox, user.id))
        # The AI stays silent in a conversation a human has.
        await sandbox.user_send(user.id, "shop_bot", "can i pay with paypal")

        async def recorded() -> bool:
            msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
            return any(m.text == "can i pay with paypal" for m in msgs)

        await eventually(recorded)
        # The operator answers from the CLI while serve owns the bot: serve sends it.
        import asyncio

        rc = await asyncio.to_thread(
            main,
            [
                "--home",
                str(home),
                "inbox",
                "reply",
                "--bot",
                "shop",
                "--chat",
                str(user.id),
                "Anna here, yes we take PayPal.",
            ],
        )
        assert rc == 0
        await eventually(lambda: _any(sandbox, user.id, "Anna here"))
        after = texts(sandbox, user.id)[n_before:]
        assert after == ["Anna here, yes we take PayPal."]
        rc = await asyncio.to_thread(
            main, ["--home", str(home), "inbox", "release", "--bot", "shop", "--chat", str(user.id)]
        )
        assert rc == 0
        await sandbox.user_send(user.id, "shop_bot", "can I return an item?")
        await eventually(lambda: _any(sandbox, user.id, "30 days"))
    msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
    answer = next(m for m in msgs if "4.95" in m.text)
    assert answer.author == "assistant" and answer.meta and answer.meta["sources"]
    assert any(m.author == "operator" for m in msgs)


async def _any(sb: Any, chat_id: int, needle: str) -> bool:
    return any(needle in t for t in texts(sb, chat_id))


async def _needs_human(app: App, chat_id: int) -> bool:
    convs = await inbox.list_conversations(app.db, bot="shop", needs_human=True)
    return any(c.chat_id == chat_id for c in convs)
