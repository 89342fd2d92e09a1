"""The subscriber list as a lazy table: pages fetched by key, never the whole list in memory.

The model knows the row count (one COUNT) and holds at most ``max_pages`` pages of
``page_size`` rows. A row that is not loaded shows a placeholder and asks for its page; the
answer arrives later (the fetch is a coroutine on the bridge) and fills the rows in with
``dataChanged``. A page is read on from the key at the end of the page before it when that
page is held (cheap at any depth); after a jump it skips from the nearest page held above.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

Index = QModelIndex | QPersistentModelIndex
# fetch(after_key, skip, limit) -> (rows, key at the end of these rows)
Fetch = Callable[[Any, int, int], Coroutine[Any, Any, tuple[list[Any], Any]]]
# schedule(coroutine, on_ok): the bridge, or a test's runner
Schedule = Callable[[Coroutine[Any, Any, Any], Callable[[Any], None]], Any]

COLUMNS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("chat id", lambda v: v.chat_id),
    ("name", lambda v: v.first_name or ""),
    ("username", lambda v: ("@" + v.username) if v.username else ""),
    ("language", lambda v: v.language or ""),
    ("status", lambda v: v.status),
    ("source", lambda v: v.source or ""),
    ("tags", lambda v: " ".join(v.tags)),
    ("joined", lambda v: f"{v.joined_at:%Y-%m-%d %H:%M}" if v.joined_at else ""),
)
LOADING = "…"
CHAT_ID_ROLE = Qt.ItemDataRole.UserRole + 2


class SubscribersModel(QAbstractTableModel):
    pageLoaded = Signal(int)

    def __init__(
        self,
        fetch: Fetch,
        schedule: Schedule,
        *,
        total: int,
        page_size: int = 200,
        max_pages: int = 20,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self._fetch = fetch
        self._schedule = schedule
        self.total = total
        self.page_size = page_size
        self.max_pages = max_pages
        self.pages: OrderedDict[int, tuple[list[Any], Any]] = OrderedDict()
        self._asked: set[int] = set()
        self.fetches = 0  # how many page reads the model made (tests, bench)
        self.skipped_reads = 0  # of those, how many had to skip rows (a jump)

    # -- Qt's interface ------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self.total

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            return COLUMNS[section][0]
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self.total:
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, CHAT_ID_ROLE):
            return None
        view = self.row(index.row())
        if view is None:
            return LOADING if role == Qt.ItemDataRole.DisplayRole else None
        if role == CHAT_ID_ROLE:
            return view.chat_id
        return str(COLUMNS[index.column()][1](view))

    # -- paging ----------------------------------------------------------------------------

    def row(self, i: int) -> Any:
        """The loaded row ``i``, or None (and its page is asked for)."""
        p, k = divmod(i, self.page_size)
        got = self.pages.get(p)
        if got is None:
            self.request(p)
            return None
        self.pages.move_to_end(p)
        rows = got[0]
        return rows[k] if k < len(rows) else None

    def request(self, p: int) -> None:
        if p in self._asked or p in self.pages or p * self.page_size >= self.total:
            return
        self._asked.add(p)
        below = [q for q in self.pages if q < p]
        if below:
            q = max(below)
            after, skip = self.pages[q][1], (p - q - 1) * self.page_size
        else:
            after, skip = None, p * self.page_size
        self.fetches += 1
        self.skipped_reads += skip > 0

        def loaded(res: tuple[list[Any], Any]) -> None:
            self._loaded(p, res)

        self._schedule(self._fetch(after, skip, self.page_size), loaded)

    def _loaded(self, p: int, res: tuple[list[Any], Any]) -> None:
        self._asked.discard(p)
        rows, key = res
        self.pages[p] = (list(rows), key)
        while len(self.pages) > self.max_pages:
            self.pages.popitem(last=False)
        first = p * self.page_size
        last = min(self.total, first + self.page_size) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        self.pageLoaded.emit(p)

    def chat_ids(self, rows: list[int]) -> list[int]:
        """Chat ids of loaded rows among ``rows`` (the selection)."""
        out = []
        for i in rows:
            v = self.row(i)
            if v is not None:
                out.append(int(v.chat_id))
        return out

    def held_rows(self) -> int:
        return sum(len(r) for r, _k in self.pages.values())
