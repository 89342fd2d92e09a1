"""Charts drawn by pyqtgraph (axes, ticks and legends are the library's)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QFontMetrics

from botdesk.gui.models.rate import RateSeries

STATE_COLORS = {
    "sent": "#3a9d5d",
    "pending": "#9aa5b1",
    "sending": "#5da3e8",
    "failed": "#d0342c",
    "suppressed": "#e0a030",
    "uncertain": "#8e44ad",
    "cancelled": "#5f6b7a",
}


def _plot(title: str) -> pg.PlotWidget:
    w = pg.PlotWidget(title=title)
    w.setMenuEnabled(False)
    w.setMouseEnabled(x=False, y=False)
    w.hideButtons()
    w.showGrid(y=True, alpha=0.2)
    w.setMinimumHeight(160)
    return w


class DailyChart:
    """Joins, leaves and blocks per day, as grouped bars."""

    def __init__(self) -> None:
        self.widget = _plot("subscribers per day")
        self.widget.addLegend(offset=(5, 5))
        self._bars: list[pg.BarGraphItem] = []

    def show(
        self,
        labels: Sequence[str],
        joins: Sequence[int],
        leaves: Sequence[int],
        blocks: Sequence[int],
    ) -> None:
        for b in self._bars:
            self.widget.removeItem(b)
        self._bars.clear()
        self.widget.plotItem.legend.clear()
        x = list(range(len(labels)))
        for k, (name, ys, color) in enumerate(
            (
                ("joins", joins, "#3a9d5d"),
                ("leaves", leaves, "#e0a030"),
                ("blocks", blocks, "#d0342c"),
            )
        ):
            bar = pg.BarGraphItem(
                x=[i + (k - 1) * 0.27 for i in x], height=list(ys), width=0.25, brush=color
            )
            self.widget.addItem(bar)
            self.widget.plotItem.legend.addItem(bar, name)
            self._bars.append(bar)
        ax = self.widget.getAxis("bottom")
        step = max(1, len(labels) // 7)
        ax.setTicks([[(i, labels[i]) for i in x[::step]]])


class OutcomeChart:
    """A campaign's recipients by state, one horizontal bar per state: the state names sit on
    their own rows of the left axis, so they stay readable however narrow the chart gets
    (side by side under vertical bars they ran into each other below ~500 px)."""

    ROW_PX = 18  # the least height a state's row gets (the tick font is ~15 px high)

    def __init__(self) -> None:
        self.widget = _plot("recipients by state")
        self.widget.showGrid(x=True, y=False, alpha=0.2)
        self.states = list(STATE_COLORS)
        self.widget.invertY(True)  # "sent" on top, in the ledger's order
        self.widget.setYRange(-0.6, len(self.states) - 0.4, padding=0)
        left = self.widget.getAxis("left")
        left.setTicks([list(enumerate(self.states))])
        left.setWidth(self._label_width() + 12)
        # Title, bottom axis and margins take about 70 px; each state needs its row.
        self.widget.setMinimumHeight(70 + self.ROW_PX * len(self.states))
        self._bar: pg.BarGraphItem | None = None
        self._total = 0
        self.counts: dict[str, int] = {}

    def _metrics(self) -> QFontMetrics:
        axis = self.widget.getAxis("left")
        return QFontMetrics(axis.style.get("tickFont") or axis.font())

    def _label_width(self) -> int:
        fm = self._metrics()
        return max(fm.horizontalAdvance(s) for s in self.states)

    def show(self, counts: dict[str, int]) -> None:
        """Counts by state. The bar item is made once and its widths updated in place, and
        the x range is the total (the audience, fixed while a campaign runs), set only when
        it changes: a new item and a new range every second re-laid the plot and regenerated
        the axis, 20-60 ms on the GUI thread each time (bench/_stallprobe.py)."""
        if counts == self.counts:
            return
        self.counts = dict(counts)
        widths = [counts.get(s, 0) for s in self.states]
        if self._bar is None:
            self._bar = pg.BarGraphItem(
                x0=0,
                y=list(range(len(self.states))),
                height=0.7,
                width=widths,
                brushes=[STATE_COLORS[s] for s in self.states],
            )
            self.widget.addItem(self._bar)
        else:
            self._bar.setOpts(width=widths)
        total = max(1, sum(widths))
        if total != self._total:
            self._total = total
            self.widget.setXRange(0, total, padding=0.05)

    def label_overlaps(self) -> list[str]:
        """Reasons the state labels would not read (tests): rows closer than a line of the
        tick font, or an axis narrower than the longest name."""
        vb = self.widget.getViewBox()
        pitch = abs(vb.mapViewToScene(QPointF(0, 1)).y() - vb.mapViewToScene(QPointF(0, 0)).y())
        out = []
        line = self._metrics().height()
        if pitch < line:
            out.append(f"state rows {pitch:.0f} px apart, labels {line} px high")
        axis = self.widget.getAxis("left")
        if axis.width() < self._label_width():
            out.append(f"left axis {axis.width():.0f} px, labels need {self._label_width()}")
        return out


class RateChart:
    """The live delivery rate (msg/s) of each series over the last ``span`` seconds, one point
    per sample; "—" while no series has the two samples a line needs."""

    EMPTY = "—"

    def __init__(self, title: str = "delivery rate (msg/s)", span: int = 60) -> None:
        self.widget = _plot(title)
        self.widget.addLegend(offset=(5, 5))
        self.widget.setLabel("bottom", "seconds ago")
        self.series = RateSeries(span=float(span))
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._empty = pg.TextItem(self.EMPTY, color="#5f6b7a", anchor=(0.5, 0.5))
        self._empty.setFont(pg.QtGui.QFont("", 20))
        self.widget.addItem(self._empty, ignoreBounds=True)
        self.widget.setXRange(-span, 0, padding=0.02)  # fixed: x is seconds before the newest
        self.widget.enableAutoRange(enable=False)
        self._top: float | None = None
        self._show_empty(True)

    @property
    def empty(self) -> bool:
        return bool(self._empty.isVisible())

    def _show_empty(self, empty: bool) -> None:
        if empty == self._empty.isVisible() and self._top is not None:
            return
        self._empty.setVisible(empty)
        if empty:
            self._top = 1.0
            self.widget.setYRange(0, 1, padding=0)
            self._empty.setPos(-self.series.span / 2, 0.5)

    def _fit_y(self) -> None:
        """The y range: 0 to a round number (1, 2 or 5 x 10^k) above the highest sample,
        changed only when the samples leave it. Pyqtgraph's auto-range re-ranged the plot
        and regenerated its axis at every sample (10-40 ms on the GUI thread a second)."""
        high = max((max(v, default=0.0) for v in map(self._values, self._curves)), default=0.0)
        top = nice_ceiling(high * 1.05)
        if top != self._top:
            self._top = top
            self.widget.setYRange(0, top, padding=0)

    def _values(self, name: str) -> list[float]:
        return self.series.points(name)[1]

    def show(self, rates: dict[str, float], *, now: float) -> None:
        """Sample ``rates`` (series name -> msg/s) at ``now``; a series not given is over."""
        for name in [n for n in self.series.names() if n not in rates]:
            self.series.drop(name)
            curve = self._curves.pop(name, None)
            if curve is not None:
                self.widget.removeItem(curve)
                self.widget.plotItem.legend.removeItem(curve)
        for name, value in rates.items():
            if not self.series.add(name, value, now=now):
                continue  # sampled too soon: nothing new to draw
            if not self.series.ready(name):
                continue
            curve = self._curves.get(name)
            if curve is None:
                color = list(STATE_COLORS.values())[len(self._curves) % len(STATE_COLORS)]
                curve = self.widget.plot(
                    name=name,
                    pen=pg.mkPen(color, width=2),
                    symbol="o",
                    symbolSize=4,
                    symbolBrush=color,
                    symbolPen=None,
                )
                self._curves[name] = curve
            curve.setData(*self.series.points(name))
        self._show_empty(not self._curves)
        if self._curves:
            self._fit_y()


def nice_ceiling(x: float) -> float:
    """The least of 1, 2 or 5 times a power of ten that is >= x (1 for x <= 1)."""
    if x <= 1:
        return 1.0
    p = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * p >= x:
            return m * p
    return 10.0 * p
