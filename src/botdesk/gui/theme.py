"""Light and dark themes: Qt's Fusion style with a palette, and pyqtgraph's colours."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

DARK = {
    QPalette.ColorRole.Window: "#1f2329",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#16191d",
    QPalette.ColorRole.AlternateBase: "#23272e",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#2a2f37",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.Highlight: "#2f6fb3",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#2a2f37",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#8a9099",
}


def apply_theme(name: str) -> None:
    import pyqtgraph as pg

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    app.setStyle("Fusion")
    pal = app.style().standardPalette()
    if name == "dark":
        for role, color in DARK.items():
            pal.setColor(role, QColor(color))
    app.setPalette(pal)
    pg.setConfigOptions(
        background="#16191d" if name == "dark" else "w",
        foreground="#e6e6e6" if name == "dark" else "#333",
        antialias=True,
    )
