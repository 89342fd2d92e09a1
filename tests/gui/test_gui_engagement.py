"""Clicks and A/B tests in the campaign detail, against the sandbox: a callback button pressed
by a sandbox user is one click in the report; an A/B test shows its variants, "pending" during
its window, the recorded decision after it, and "Pick variant…" sends the chosen one to the
holdout after a confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.ab_campaigns import AbTests
from botdesk.campaigns import CampaignSpec
from botdesk.gui.views.campaigns import CampaignsView


def test_a_pressed_callback_button_is_one_click_in_the_report(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=3) as (window, sb, people):
            services = window.ctx.services
            info = await services.create_campaign(
                CampaignSpec(
                    bot=BOT,
                    text="Spring sale",
                    name="clicks",
                    buttons=[("Show me", "cb:interested"), ("Shop", "https://example.com")],
                ),
                start=True,
            )
            view = window.open_screen(CampaignsView)
            view.open_campaign(info.id)
            d = view.detail
            await until(lambda: d.status.get("state") == "completed", within=30, what="sent")
            await until(lambda: d.clicks.model.rowCount() == 2, within=15, what="buttons")
            row = d.clicks.model.row(0)
            assert (row["label"], row["unique"], row["clicks"]) == ("Show me", 0, 0)

            chat = people[0].id
            (m,) = [m for m in sb.messages(bot=USERNAME, chat_id=chat) if "Spring" in m["text"]]
            data = m["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            await sb.user_press(chat, USERNAME, m["message_id"], data)

            await until(
                lambda: d.clicks.model.row(0)["clicks"] == 1, within=30, what="the click shown"
            )
            row = d.clicks.model.row(0)
            assert row["unique"] == 1 and row["ctr"] == round(1 / 3, 4)
            assert row["median_first_click_s"] is not None
            model = d.clicks.model
            shown = [model.data(model.index(0, c)) for c in range(model.columnCount())]
            assert shown[:5] == ["Show me", "callback", "1", "1", "33.3%"]
            # The plain URL button: "not tracked", never a guessed figure.
            assert model.data(model.index(1, 3)) == "not tracked"
            assert "1 unique clicker(s), 1 click(s)" in d.clicks.total.text()
            assert not d.tabs.isTabVisible(d.tabs.indexOf(d.ab))  # not an A/B test

    drive(scenario())


def test_an_ab_test_shows_its_variants_pending_then_decided_and_a_pick(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=6) as (window, sb, _people):
            services = window.ctx.services
            rec = await services.bot(BOT)
            parent = await AbTests(services.app.db).create(
                CampaignSpec(bot=BOT, text="-", name="ab", buttons=[("Yes", "cb:yes")]),
                ["Variant one text", "Variant two text"],
                rec,
                test_share=0.5,
                metric="clicks",
                decide_after=timedelta(seconds=6),
                now=datetime.now(UTC),
                seed=3,
            )
            await services.campaign_action(parent, "start")
            view = window.open_screen(CampaignsView)
            view.open_campaign(parent)
            d, ab = view.detail, view.detail.ab
            await until(lambda: d.tabs.isTabVisible(d.tabs.indexOf(ab)), what="A/B tab")
            assert ab.model.rowCount() == 2
            assert [ab.model.data(ab.model.index(i, 0)) for i in range(2)] == ["A", "B"]
            assert "A/B test on clicks" in ab.settings.text()
            assert ab.decision.text().startswith("Pending: decided after the window ends")
            assert not ab.decide_btn.isEnabled()

            # Deciding inside the window is the service's refusal, shown inline.
            ab.decide()
            await until(ab.error.isVisible, what="refusal")
            assert "peeking" in ab.error.text()

            # The console's runtime decides at the window's end, as `serve` does: nobody
            # clicked, so there is no significant difference and nothing is sent.
            await until(
                lambda: "no significant difference" in ab.decision.text(),
                within=30,
                what="the decision",
            )
            assert ab.decision.text().startswith("Decided: no significant difference. A − B")
            assert "CI" in ab.decision.text() and "p = " in ab.decision.text()
            assert ab.pick_btn.isEnabled() and not ab.decide_btn.isEnabled()
            delivered = [int(ab.model.data(ab.model.index(i, 2))) for i in range(2)]
            assert sum(delivered) == 3  # half of 6, dealt to the two variants

            def two_copies() -> int:
                got = sb.messages(bot=USERNAME)
                return sum("Variant two text" in (m.get("text") or "") for m in got)

            before = two_copies()
            asked: list[str] = []

            def confirm(_w, title: str, message: str) -> bool:
                asked.append(message)
                return True

            window.ctx.confirm = confirm
            window.ctx.ask_item = lambda _w, _t, _l, items: items[1]
            ab.pick()
            await until(lambda: "Variant B was sent" in ab.decision.text(), within=30)
            assert asked and "Variant B will be sent to the rest" in asked[-1]
            await until(lambda: two_copies() == before + 3, within=30, what="holdout got B")

    drive(scenario())


def test_compose_an_ab_test(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=4) as (window, sb, _people):
            view = window.open_screen(CampaignsView)
            c = view.composer
            await until(lambda: c.bot.currentText() == BOT and c.people, what="bots and people")
            c.name.setText("ab from the composer")
            c.text.setPlainText("Hello from A")
            c.buttons.setPlainText("Yes please=cb:tag=keen")
            c.ab_on.setChecked(True)
            assert c.ab_box.isVisible()
            c.ab_metric.setCurrentText("clicks")
            c.test_share.setValue(100)
            c.decide_after.setText("1h")

            # One variant only: the service's refusal, inline, nothing created.
            c.send_btn.click()
            await until(c.error.isVisible, what="one-variant error")
            assert "2-4 variants" in c.error.text()
            assert await window.ctx.services.campaign_list() == []

            c.variants[0].setPlainText("Hello from B")
            c.decide_after.setText("soon")
            c.send_btn.click()
            await until(lambda: "duration" in c.error.text(), what="bad window")

            c.decide_after.setText("1h")
            c.send_btn.click()
            await until(lambda: view.stack.currentWidget() is view.detail, what="detail")
            d = view.detail
            await until(lambda: d.tabs.isTabVisible(d.tabs.indexOf(d.ab)), what="A/B tab")
            assert d.ab.model.rowCount() == 2
            assert "A/B test on clicks" in d.ab.settings.text()
            assert "test share 100%" in d.ab.settings.text()

            def got(text: str) -> int:
                return sum(text in (m.get("text") or "") for m in sb.messages(bot=USERNAME))

            await until(lambda: got("Hello from A") == 2 and got("Hello from B") == 2, within=30)

    drive(scenario())
