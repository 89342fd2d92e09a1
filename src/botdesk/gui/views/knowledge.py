"""Knowledge base: browse, edit, add, remove, import a file, and try a question."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import Context, View, error_label, row_table, show_error

SHARED = "(shared)"
COLUMNS = (
    ("key", lambda e: e.key),
    ("scope", lambda e: e.bot or "shared"),
    ("question", lambda e: e.question),
    ("answer", lambda e: e.answer[:80]),
)


class KnowledgeView(View):
    title = "Knowledge base"

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.scope = QComboBox()
        self.scope.setObjectName("scope")
        self.model = RowsModel(COLUMNS, self)
        self.table = row_table(self.model, "entries")
        self.import_btn = QPushButton("&Import file…")
        self.key = QLineEdit()
        self.question = QLineEdit()
        self.variants = QPlainTextEdit()
        self.variants.setPlaceholderText("other ways to ask, one per line")
        self.variants.setMaximumHeight(70)
        self.answer = QPlainTextEdit()
        self.tags = QLineEdit()
        self.new_btn = QPushButton("&New")
        self.save_btn = QPushButton("&Save entry")
        self.remove_btn = QPushButton("Re&move")
        self.error = error_label()
        self.ask_box = QLineEdit()
        self.ask_box.setObjectName("ask")
        self.ask_box.setPlaceholderText("Try a question as a subscriber would write it")
        self.ask_btn = QPushButton("As&k")
        self.answer_view = QLabel("")
        self.answer_view.setObjectName("answer")
        self.answer_view.setWordWrap(True)
        self.last_reply: Any = None

        top = QHBoxLayout()
        top.addWidget(QLabel("Bot"))
        top.addWidget(self.scope, 1)
        top.addWidget(self.import_btn)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addLayout(top)
        lv.addWidget(self.table, 1)
        form = QFormLayout()
        form.addRow("Key", self.key)
        form.addRow("Question", self.question)
        form.addRow("Variants", self.variants)
        form.addRow("Answer", self.answer)
        form.addRow("Tags", self.tags)
        buttons = QHBoxLayout()
        for b in (self.new_btn, self.save_btn, self.remove_btn):
            buttons.addWidget(b)
        ask = QHBoxLayout()
        ask.addWidget(self.ask_box, 1)
        ask.addWidget(self.ask_btn)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(form)
        rv.addLayout(buttons)
        rv.addWidget(self.error)
        rv.addSpacing(12)
        rv.addWidget(QLabel("<b>Try a question</b>"))
        rv.addLayout(ask)
        rv.addWidget(self.answer_view)
        rv.addStretch(1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        QVBoxLayout(self).addWidget(split)

        self.track(self.scope.currentTextChanged, lambda _t: self.refresh())
        self.track(
            self.table.selectionModel().currentRowChanged, lambda cur, _p: self._picked(cur.row())
        )
        self.track(self.import_btn.clicked, self._import_clicked)
        self.track(self.new_btn.clicked, self.clear_form)
        self.track(self.save_btn.clicked, self.save)
        self.track(self.remove_btn.clicked, self.remove)
        self.track(self.ask_btn.clicked, self.ask)
        self.track(self.ask_box.returnPressed, self.ask)
        self.call(ctx.services.bots(), self._bots)

    def _bots(self, bots: list[Any]) -> None:
        self.scope.blockSignals(True)
        self.scope.clear()
        self.scope.addItems([b.name for b in bots] + [SHARED])
        self.scope.blockSignals(False)
        self.refresh()

    def bot(self) -> str | None:
        t = self.scope.currentText()
        return None if t in ("", SHARED) else t

    def refresh(self) -> None:
        self.call(self.ctx.services.kb_entries(self.bot()), self.model.set_rows)

    def _picked(self, row: int) -> None:
        e = self.model.row(row)
        if e is None:
            return
        self.key.setText(e.key)
        self.question.setText(e.question)
        self.variants.setPlainText("\n".join(e.variants))
        self.answer.setPlainText(e.answer)
        self.tags.setText(" ".join(e.tags))

    def clear_form(self) -> None:
        for w in (self.key, self.question, self.tags):
            w.clear()
        self.variants.clear()
        self.answer.clear()
        self.key.setFocus()

    def _done(self, msg: str) -> None:
        show_error(self.error, None)
        self.ctx.status(msg)
        self.refresh()

    def save(self) -> None:
        self.call(
            self.ctx.services.kb_save(
                self.bot(),
                key=self.key.text(),
                question=self.question.text(),
                answer=self.answer.toPlainText(),
                variants=tuple(self.variants.toPlainText().splitlines()),
                tags=tuple(self.tags.text().split()),
            ),
            lambda new: self._done(f"{'added' if new else 'saved'} {self.key.text().strip()}"),
            lambda line: show_error(self.error, line),
        )

    def remove(self) -> None:
        key = self.key.text().strip()
        if not key or not self.ctx.confirm(self, "Remove entry", f"Remove the entry {key!r}?"):
            return
        self.call(
            self.ctx.services.kb_remove(self.bot(), key),
            lambda _r: (self.clear_form(), self._done(f"removed {key}")),
            lambda line: show_error(self.error, line),
        )

    def _import_clicked(self) -> None:
        name = self.ctx.choose_file(self, "Import knowledge base (Markdown, CSV, YAML)", False)
        if name:
            self.import_file(Path(name))

    def import_file(self, path: Path) -> None:
        def done(r: Any) -> None:
            probs = (
                f"; {len(r.problems)} problem(s): line {r.problems[0].line}: {r.problems[0].reason}"
                if r.problems
                else ""
            )
            self._done(
                f"imported {path.name}: {r.added} added, {r.updated} updated, "
                f"{r.unchanged} unchanged{probs}"
            )

        self.call(
            self.ctx.services.kb_import(path, self.bot()),
            done,
            lambda line: show_error(self.error, line),
        )

    def ask(self) -> None:
        q = self.ask_box.text().strip()
        bot = self.bot()
        if not q:
            return
        if bot is None:
            show_error(self.error, "pick a bot to ask (the shared entries answer for every bot)")
            return
        self.answer_view.setText("thinking…")
        self.call(
            self.ctx.services.kb_ask(bot, q),
            self._answered,
            lambda line: (self.answer_view.setText(""), show_error(self.error, line)),
        )

    def _answered(self, reply: Any) -> None:
        self.last_reply = reply
        how = f"handed to a human ({reply.reason})" if reply.handoff else "answered"
        self.answer_view.setText(
            f"{reply.text}\n\nsources: {', '.join(reply.sources) or '-'} · "
            f"confidence {reply.confidence:.2f} · {how}"
        )
