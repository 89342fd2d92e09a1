"""The inbox against the sandbox: a handoff appears by itself, the operator replies (the
subscriber receives it), takes over and releases; a reply to a user who blocked the bot is
marked "not delivered" in the history."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.gui.views.inbox import InboxView


def test_handoff_reply_release(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=2) as (window, sb, people):
            view = window.open_screen(InboxView)
            view.only_waiting.setChecked(True)
            ann = people[0]
            # The assistant answers (and hands off) only for a bot with a knowledge base.
            with resources.as_file(resources.files("botdesk.demo").joinpath("kb.md")) as kb:
                await window.ctx.services.kb_import(kb, BOT)
            await sb.user_send(ann.id, USERNAME, "can I talk to a real person please")
            # No refresh pressed: the screen polls its service.
            await until(lambda: view.model.rowCount() == 1, what="handoff listed")
            conv = view.model.row(0)
            assert conv.chat_id == ann.id and conv.needs_human
            view.table.selectRow(0)
            await until(lambda: "real person" in view.history.toPlainText(), what="history")

            view.reply_text.setText("Hi, Anna from the team here.")
            view.send_btn.click()
            await until(
                lambda: any(m.get("text") == "Hi, Anna from the team here."
                            for m in sb.messages(bot=USERNAME, chat_id=ann.id)),
                what="reply delivered",
            )  # fmt: skip
            await until(lambda: "Anna from the team" in view.history.toPlainText())
            assert view.reply_text.text() == ""

            # An empty reply is the service's one-line error, inline.
            view.send_reply()
            await until(view.error.isVisible)
            assert "empty" in view.error.text()

            view.release_btn.click()
            await until(lambda: view.model.rowCount() == 0, what="released")
            convs = await window.ctx.services.conversations()
            assert [c.needs_human for c in convs if c.chat_id == ann.id] == [False]

            view.only_waiting.setChecked(False)

            def ann_row() -> object:
                rows = [view.model.row(i) for i in range(view.model.rowCount())]
                return next((c for c in rows if c.chat_id == ann.id), None)

            await until(ann_row, what="all conversations listed")
            view.take_btn.click()  # the open conversation is still Ann's
            await until(lambda: ann_row().needs_human, what="taken over")
            assert ann_row().bot == BOT

            # A reply that can no longer be sent stays in the history, marked.
            await sb.user_block(ann.id, USERNAME)
            view.reply_text.setText("Are you still there?")
            view.send_btn.click()
            await until(
                lambda: "not delivered: " in view.history.toPlainText(), what="marker shown"
            )
            assert "Are you still there?" in view.history.toPlainText()
            assert "blocked" in view.history.toPlainText()

    drive(scenario())
