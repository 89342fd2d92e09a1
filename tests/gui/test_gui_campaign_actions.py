"""Edit… and Recall… on a finished campaign in the console, against the sandbox: the text
asked for starts from what the messages say, the confirmation says what will happen, and the
console's runtime performs the action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.campaigns import CampaignSpec
from botdesk.gui.views.campaigns import CampaignsView


def test_edit_and_recall_a_finished_campaign(drive: Any, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=3) as (window, sb, people):
            services = window.ctx.services
            asked: list[str] = []
            texts: list[str] = []

            def confirm(_w: Any, title: str, message: str) -> bool:
                asked.append(f"{title}: {message}")
                return True

            def ask_text(_w: Any, _title: str, _label: str, initial: str) -> str | None:
                texts.append(initial)
                return "Boots now cost 90, {first_name}"

            window.ctx.confirm = confirm
            window.ctx.ask_text = ask_text
            info = await services.create_campaign(
                CampaignSpec(bot=BOT, text="Boots cost 100, {first_name}"), start=True
            )
            view = window.open_screen(CampaignsView)
            view.open_campaign(info.id)
            d = view.detail
            await until(lambda: d.status.get("state") == "completed", within=30, what="sent")
            await until(lambda: d.edit_btn.isEnabled() and d.recall_btn.isEnabled())

            d.edit_btn.click()
            await until(lambda: len(asked) == 1, what="edit confirmation")
            assert texts == ["Boots cost 100, {first_name}"]
            assert "replace the text of 3 delivered messages" in asked[0]

            def edited() -> bool:
                ms = [m for m in sb.messages(bot=USERNAME) if m.get("edited")]
                return len(ms) == 3

            await until(edited, within=30, what="edits in the sandbox")
            names = {u.id: u.first_name for u in people}
            for m in sb.messages(bot=USERNAME):
                if m.get("edited"):
                    assert m["text"] == f"Boots now cost 90, {names[m['chat_id']]}"
                    assert m["edit_calls"] == 1
            await until(lambda: "edit 1: completed" in d.actions_label.text(), within=15)
            assert "edited 3" in d.actions_label.text()

            d.recall_btn.click()
            await until(lambda: len(asked) == 2, what="recall confirmation")
            assert "delete 3 delivered messages" in asked[1] and "48 hours" in asked[1]
            await until(lambda: "recall 2: completed" in d.actions_label.text(), within=30)
            assert "recalled 3" in d.actions_label.text()
            recalled = [m for m in sb.messages(bot=USERNAME) if m.get("deleted")]
            assert len(recalled) == 3 and all(m["delete_calls"] == 1 for m in recalled)

            # Every message recalled: nothing is left to edit, and the error is shown inline.
            window.ctx.confirm = lambda *_a: False
            d.edit_btn.click()
            await until(lambda: d.error.isVisible(), what="nothing left to edit")
            assert "no delivered message" in d.error.text()

    drive(scenario())
