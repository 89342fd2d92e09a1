"""Layouts at 1280x800 (offscreen): in the dashboard's tables and the campaign list, every
column is at least as wide as its header text needs and all of them fit the table's width;
the campaigns screen with a finished and a running campaign open fits 1280 px without growing
the window; the outcome chart's state labels do not overlap; the rate chart shows "—" until a
series has two samples."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTableView
from tests.gui.conftest import BOT, USERNAME, console_on, until

from botdesk.campaigns import CampaignSpec
from botdesk.gui.views.base import header_need
from botdesk.gui.views.campaigns import CampaignsView
from botdesk.gui.views.dashboard import DashboardView
from botdesk.gui.views.inbox import InboxView
from botdesk.gui.widgets.charts import OutcomeChart, RateChart

WIDTH, HEIGHT = 1280, 800
# Slow enough that the second campaign is still running while the test looks at it.
SLOW = """
[assistant]
embeddings = false
[bots.shop]
rate = 1.0
"""


async def settle(window=None) -> None:
    """Let the posted layout events run by yielding to the qasync loop (which is Qt's).
    QApplication.processEvents() inside a coroutine re-enters that loop: other tasks' steps run
    inside this one ("Cannot enter into task") and are lost, which hung this file in CI."""
    for _ in range(3):
        await asyncio.sleep(0.02)
        if window is not None:
            window.centralWidget().layout().activate()


async def fits(window) -> list[str]:
    """What makes the window wider or taller than 1280x800, or wider than it is."""
    await settle(window)
    out = []
    hint = window.minimumSizeHint()
    if hint.width() > WIDTH or hint.height() > HEIGHT:
        out.append(f"minimum size {hint.width()}x{hint.height()}")
    if (window.width(), window.height()) != (WIDTH, HEIGHT):
        out.append(f"window grew to {window.width()}x{window.height()}")
    return out


def cut_columns(table: QTableView) -> list[str]:
    """Columns narrower than their header text, or pushed out past the table's right edge."""
    header = table.horizontalHeader()
    model = table.model()
    out = []
    for i in range(model.columnCount()):
        need = header_need(table, i)
        if header.sectionSize(i) < need:
            out.append(
                f"{table.objectName()}.{model.headerData(i, Qt.Orientation.Horizontal)}: "
                f"{header.sectionSize(i)} < {need}"
            )
    used = header.length()
    if used > table.viewport().width():
        out.append(
            f"{table.objectName()}: columns {used} px in a {table.viewport().width()} px table"
        )
    return out


def test_tables_hold_at_1280_wide(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=3) as (window, _sb, _people):
            services = window.ctx.services
            for name in ("welcome offer", "spring collection announcement"):
                await services.create_campaign(
                    CampaignSpec(bot=BOT, text="Hello", name=name), start=False
                )
            window.resize(WIDTH, HEIGHT)
            view = window.open_screen(DashboardView)
            await until(lambda: view.loaded and view.recent.rowCount() == 2, what="dashboard")
            await settle()
            assert window.width() == WIDTH
            tables = [view.findChild(QTableView, n) for n in ("bots", "campaigns", "waiting")]
            assert all(tables) and tables[0].model().rowCount() == 1
            assert [c for t in tables for c in cut_columns(t)] == []

            campaigns = window.open_screen(CampaignsView)
            await until(lambda: campaigns.list.rowCount() == 2, what="campaign list")
            await settle()
            assert cut_columns(campaigns.table) == []

    drive(scenario())


def test_campaigns_screen_fits_1280_with_a_finished_and_a_running_campaign(
    drive, home: Path
) -> None:
    async def scenario() -> None:
        async with console_on(home, toml=SLOW, users=3) as (window, sb, _people):
            services = window.ctx.services
            done = await services.create_campaign(
                CampaignSpec(bot=BOT, text="Hello", name="spring collection announcement"),
                start=True,
            )

            async def finished() -> bool:
                return (await services.campaign_status(done.id))["state"] == "completed"

            await until(finished, within=30, what="first campaign finished")
            # Twelve recipients at 1 msg/s: the second campaign runs for ~12 s, long enough to
            # be seen running on a loaded machine.
            for u in sb.add_users(9):
                await sb.user_start(u.id, USERNAME)

            async def twelve() -> bool:
                return await services.subscriber_count(BOT, None) >= 12

            await until(twelve, within=30, what="12 subscribers")
            running = await services.create_campaign(
                CampaignSpec(bot=BOT, text="Hello again", name="welcome offer for new friends"),
                start=True,
            )
            window.resize(WIDTH, HEIGHT)
            view = window.open_screen(CampaignsView)
            await until(lambda: view.list.rowCount() == 2, what="campaign list")
            assert await fits(window) == []
            view.composer.ab_on.setChecked(True)  # the composer with its A/B variants open
            assert await fits(window) == [], "composer with A/B"
            c = view.composer
            c.media_kind.setCurrentIndex(c.media_kind.findData("album"))  # its file list too
            assert await fits(window) == [], "composer with an album and A/B (it scrolls)"
            assert window.minimumSizeHint().height() <= HEIGHT
            d = view.detail
            for cid, state in ((done.id, "completed"), (running.id, "running")):
                view.open_campaign(cid)
                await until(lambda s=state: d.status.get("state") == s, what=state)
                await window.ctx.bridge.drain()
                assert await fits(window) == [], state
                assert cut_columns(view.table) == []
                # A campaign name fits its row on one line (elided, never wrapped).
                assert not view.table.wordWrap()
                # The outcome chart's state labels are on their own rows, none cut.
                assert d.chart.label_overlaps() == []

    drive(scenario())


def test_outcome_chart_labels_do_not_overlap_when_narrow(qapp) -> None:
    chart = OutcomeChart()
    chart.widget.resize(260, 200)
    chart.show({"sent": 10, "failed": 2, "uncertain": 1})
    chart.widget.show()
    QApplication.processEvents()
    assert chart.label_overlaps() == []
    chart.widget.deleteLater()


def test_rate_chart_is_empty_until_two_samples(qapp) -> None:
    chart = RateChart()
    assert chart.empty
    chart.show({"shop": 3.0}, now=10.0)
    assert chart.empty and not chart._curves  # one sample: no line, no legend entry
    chart.show({"shop": 5.0}, now=11.0)
    assert not chart.empty
    xs, ys = chart._curves["shop"].getData()
    assert list(xs) == [-1.0, 0.0] and list(ys) == [3.0, 5.0]
    chart.show({}, now=12.0)  # the campaign stopped: its series is gone, "—" again
    assert chart.empty and not chart._curves
    chart.widget.deleteLater()


def test_inbox_rows_are_one_elided_line_at_1280(drive, home: Path) -> None:
    """A long message of many lines is one row of one line in the list; the whole text is
    the row's tooltip (and the history beside the list). The long text is the operator's
    reply, so it stays the conversation's last message (the assistant answers a subscriber's)."""
    long = "Hello, I ordered the blue jacket last week and\n" * 12 + "where is it?"

    async def scenario() -> None:
        async with console_on(home, users=2) as (window, sb, people):
            await sb.user_send(people[1].id, USERNAME, "short one")
            services = window.ctx.services
            await services.take_over(BOT, people[0].id)
            await services.reply(BOT, people[0].id, long)
            window.resize(WIDTH, HEIGHT)
            view = window.open_screen(InboxView)
            await until(
                lambda: (
                    view.model.rowCount() == 2 and long in {r.last_text for r in view.model.rows}
                ),
                what="two conversations, one ending with the long reply",
            )
            await settle()
            assert await fits(window) == []
            assert cut_columns(view.table) == []
            line = view.table.fontMetrics().height()
            rows = [view.model.row(i) for i in range(2)]
            i = next(n for n, r in enumerate(rows) if r.chat_id == people[0].id)
            assert all(view.table.rowHeight(n) < 2 * line for n in range(2))
            text = view.model.index(i, view.model.columnCount() - 1)
            shown = view.model.data(text)
            assert "\n" not in shown and shown.startswith("Hello, I ordered")
            tip = view.model.data(text, Qt.ItemDataRole.ToolTipRole)
            assert "where is it?" in tip and tip.count("blue jacket") == 12
            view.table.selectRow(i)
            await until(lambda: "where is it?" in view.history.toPlainText(), what="history")

    drive(scenario())
