"""The campaigns screen against the sandbox: compose, validation shown inline (a bad segment,
broken HTML), send, pause, resume, finish, the report and its CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.gui.views.campaigns import CampaignsView

SLOW = """
[assistant]
embeddings = false
[bots.shop]
rate = 4.0
"""


def test_compose_validate_send_pause_resume_report(drive, home: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, toml=SLOW, users=16) as (window, sb, people):
            view = window.open_screen(CampaignsView)
            c = view.composer
            await until(lambda: c.bot.currentText() == BOT and c.people, what="bots and people")

            # A bad segment: the parser's message, inline, before anything is sent.
            c.text.setPlainText("Hi {first_name}!")
            c.segment.setText("tag:vip and (")
            n = view.validated
            await until(lambda: view.validated > n, what="validation")
            assert c.error.isVisible()
            assert "segment" in c.error.text()

            # Broken HTML: Telegram's own wording, with where it broke.
            c.segment.setText("")
            c.parse_mode.setCurrentText("html")
            c.text.setPlainText("Hi <b>{first_name}</i>!")
            n = view.validated
            await until(lambda: view.validated > n and c.error.isVisible(), what="html error")
            assert "can't parse entities" in c.error.text()
            assert not [m for m in sb.messages(bot=USERNAME) if "Hi" in (m.get("text") or "")]

            # Valid: the audience count, and the preview filled for the chosen subscriber.
            c.text.setPlainText("Hi <b>{first_name}</b>! Sale <i>today</i>.")
            c.buttons.setPlainText("Shop=https://example.com/shop")
            n = view.validated
            await until(lambda: view.validated > n and not c.error.isVisible(), what="valid")
            assert c.audience.text() == "16 recipients"
            first = c.people[c.preview_for.currentIndex()].first_name
            html = c.preview.toHtml()
            assert first in html and "Shop" in html
            assert "font-weight" in html or "<b>" in html  # bold rendered, not the tag as text

            c.send_btn.click()
            await until(lambda: view.stack.currentWidget() is view.detail, what="detail")
            d = view.detail
            await until(lambda: d.status.get("state") == "running", what="running")
            d.pause_btn.click()
            await until(lambda: d.status.get("state") == "paused", what="paused")
            paused_at = len(sb.messages(bot=USERNAME))
            d.resume_btn.click()
            await until(lambda: d.status.get("state") == "running", what="resumed")
            await until(lambda: d.status.get("state") == "completed", within=30, what="done")
            assert len(sb.messages(bot=USERNAME)) >= paused_at
            await until(lambda: d.report is not None and d.recipients.rowCount() == 16)
            assert d.report["counts"]["sent"] == 16
            assert d.progress.value() == 16
            assert "sent 16" in d.numbers.text() and "ETA" not in d.numbers.text()
            got = [m for m in sb.messages(bot=USERNAME) if "Sale" in (m.get("text") or "")]
            assert sorted(m["chat_id"] for m in got) == sorted(u.id for u in people)

            out = tmp_path / "report.csv"
            d.export_to(out)
            await until(out.exists)
            await window.ctx.bridge.drain()
            rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
            assert len(rows) == 16 and {r["state"] for r in rows} == {"sent"}

    drive(scenario())


def test_paid_broadcast_asks_before_sending_and_resend_uncertain_warns(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=3) as (window, sb, _people):
            asked: list[str] = []

            def refuse(_w, title, message) -> bool:
                asked.append(f"{title}: {message}")
                return False

            window.ctx.confirm = refuse
            view = window.open_screen(CampaignsView)
            c = view.composer
            await until(lambda: c.bot.currentText() == BOT, what="bots")
            c.text.setPlainText("Paid hello")
            c.paid.setChecked(True)
            n = view.validated
            await until(lambda: view.validated > n and not c.error.isVisible())
            assert "Stars" in c.stars.text()
            c.send_btn.click()
            await until(lambda: asked, what="confirmation")
            assert "Stars" in asked[0] and "3 subscribers" in asked[0]
            await window.ctx.bridge.drain()
            assert await window.ctx.services.campaign_list() == []  # refused: nothing created
            assert not [m for m in sb.messages(bot=USERNAME) if m.get("text") == "Paid hello"]

            # The resend warning says what it risks, and refusing changes nothing.
            view.detail.campaign_id = 1
            view.detail.status = {"uncertain": 2}
            view.detail.resend_uncertain()
            assert "duplicate" in asked[-1]

    drive(scenario())
