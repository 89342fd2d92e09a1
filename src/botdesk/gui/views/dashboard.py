"""Dashboard: each bot's state, subscribers over time, recent campaigns, who waits for a human,
and the delivery rate while a campaign runs."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
)

from botdesk.campaigns import STATES
from botdesk.gui.models.rows import ROW_ROLE, RowsModel
from botdesk.gui.views.base import Context, View, row_table
from botdesk.gui.widgets.charts import STATE_COLORS, DailyChart, RateChart

BOT_COLUMNS = (
    ("bot", lambda b: b.name),
    ("username", lambda b: "@" + b.username),
    ("state", lambda b: b.state),
    ("reason", lambda b: b.reason or ""),
    ("worker", lambda b: b.holder or ""),
    ("active", lambda b: b.subscribers.get("active", 0)),
    ("left", lambda b: b.subscribers.get("unsubscribed", 0)),
    ("blocked", lambda b: b.subscribers.get("blocked", 0) + b.subscribers.get("gone", 0)),
)
CAMPAIGN_COLUMNS = (
    ("id", lambda c: c.info.id),
    ("campaign", lambda c: c.info.name),
    ("bot", lambda c: c.info.bot),
    ("state", lambda c: c.info.state),
    ("audience", lambda c: c.info.audience),
    ("outcome", lambda c: " ".join(f"{s}:{c.status.get(s, 0)}" for s in STATES)),
    ("rate/s", lambda c: c.status.get("rate_per_s", 0)),
)
WAITING_COLUMNS = (
    ("bot", lambda v: v.bot),
    ("chat", lambda v: v.chat_id),
    ("name", lambda v: v.name or ""),
    ("why", lambda v: v.handoff_reason or ""),
    ("last message", lambda v: (v.last_text or "")[:80]),
)


class OutcomeBar(QStyledItemDelegate):
    """Paints a campaign's outcome as one stacked bar (sent, failed, ... in their colours)."""

    WIDTH = 120

    def sizeHint(self, option: QStyleOptionViewItem, index: Any) -> QSize:
        # The bar, not the "sent:1 pending:0 ..." text behind it (which would take the row).
        return QSize(self.WIDTH, super().sizeHint(option, index).height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Any) -> None:
        card = index.data(ROW_ROLE)
        status = card.status if card is not None else {}
        total = max(1, int(status.get("audience", 0) or 0))
        r: QRect = option.rect.adjusted(2, 4, -2, -4)  # type: ignore[attr-defined]
        x = r.left()
        painter.save()
        painter.fillRect(r, QColor("#e6e9ee"))
        for s in STATES:
            n = int(status.get(s, 0) or 0)
            if not n:
                continue
            w = round(r.width() * n / total)
            painter.fillRect(QRect(x, r.top(), w, r.height()), QColor(STATE_COLORS[s]))
            x += w
        painter.restore()


class DashboardView(View):
    title = "Dashboard"
    refresh_ms = 1000

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.bots = RowsModel(BOT_COLUMNS, self)
        self.recent = RowsModel(CAMPAIGN_COLUMNS, self)
        self.waiting = RowsModel(WAITING_COLUMNS, self)
        self.daily = DailyChart()
        self.rate = RateChart()
        self.summary = QLabel()
        self.summary.setObjectName("summary")

        grid = QGridLayout(self)
        grid.addWidget(self.summary, 0, 0, 1, 2)
        grid.addWidget(self._box("Bots", self._table(self.bots, "bots", stretch=3)), 1, 0)
        grid.addWidget(self._box("Subscribers", self.daily.widget), 1, 1)
        recent = self._table(self.recent, "campaigns", stretch=1)
        self._bar = OutcomeBar(recent)
        recent.setItemDelegateForColumn(5, self._bar)
        grid.addWidget(self._box("Recent campaigns", recent), 2, 0)
        grid.addWidget(self._box("Live delivery rate", self.rate.widget), 2, 1)
        grid.addWidget(
            self._box("Waiting for a human", self._table(self.waiting, "waiting", stretch=4)),
            3,
            0,
            1,
            2,
        )
        # The tables need the width (eight columns of bots); the charts scale down.
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        grid.setRowStretch(1, 2)
        grid.setRowStretch(2, 2)
        grid.setRowStretch(3, 1)
        self.clock = time.monotonic  # the rate chart's sample times (tests inject one)
        self._loading = False
        self.loaded = 0  # refreshes that completed (tests wait on it)
        self.refresh()

    def _table(self, model: RowsModel, name: str, *, stretch: int) -> QTableView:
        return row_table(model, name, single=False, stretch=stretch)

    @staticmethod
    def _box(title: str, child: Any) -> QGroupBox:
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(child)
        return box

    def refresh(self) -> None:
        if self._loading:  # a slow database: never queue refreshes behind each other
            return
        self._loading = True
        self.call(self.ctx.services.dashboard(), self._show, self._failed)

    def _failed(self, line: str) -> None:
        self._loading = False
        self.summary.setText(line)

    def _show(self, d: Any) -> None:
        self._loading = False
        self.loaded += 1
        self.bots.set_rows(d.bots)
        self.recent.set_rows(d.campaigns)
        self.waiting.set_rows(d.waiting)
        mode = (
            "serving in this window"
            if self.ctx.services.runtime is not None
            else (
                f"managing: {d.workers} `serve` worker(s) live"
                if not self.ctx.services.serving
                else "not serving (no bot yet)"
            )
        )
        running = [c for c in d.campaigns if c.info.state == "running"]
        self.summary.setText(
            f"{len(d.bots)} bot(s) · {sum(b.subscribers.get('active', 0) for b in d.bots)} active "
            f"subscribers · {len(running)} campaign(s) running · {len(d.waiting)} waiting for a "
            f"human · {mode}"
        )
        if d.bots:
            days = d.bots[0].days
            agg = [[0, 0, 0] for _ in days]
            for b in d.bots:
                for i, day in enumerate(b.days):
                    agg[i][0] += day.joins
                    agg[i][1] += day.leaves
                    agg[i][2] += day.blocks
            self.daily.show(
                [f"{x.day:%m-%d}" for x in days],
                [a[0] for a in agg],
                [a[1] for a in agg],
                [a[2] for a in agg],
            )
        # Only bots with a campaign running have a live rate; the others have no series.
        per_bot: dict[str, float] = {}
        for c in running:
            per_bot[c.info.bot] = per_bot.get(c.info.bot, 0.0) + float(
                c.status.get("rate_per_s", 0)
            )
        self.rate.show(per_bot, now=self.clock())
