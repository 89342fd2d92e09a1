"""telegram.actions against the sandbox: edits and deletions, and each of Telegram's refusals
read as its ``Refusal``, through the real aiogram client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botdesk.sandbox.methods import DELETE_WINDOW_S
from botdesk.sandbox.server import Sandbox
from botdesk.sandbox.testing import running_sandbox
from botdesk.telegram import actions
from botdesk.telegram.actions import EditRequest, Refusal
from botdesk.telegram.gateway import Outcome, OutgoingMessage, bot_session, send

TOKEN = "434343:" + "A" * 35
BOT = "act_bot"


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with running_sandbox(latency=(0.0, 0.0)) as sandbox:
        sandbox.add_bot(BOT, TOKEN)
        yield sandbox


async def test_edit_delete_and_refusals(sb: Sandbox, tmp_path: Path) -> None:
    (user,) = sb.add_users(1, start_bots=[BOT])
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    async with bot_session(TOKEN, api_base=sb.base_url) as bot:
        text = await send(bot, OutgoingMessage(user.id, "old", None))
        media = await send(bot, OutgoingMessage(user.id, "cap", None, photo=photo))
        assert text.message_id and media.message_id
        req = EditRequest(
            user.id, text.message_id, "<b>new</b>", "HTML", buttons=(("a", "https://a.b"),)
        )
        done = await actions.edit(bot, req)
        assert done.result.outcome is Outcome.SENT and done.refusal is None
        same = await actions.edit(bot, req)
        assert same.refusal is Refusal.NOT_MODIFIED
        wrong = await actions.edit(bot, EditRequest(user.id, media.message_id, "x", None))
        assert wrong.refusal is Refusal.WRONG_KIND
        caption = await actions.edit(
            bot, EditRequest(user.id, media.message_id, "new cap", None, caption=True)
        )
        assert caption.result.outcome is Outcome.SENT
        missing = await actions.edit(bot, EditRequest(user.id, 999, "x", None))
        assert missing.refusal is Refusal.MESSAGE_GONE

        assert (await actions.delete(bot, user.id, text.message_id)).result.outcome is Outcome.SENT
        gone = await actions.delete(bot, user.id, text.message_id)
        assert gone.refusal is Refusal.MESSAGE_GONE
        sb.advance_clock(DELETE_WINDOW_S)
        old = await actions.delete(bot, user.id, media.message_id)
        assert old.refusal is Refusal.TOO_OLD and "48" not in old.result.description

        await sb.user_block(user.id, BOT)
        blocked = await actions.edit(
            bot, EditRequest(user.id, media.message_id, "z", None, caption=True)
        )
        assert blocked.result.outcome is Outcome.BLOCKED and blocked.refusal is None
    rec = {m["message_id"]: m for m in sb.messages(BOT, user.id)}
    assert rec[text.message_id]["text"] == "new" and rec[text.message_id]["deleted"]
    assert rec[media.message_id]["caption"] == "new cap"
