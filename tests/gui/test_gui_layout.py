"""Layouts at 1280x800 (offscreen): in the dashboard's tables and the campaign list, every
column is at least as wide as its header text needs and all of them fit the table's width;
the rate chart shows "—" until a series has two samples."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTableView
from tests.gui.conftest import BOT, console_on, until

from botdesk.campaigns import CampaignSpec
from botdesk.gui.views.base import header_need
from botdesk.gui.views.campaigns import CampaignsView
from botdesk.gui.views.dashboard import DashboardView
from botdesk.gui.widgets.charts import RateChart

WIDTH, HEIGHT = 1280, 800


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
            QApplication.processEvents()
            assert window.width() == WIDTH
            tables = [view.findChild(QTableView, n) for n in ("bots", "campaigns", "waiting")]
            assert all(tables) and tables[0].model().rowCount() == 1
            assert [c for t in tables for c in cut_columns(t)] == []

            campaigns = window.open_screen(CampaignsView)
            await until(lambda: campaigns.list.rowCount() == 2, what="campaign list")
            QApplication.processEvents()
            assert cut_columns(campaigns.table) == []

    drive(scenario())


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
