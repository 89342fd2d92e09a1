"""The knowledge-base screen: import a file, ask it (answer, sources, confidence), edit an
entry, and an unreadable file shown as the import's one line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tests.gui.conftest import BOT, console_on, until

from botdesk.gui.views.knowledge import KnowledgeView


def test_import_ask_edit_remove(drive, home: Path, tmp_path: Path) -> None:
    kb = resources.files("botdesk.demo").joinpath("kb.md")

    async def scenario() -> None:
        async with console_on(home) as (window, _sb, _people):
            view = window.open_screen(KnowledgeView)
            await until(lambda: view.scope.currentText() == BOT)
            with resources.as_file(kb) as path:
                view.import_file(path)
                await until(lambda: view.model.rowCount() > 5, what="entries listed")
            n = view.model.rowCount()

            view.ask_box.setText("how long does shipping take to germany??")
            view.ask_btn.click()
            await until(lambda: view.last_reply is not None, within=30, what="answer")
            r = view.last_reply
            assert not r.handoff and r.sources
            assert "sources:" in view.answer_view.text() and "confidence" in view.answer_view.text()

            view.key.setText("gift-cards")
            view.question.setText("Do you sell gift cards?")
            view.answer.setPlainText("Yes: gift cards from 10 to 200 euros, sent by email.")
            view.save_btn.click()
            await until(lambda: view.model.rowCount() == n + 1, what="entry added")
            keys = [e.key for e in await window.ctx.services.kb_entries(BOT)]
            assert "gift-cards" in keys

            window.ctx.confirm = lambda *_a: True
            view.remove_btn.click()
            await until(lambda: view.model.rowCount() == n, what="entry removed")

            bad = tmp_path / "kb.md"
            bad.write_bytes(b"\xff\xfe not utf-8 \x81")
            view.import_file(bad)
            await until(view.error.isVisible)
            assert "UTF-8" in view.error.text()
            assert "Traceback" not in view.error.text()

    drive(scenario())
