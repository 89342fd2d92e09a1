"""Settings: bots (add with getMe, remove with confirmation), the assistant (key into the
secret store, never shown back), delivery rates, the database, the theme."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import Context, View, error_label, row_table, show_error

API_KEY_SECRET = "assistant_api_key"
BOT_COLUMNS = (
    ("name", lambda b: b.name),
    ("username", lambda b: "@" + b.username),
    ("status", lambda b: b.status),
    ("api", lambda b: b.api_base or "api.telegram.org"),
)


class SettingsView(View):
    title = "Settings"

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        s = ctx.services.app.settings
        self.bots = RowsModel(BOT_COLUMNS, self)
        self.bot_table = row_table(self.bots, "bots")
        self.bot_name = QLineEdit()
        self.bot_name.setObjectName("bot_name")
        self.bot_name.setPlaceholderText("local name, e.g. shop")
        self.token = QLineEdit()
        self.token.setObjectName("token")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("token from @BotFather")
        self.api_base = QLineEdit()
        self.api_base.setPlaceholderText("Bot API server (empty: api.telegram.org)")
        self.add_btn = QPushButton("&Add bot")
        self.remove_btn = QPushButton("Remove selected bot…")
        self.bot_error = error_label()
        self.bot_error.setObjectName("bot_error")

        self.provider = QComboBox()
        self.provider.addItems(["offline", "gemini", "openai"])
        self.provider.setCurrentText(s.assistant.provider)
        self.model_name = QLineEdit(s.assistant.model)
        self.base_url = QLineEdit(s.assistant.base_url)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        has_key = bool(s.assistant.api_key_secret)
        self.api_key.setPlaceholderText("stored in the secret store" if has_key else "API key")
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.1, 1000)
        self.rate.setValue(s.delivery.rate)
        self.paid_rate = QDoubleSpinBox()
        self.paid_rate.setRange(1, 1000)
        self.paid_rate.setValue(s.delivery.paid_rate)
        self.db_url = QLineEdit(s.database.url)
        self.db_url.setPlaceholderText(f"empty: SQLite in {ctx.services.app.home.path}")
        self.theme = QComboBox()
        self.theme.setObjectName("theme")
        self.theme.addItems(["light", "dark"])
        self.theme.setCurrentText(s.gui.theme)
        self.save_btn = QPushButton("&Save settings")
        self.error = error_label()

        bots_box = QGroupBox("Bots")
        bl = QVBoxLayout(bots_box)
        bl.addWidget(self.bot_table)
        add = QHBoxLayout()
        for w in (self.bot_name, self.token, self.api_base, self.add_btn):
            add.addWidget(w)
        bl.addLayout(add)
        bl.addWidget(self.bot_error)
        bl.addWidget(self.remove_btn)
        other = QGroupBox("Assistant, delivery, database, look")
        form = QFormLayout(other)
        form.addRow("Assistant provider", self.provider)
        form.addRow("Model", self.model_name)
        form.addRow("Endpoint", self.base_url)
        form.addRow("API key", self.api_key)
        form.addRow("Rate (msg/s per bot)", self.rate)
        form.addRow("Paid rate (msg/s)", self.paid_rate)
        form.addRow("Database URL", self.db_url)
        form.addRow("Theme", self.theme)
        form.addRow("", self.save_btn)
        form.addRow("", self.error)
        form.addRow(
            "",
            QLabel(
                "Delivery, assistant and database changes apply when the console "
                "or `serve` restarts."
            ),
        )
        lay = QVBoxLayout(self)
        lay.addWidget(bots_box, 1)
        lay.addWidget(other)

        self.track(self.add_btn.clicked, self.add_bot)
        self.track(self.token.returnPressed, self.add_bot)
        self.track(self.remove_btn.clicked, self.remove_bot)
        self.track(self.save_btn.clicked, self.save)
        self.track(self.theme.currentTextChanged, self._theme)
        self.refresh()

    def refresh(self) -> None:
        self.call(self.ctx.services.bots(), self.bots.set_rows)

    def add_bot(self) -> None:
        name, token = self.bot_name.text().strip(), self.token.text().strip()
        self.add_btn.setEnabled(False)

        def ok(rec: Any) -> None:
            self.add_btn.setEnabled(True)
            self.token.clear()
            show_error(self.bot_error, None)
            self.ctx.status(f"added {rec.name} (@{rec.username})")
            self.refresh()

        def err(line: str) -> None:
            self.add_btn.setEnabled(True)
            show_error(self.bot_error, line)

        self.call(
            self.ctx.services.add_bot(name, token, api_base=self.api_base.text().strip()), ok, err
        )

    def remove_bot(self) -> None:
        rows = self.bot_table.selectionModel().selectedRows()
        if not rows:
            show_error(self.bot_error, "select a bot to remove")
            return
        rec = self.bots.row(rows[0].row())
        if not self.ctx.confirm(
            self,
            "Remove bot",
            f"Remove {rec.name} (@{rec.username})? Its subscribers, campaigns and conversations "
            "are deleted from botdesk and its token from the secret store.",
        ):
            return
        self.call(
            self.ctx.services.remove_bot(rec.name),
            lambda _r: (self.ctx.status(f"removed {rec.name}"), self.refresh()),
            lambda line: show_error(self.bot_error, line),
        )

    def save(self) -> None:
        services = self.ctx.services
        changes: dict[str, Any] = {
            "assistant": {
                "provider": self.provider.currentText(),
                "model": self.model_name.text().strip(),
                "base_url": self.base_url.text().strip(),
            },
            "delivery": {"rate": self.rate.value(), "paid_rate": self.paid_rate.value()},
            "database": {"url": self.db_url.text().strip()},
            "gui": {"theme": self.theme.currentText()},
        }
        try:
            key = self.api_key.text()
            if key:
                services.set_secret(API_KEY_SECRET, key)  # the value goes only to the store
                changes["assistant"]["api_key_secret"] = API_KEY_SECRET
            services.save_settings(changes)
        except Exception as exc:
            from botdesk.gui.bridge import error_line

            show_error(self.error, error_line(exc, services.app.home.path / "logs"))
            return
        self.api_key.clear()
        self.api_key.setPlaceholderText("stored in the secret store")
        show_error(self.error, None)
        self.ctx.status("settings saved to botdesk.toml")

    def _theme(self, name: str) -> None:
        from botdesk.gui.theme import apply_theme

        apply_theme(name)
        self.ctx.theme = name
