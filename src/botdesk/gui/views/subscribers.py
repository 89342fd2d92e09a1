"""Subscribers: the whole list in one lazy table, the segment box with its live count and the
parser's error at its position, tag/untag the selection, export CSV."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from botdesk.errors import SegmentSyntaxError, UserError
from botdesk.gui.models.subscribers import SubscribersModel
from botdesk.gui.views.base import Context, View, error_label, show_error
from botdesk.segments import parse_segment


def caret_html(expression: str, position: int, message: str) -> str:
    """The expression with a caret under the parser's position (monospace)."""
    pad = "&nbsp;" * max(0, position)
    return (
        f"<span style='color:#d0342c'>{html.escape(message)}</span><br>"
        f"<code>{html.escape(expression).replace(' ', '&nbsp;')}<br>{pad}^</code>"
    )


class SubscribersView(View):
    title = "Subscribers"

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.bot = QComboBox()
        self.bot.setObjectName("bot")
        self.segment = QLineEdit()
        self.segment.setObjectName("segment")
        self.segment.setPlaceholderText("segment, e.g. tag:vip and language:de and joined < 30d")
        self.count = QLabel("")
        self.count.setObjectName("count")
        self.error = error_label()
        self.table = QTableView()
        self.table.setObjectName("subscribers")
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.tag_name = QLineEdit()
        self.tag_name.setObjectName("tag")
        self.tag_name.setPlaceholderText("tag")
        self.tag_btn = QPushButton("&Tag selection")
        self.untag_btn = QPushButton("&Untag selection")
        self.export_btn = QPushButton("&Export CSV…")
        self.model: SubscribersModel | None = None
        # Counts answer in any order; only the latest reload's answer may replace the table.
        self._generation = 0

        top = QHBoxLayout()
        top.addWidget(QLabel("Bot"))
        top.addWidget(self.bot)
        top.addWidget(self.segment, 1)
        top.addWidget(self.count)
        actions = QHBoxLayout()
        actions.addWidget(self.tag_name)
        actions.addWidget(self.tag_btn)
        actions.addWidget(self.untag_btn)
        actions.addStretch(1)
        actions.addWidget(self.export_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.error)
        lay.addWidget(self.table, 1)
        lay.addLayout(actions)

        self._debounce = self.timer(250, self.reload, single=True)
        self.track(self.segment.textChanged, self._segment_changed)
        self.track(self.bot.currentTextChanged, lambda _t: self.reload())
        self.track(self.tag_btn.clicked, lambda: self.tag_selection(remove=False))
        self.track(self.untag_btn.clicked, lambda: self.tag_selection(remove=True))
        self.track(self.export_btn.clicked, self._export_clicked)
        self.call(ctx.services.bots(), self._bots)

    def _bots(self, bots: list[Any]) -> None:
        self.bot.blockSignals(True)
        self.bot.clear()
        self.bot.addItems([b.name for b in bots])
        self.bot.blockSignals(False)
        self.reload()

    def check_segment(self) -> bool:
        """The parser's verdict, shown inline at its position; True when it parses."""
        text = self.segment.text().strip()
        if not text:
            show_error(self.error, None)
            return True
        try:
            parse_segment(text)
        except SegmentSyntaxError as exc:
            self._generation += 1  # a count still in flight is for an older expression
            self.error.setText(caret_html(exc.expression, exc.position, str(exc)))
            self.error.show()
            self.count.setText("")
            return False
        except UserError as exc:
            self._generation += 1
            show_error(self.error, str(exc))
            self.count.setText("")
            return False
        show_error(self.error, None)
        return True

    def _segment_changed(self, _text: str) -> None:
        if self.check_segment():
            self._debounce.start()

    def reload(self) -> None:
        bot = self.bot.currentText()
        if not bot or not self.check_segment():
            return
        segment = self.segment.text().strip() or None
        self._generation += 1
        gen = self._generation
        self.call(
            self.ctx.services.subscriber_count(bot, segment),
            lambda n: self._count(gen, bot, segment, n),
            lambda line: show_error(self.error, line),
        )

    def _count(self, gen: int, bot: str, segment: str | None, n: int) -> None:
        if gen != self._generation:  # a later expression was typed since: its count wins
            return
        self.count.setText(f"{n:,} subscriber{'s' if n != 1 else ''}")
        services = self.ctx.services

        def fetch(after: Any, skip: int, limit: int) -> Any:
            return services.subscriber_page(bot, segment, after=after, skip=skip, limit=limit)

        old = self.model
        self.model = SubscribersModel(
            fetch, lambda coro, ok: self.call(coro, ok), total=n, parent=self
        )
        self.table.setModel(self.model)
        if old is not None:
            old.deleteLater()

    def selected_rows(self) -> list[int]:
        sel = self.table.selectionModel()
        return sorted({i.row() for i in sel.selectedRows()}) if sel is not None else []

    def tag_selection(self, *, remove: bool) -> None:
        tag = self.tag_name.text().strip()
        if self.model is None or not tag:
            show_error(self.error, "type a tag, then select subscribers")
            return
        chats = self.model.chat_ids(self.selected_rows())
        if not chats:
            show_error(self.error, "select the subscribers to tag first")
            return
        self.call(
            self.ctx.services.tag(self.bot.currentText(), chats, tag, remove=remove),
            lambda n: (
                self.ctx.status(f"{'untagged' if remove else 'tagged'} {n} subscriber(s)"),
                self.reload(),
            ),
            lambda line: show_error(self.error, line),
        )

    def _export_clicked(self) -> None:
        name = self.ctx.choose_file(self, "Export subscribers", True)
        if name:
            self.export_to(Path(name))

    def export_to(self, path: Path) -> None:
        self.call(
            self.ctx.services.export_subscribers(
                self.bot.currentText(), self.segment.text().strip() or None, path
            ),
            lambda n: self.ctx.status(f"exported {n} subscriber(s) to {path}"),
            lambda line: show_error(self.error, line),
        )
