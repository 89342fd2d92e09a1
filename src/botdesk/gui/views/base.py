"""What every screen shares: its context, its calls, and the connections it must give back.

As in vorta's ``BaseTab``: every signal connection a view makes goes through ``track`` and
every timer through ``timer``; ``release`` (run when the view closes) disconnects them all,
stops the timers and cancels the view's calls on the bridge, so a closed screen leaves no
slot behind on a long-lived object (the bridge, the window, the application).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from botdesk.gui.bridge import Bridge
from botdesk.gui.services import Services


@dataclass
class Context:
    """Handed to every view by the main window."""

    services: Services
    bridge: Bridge
    status: Callable[[str], None] = print
    # Asked before anything irreversible; tests replace it to answer for the operator.
    confirm: Callable[[QWidget, str, str], bool] = field(default=lambda w, t, m: _ask(w, t, m))
    # Asked for a file name (open or save); tests replace it.
    choose_file: Callable[[QWidget, str, bool], str | None] = field(
        default=lambda w, t, save: _file(w, t, save)
    )
    # Asked for a text (title, label, initial text); None when cancelled. Tests replace it.
    ask_text: Callable[[QWidget, str, str, str], str | None] = field(
        default=lambda w, t, label, initial: _text(w, t, label, initial)
    )
    # Asked to pick one of several items (title, label, items); None when cancelled.
    ask_item: Callable[[QWidget, str, str, list[str]], str | None] = field(
        default=lambda w, t, label, items: _item(w, t, label, items)
    )
    theme: str = "light"


def _item(parent: QWidget, title: str, label: str, items: list[str]) -> str | None:
    from PySide6.QtWidgets import QInputDialog

    item, ok = QInputDialog.getItem(parent, title, label, items, 0, False)
    return item if ok else None


def _ask(parent: QWidget, title: str, message: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=parent)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def _text(parent: QWidget, title: str, label: str, initial: str) -> str | None:
    from PySide6.QtWidgets import QInputDialog

    text, ok = QInputDialog.getMultiLineText(parent, title, label, initial)
    return text if ok else None


def _file(parent: QWidget, title: str, save: bool) -> str | None:
    from PySide6.QtWidgets import QFileDialog

    fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
    name, _ = fn(parent, title)
    return name or None


class View(QWidget):
    title = ""
    refresh_ms = 0  # > 0: ``refresh`` runs on a timer while the view is open

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._connections: list[tuple[Any, Any]] = []
        self._timers: list[QTimer] = []
        self._released = False
        self.setObjectName(type(self).__name__)
        if self.refresh_ms:
            self.timer(self.refresh_ms, self.refresh)

    # -- bookkeeping -----------------------------------------------------------------------

    def track(self, signal: Any, slot: Any) -> None:
        signal.connect(slot)
        self._connections.append((signal, slot))

    def timer(self, ms: int, slot: Callable[[], None], *, single: bool = False) -> QTimer:
        t = QTimer(self)
        t.setInterval(ms)
        t.setSingleShot(single)
        self.track(t.timeout, slot)
        self._timers.append(t)
        if not single:
            t.start()
        return t

    def call(
        self,
        coro: Coroutine[Any, Any, Any],
        on_ok: Callable[[Any], object] | None = None,
        on_err: Callable[[str], object] | None = None,
    ) -> Any:
        if self._released:
            coro.close()
            return None
        return self.ctx.bridge.call(self, coro, on_ok, on_err)

    def release(self) -> None:
        """Give back every connection, timer and call; idempotent."""
        if self._released:
            return
        self._released = True
        for t in self._timers:
            t.stop()
        for signal, slot in self._connections:
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):  # the sender is already gone
                pass
        self._connections.clear()
        self._timers.clear()
        self.ctx.bridge.cancel(self)

    def closeEvent(self, event: Any) -> None:
        self.release()
        super().closeEvent(event)

    # -- what screens override ---------------------------------------------------------------

    def refresh(self) -> None:
        """Reload what the screen shows (called on open and by the refresh timer)."""

    @property
    def connections(self) -> int:
        return len(self._connections)


def error_label() -> QLabel:
    """The inline place for a service's one-line error (red, selectable, wraps)."""
    lab = QLabel()
    lab.setObjectName("error")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(
        lab.textInteractionFlags() | lab.textInteractionFlags().TextSelectableByMouse
    )
    lab.setStyleSheet("color: #d0342c;")
    lab.hide()
    return lab


def show_error(lab: QLabel, line: str | None) -> None:
    if line:
        lab.setText(line)
        lab.show()
    else:
        lab.clear()
        lab.hide()


def fill_combo(combo: QComboBox, items: list[str]) -> None:
    """Replace a combo box's items without emitting its change signals."""
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    combo.blockSignals(False)


def vbox(widget: QWidget, *children: QWidget) -> QVBoxLayout:
    lay = QVBoxLayout(widget)
    for c in children:
        lay.addWidget(c)
    return lay


def row_table(
    model: Any, name: str, *, single: bool = True, fit: bool = True, stretch: int | None = None
) -> QTableView:
    """A table of whole-row selection over ``model``, columns fitted to their contents
    (``stretch``: the one text column that takes the room left, elided when short)."""
    t = QTableView()
    t.setObjectName(name)
    t.setModel(model)
    t.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    if single:
        t.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    t.verticalHeader().hide()
    if fit:
        fit_columns(t, stretch=stretch)
    else:
        t.horizontalHeader().setStretchLastSection(True)
    return t


def fit_columns(table: QTableView, *, stretch: int | None = None) -> QTableView:
    """Columns as wide as their contents (Qt samples rows); ``stretch`` (else the last one)
    takes the rest. Long text is elided rather than pushing the short columns out of view."""
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    if stretch is None:
        header.setStretchLastSection(True)
    else:
        header.setStretchLastSection(False)
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return table


def header_need(table: QTableView, section: int) -> int:
    """The width a column's header text needs (the header's font and the style's margins)."""
    header = table.horizontalHeader()
    text = str(table.model().headerData(section, Qt.Orientation.Horizontal) or "")
    margin = header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    return QFontMetrics(header.font()).horizontalAdvance(text) + 2 * margin
