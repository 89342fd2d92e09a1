"""The main window: a list of screens on the left, the open screen on the right.

A screen is built when it is opened and released and deleted when another one is opened,
so a console left running for weeks holds one screen's widgets, timers and connections.
Ctrl+1 … Ctrl+7 (and the list, with the arrow keys) move between screens.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QMainWindow, QStatusBar, QWidget

from botdesk.gui.views.base import Context, View
from botdesk.gui.views.campaigns import CampaignsView
from botdesk.gui.views.dashboard import DashboardView
from botdesk.gui.views.inbox import InboxView
from botdesk.gui.views.knowledge import KnowledgeView
from botdesk.gui.views.sequences import SequencesView
from botdesk.gui.views.settings import SettingsView
from botdesk.gui.views.subscribers import SubscribersView

SCREENS: tuple[type[View], ...] = (
    DashboardView,
    SubscribersView,
    CampaignsView,
    SequencesView,
    InboxView,
    KnowledgeView,
    SettingsView,
)


class MainWindow(QMainWindow):
    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        self.setWindowTitle(f"botdesk — {ctx.services.app.home.path}")
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.addItems([s.title for s in SCREENS])
        self.nav.setFixedWidth(170)
        self.body = QWidget()
        self.body_layout = QHBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.addWidget(self.nav)
        lay.addWidget(self.body, 1)
        self.setCentralWidget(central)
        self.setStatusBar(QStatusBar())
        self.busy = QLabel("")
        self.statusBar().addPermanentWidget(self.busy)
        self.view: View | None = None
        ctx.status = self.say
        ctx.bridge.failed.connect(self.say)
        ctx.bridge.busy.connect(self._busy)
        self.nav.currentRowChanged.connect(self._nav)
        self._shortcuts = []
        for i in range(len(SCREENS)):
            sc = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            sc.activated.connect(lambda i=i: self.nav.setCurrentRow(i))
            self._shortcuts.append(sc)
        self.resize(1280, 800)
        self.nav.setCurrentRow(0)

    def say(self, line: str) -> None:
        self.statusBar().showMessage(line, 15000)

    def _busy(self, n: int) -> None:
        self.busy.setText("working…" if n else "")

    def _nav(self, row: int) -> None:
        if 0 <= row < len(SCREENS):
            self.open_screen(SCREENS[row])

    def open_screen(self, cls: type[View]) -> View:
        self.close_screen()
        view = cls(self.ctx)
        self.body_layout.addWidget(view)
        self.view = view
        if self.nav.currentRow() != SCREENS.index(cls):
            self.nav.blockSignals(True)
            self.nav.setCurrentRow(SCREENS.index(cls))
            self.nav.blockSignals(False)
        return view

    def close_screen(self) -> None:
        view, self.view = self.view, None
        if view is None:
            return
        view.release()
        self.body_layout.removeWidget(view)
        view.setParent(None)
        view.deleteLater()

    def screen_of(self, cls: type[View]) -> Any:
        return self.view if isinstance(self.view, cls) else self.open_screen(cls)

    def closeEvent(self, event: Any) -> None:
        self.close_screen()
        super().closeEvent(event)


def keyboard_focus_order(window: MainWindow) -> None:
    window.nav.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
