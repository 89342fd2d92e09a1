"""A table model over a short list of rows (campaigns, bots, conversations, entries, ...).

Columns are (header, getter) pairs; ``set_rows`` replaces the list and keeps the selection's
meaning by resetting only when the number of rows changed (otherwise ``dataChanged`` over the
rows whose display changed, or nothing), so a view refreshed every second does not flicker,
lose its place or repaint rows that stayed the same. ``tooltip`` (optional) gives a row's
tooltip, e.g. the whole text a one-line cell elides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex
Column = tuple[str, Callable[[Any], Any]]
ROW_ROLE = Qt.ItemDataRole.UserRole + 1


class RowsModel(QAbstractTableModel):
    def __init__(
        self,
        columns: Sequence[Column],
        parent: Any = None,
        *,
        tooltip: Callable[[Any], str | None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.tooltip = tooltip
        self.rows: list[Any] = []
        self._shown: list[tuple[Any, ...]] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._shown[index.row()][index.column()]
            return "" if value is None else str(value)
        if role == ROW_ROLE:
            return self.rows[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole and self.tooltip is not None:
            return self.tooltip(self.rows[index.row()])
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            return self.columns[section][0]
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        return None

    def set_rows(self, rows: Sequence[Any]) -> None:
        shown = [tuple(get(r) for _h, get in self.columns) for r in rows]
        if shown == self._shown and len(rows) == len(self.rows):
            self.rows = list(rows)  # same display: keep the view (and its selection) as it is
            return
        if len(shown) == len(self._shown):
            # Only the span of rows whose display changed: a running campaign's refresh
            # changes a few rows of its list, and the views repaint what they are told.
            changed = [i for i, (a, b) in enumerate(zip(shown, self._shown, strict=True)) if a != b]
            self.rows, self._shown = list(rows), shown
            if changed:
                self.dataChanged.emit(
                    self.index(changed[0], 0), self.index(changed[-1], len(self.columns) - 1)
                )
            return
        self.beginResetModel()
        self.rows, self._shown = list(rows), shown
        self.endResetModel()

    def row(self, i: int) -> Any:
        return self.rows[i] if 0 <= i < len(self.rows) else None
