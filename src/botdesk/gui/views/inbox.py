"""Inbox: conversations, the assistant's answers with the knowledge entries each used, the
handoff queue, take over, reply and release. New messages appear on their own."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import Context, View, error_label, row_table, show_error

# A row is one line: the last message's line breaks become spaces, and what does not fit
# is elided (the whole text is the row's tooltip and the history beside the list).
SHOWN_TEXT = 300


def one_line(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= SHOWN_TEXT else flat[: SHOWN_TEXT - 1] + "…"


def row_tooltip(v: Any) -> str | None:
    """The whole last message, as rich text so that Qt wraps a long one."""
    if not v.last_text:
        return None
    return "<qt>" + html.escape(v.last_text).replace("\n", "<br>") + "</qt>"


COLUMNS = (
    ("", lambda v: "⚑" if v.needs_human else ""),
    ("bot", lambda v: v.bot),
    ("chat", lambda v: v.chat_id),
    ("name", lambda v: v.name or ""),
    ("messages", lambda v: v.messages),
    ("last", lambda v: f"{v.last_message_at:%m-%d %H:%M:%S}"),
    ("text", lambda v: one_line(v.last_text)),
)
AUTHOR_COLOR = {"user": "#1f6feb", "assistant": "#3a9d5d", "operator": "#8e44ad", "bot": "#5f6b7a"}


def messages_html(messages: list[Any]) -> str:
    out = []
    for m in messages:
        who = m.author
        meta = m.meta or {}
        extra = ""
        if meta.get("sources"):
            extra += " · sources: " + ", ".join(html.escape(str(s)) for s in meta["sources"])
        if meta.get("confidence") is not None:
            extra += f" · confidence {float(meta['confidence']):.2f}"
        if meta.get("handoff") or meta.get("reason"):
            extra += " · " + html.escape(str(meta.get("reason") or "handoff"))
        marker = m.marker() if hasattr(m, "marker") else None
        if marker:  # a reply that did not (surely) reach the chat
            extra += f" · <b style='color:#c0392b'>{html.escape(marker)}</b>"
        out.append(
            f"<p><span style='color:{AUTHOR_COLOR.get(who, '#000')}'>"
            f"<b>{html.escape(who)}</b></span>"
            f" <span style='color:#888'>{m.at:%H:%M:%S}{extra}</span><br>"
            f"{html.escape(m.text).replace(chr(10), '<br>')}</p>"
        )
    return "".join(out) or "<p style='color:#888'>no messages</p>"


class InboxView(View):
    title = "Inbox"
    refresh_ms = 1000

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.only_waiting = QCheckBox("Waiting for a human only")
        self.only_waiting.setObjectName("only_waiting")
        self.model = RowsModel(COLUMNS, self, tooltip=row_tooltip)
        self.table = row_table(self.model, "conversations", stretch=len(COLUMNS) - 1)
        self.table.setWordWrap(False)
        # Every row one line high, whatever its text (no per-row measuring either).
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.header = QLabel("Pick a conversation")
        self.header.setObjectName("header")
        self.history = QTextBrowser()
        self.history.setObjectName("history")
        self.reply_text = QLineEdit()
        self.reply_text.setObjectName("reply")
        self.reply_text.setPlaceholderText("Reply as the operator (takes the conversation over)")
        self.send_btn = QPushButton("Se&nd")
        self.take_btn = QPushButton("&Take over")
        self.release_btn = QPushButton("&Release to the assistant")
        self.error = error_label()
        self.current: tuple[str, int] | None = None
        self.shown_messages: list[Any] = []

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.only_waiting)
        lv.addWidget(self.table, 1)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.header)
        rv.addWidget(self.history, 1)
        rv.addWidget(self.error)
        row = QHBoxLayout()
        row.addWidget(self.reply_text, 1)
        row.addWidget(self.send_btn)
        rv.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(self.take_btn)
        row2.addWidget(self.release_btn)
        row2.addStretch(1)
        rv.addLayout(row2)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        split.setSizes([560, 520])  # the list wide enough for its text column
        QVBoxLayout(self).addWidget(split)

        self.track(self.only_waiting.toggled, lambda _b: self.refresh())
        self.track(
            self.table.selectionModel().currentRowChanged, lambda cur, _p: self._picked(cur.row())
        )
        self.track(self.send_btn.clicked, self.send_reply)
        self.track(self.reply_text.returnPressed, self.send_reply)
        self.track(self.take_btn.clicked, lambda: self._act("take_over"))
        self.track(self.release_btn.clicked, lambda: self._act("release"))
        self.refresh()

    def refresh(self) -> None:
        self.call(
            self.ctx.services.conversations(needs_human=self.only_waiting.isChecked()),
            self.model.set_rows,
        )
        self._load_thread()

    def _picked(self, row: int) -> None:
        conv = self.model.row(row)
        if conv is None:
            return
        self.open(conv.bot, conv.chat_id)

    def open(self, bot: str, chat_id: int) -> None:
        self.current = (bot, chat_id)
        self.header.setText(f"{bot} · chat {chat_id}")
        self._load_thread()

    def _load_thread(self) -> None:
        if self.current is None:
            return
        cur = self.current
        self.call(self.ctx.services.messages(*cur), lambda ms: self._thread(cur, ms))

    def _thread(self, cur: tuple[str, int], messages: list[Any]) -> None:
        if cur != self.current or messages == self.shown_messages:
            return
        self.shown_messages = messages
        self.history.setHtml(messages_html(messages))
        bar = self.history.verticalScrollBar()
        bar.setValue(bar.maximum())

    def screenshot_states(self) -> list[tuple[str, Any]]:
        """The README's picture: the first conversation waiting for a human, opened."""

        def waiting() -> None:
            rows = [self.model.row(i) for i in range(self.model.rowCount())]
            first = next((i for i, c in enumerate(rows) if c.needs_human), 0)
            self.table.selectRow(first)

        return [("", waiting)]

    def send_reply(self) -> None:
        text = self.reply_text.text()
        if self.current is None:
            show_error(self.error, "pick a conversation first")
            return
        self.call(
            self.ctx.services.reply(*self.current, text),
            lambda _id: (
                self.reply_text.clear(),
                show_error(self.error, None),
                self.ctx.status("reply queued; the bot's worker sends it"),
            ),
            lambda line: show_error(self.error, line),
        )

    def _act(self, what: str) -> None:
        if self.current is None:
            show_error(self.error, "pick a conversation first")
            return
        fn = getattr(self.ctx.services, what)
        self.call(
            fn(*self.current),
            lambda _r: (show_error(self.error, None), self.refresh()),
            lambda line: show_error(self.error, line),
        )
