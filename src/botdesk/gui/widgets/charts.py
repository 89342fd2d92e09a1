"""Charts drawn by pyqtgraph (axes, ticks and legends are the library's)."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg

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
    """A campaign's recipients by state, one bar per state."""

    def __init__(self) -> None:
        self.widget = _plot("recipients by state")
        self._bar: pg.BarGraphItem | None = None
        self.counts: dict[str, int] = {}

    def show(self, counts: dict[str, int]) -> None:
        if counts == self.counts:
            return
        self.counts = dict(counts)
        states = list(STATE_COLORS)
        if self._bar is not None:
            self.widget.removeItem(self._bar)
        self._bar = pg.BarGraphItem(
            x=list(range(len(states))),
            height=[counts.get(s, 0) for s in states],
            width=0.7,
            brushes=[STATE_COLORS[s] for s in states],
        )
        self.widget.addItem(self._bar)
        self.widget.getAxis("bottom").setTicks([list(enumerate(states))])


class RateChart:
    """Messages per second over the last minute, one line per series (bot or campaign)."""

    def __init__(self, title: str = "delivery rate (msg/s)", span: int = 60) -> None:
        self.widget = _plot(title)
        self.widget.addLegend(offset=(5, 5))
        self.span = span
        self.series: dict[str, list[float]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}

    def add(self, name: str, value: float) -> None:
        ys = self.series.setdefault(name, [])
        ys.append(value)
        del ys[: -self.span]
        curve = self._curves.get(name)
        if curve is None:
            pen = pg.mkPen(
                list(STATE_COLORS.values())[len(self._curves) % len(STATE_COLORS)], width=2
            )
            curve = self.widget.plot(name=name, pen=pen)
            self._curves[name] = curve
        curve.setData(list(range(-len(ys) + 1, 1)), ys)
