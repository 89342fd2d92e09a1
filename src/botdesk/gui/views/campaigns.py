"""Campaigns: the list, the composer with its live preview and inline validation, a running
campaign's progress with pause/resume/cancel, and a finished campaign's report."""

from __future__ import annotations

import functools
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from botdesk import media
from botdesk.ab_campaigns import METRICS as AB_METRICS
from botdesk.campaign_actions import ActionSpec
from botdesk.campaigns import BUILTIN_FIELDS, MAX_RATE_CAP, STATES, CampaignSpec, SendOptions
from botdesk.errors import UserError, ValidationError
from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import Context, View, error_label, row_table, show_error
from botdesk.gui.views.engagement import AbPanel, ClicksPanel
from botdesk.gui.widgets.charts import OutcomeChart, RateChart
from botdesk.gui.widgets.preview import MessagePreview, message_html

LIST_COLUMNS = (
    ("id", lambda c: c.id),
    ("name", lambda c: c.name),
    ("bot", lambda c: c.bot),
    ("state", lambda c: c.state),
    ("audience", lambda c: c.audience),
    # Month and day: the year left more room to the names (elided at 1280 px otherwise).
    ("created", lambda c: f"{c.created_at:%m-%d %H:%M}"),
)
LIST_WIDTH = 400
# Recipients shown while a campaign runs (the report shows up to 5,000, the CSV all).
RUNNING_ROWS = 200

RECIPIENT_COLUMNS = tuple(
    (k, (lambda r, k=k: r.get(k, "")))
    for k in ("chat_id", "username", "state", "attempts", "message_id", "error", "updated_at")
)
REASON_COLUMNS = (
    ("state", lambda r: r["state"]),
    ("reason", lambda r: r["reason"]),
    ("count", lambda r: r["count"]),
)
EDIT_CONFIRM = (
    'This will {what}. Telegram marks each message "edited"; the keyboard is sent again '
    "as it is. Recipients who blocked the bot since are skipped. Edit?"
)
RECALL_CONFIRM = (
    "This will {what}: they disappear from the recipients' chats. Telegram lets a bot delete "
    "a message only within 48 hours of sending it; older ones are reported as failed. Recall?"
)
RESEND_WARNING = (
    "These {n} recipients' messages may already have arrived: Telegram gave no answer we could "
    "read, and sendMessage has no idempotency key. Sending again can deliver a duplicate to each "
    "of them. Send again anyway?"
)


# The composer's message kinds: (what the operator reads, the kind the spec carries).
KINDS = (
    ("text", "text"),
    ("photo", "photo"),
    ("document", "document"),
    ("video", "video"),
    ("animation (GIF)", "animation"),
    ("audio", "audio"),
    ("voice message", "voice"),
    ("album (2-10 files)", "album"),
    ("copy of a message", "copy"),
)
KIND_NAMES = {
    None: "text",
    "album": "album",
    "copy": "copy of an existing message (copyMessage)",
}


def describe_content(campaign: dict[str, Any]) -> str:
    """A campaign's message kind and send options, one line (the report's ``campaign``)."""
    kind = campaign.get("media_kind")
    opts = SendOptions.from_json(campaign.get("options"))
    parts = [KIND_NAMES.get(kind, kind or "text")]
    parts.append("silent" if opts.silent else "with notification")
    if opts.protect:
        parts.append("protected content")
    if kind is None:
        parts.append("link preview " + ("on" if opts.link_preview else "off"))
    parts.append(
        f"at most {opts.max_rate:g} msg/s" if opts.max_rate is not None else "the bot's rate"
    )
    return " · ".join(parts)


def parse_buttons(text: str) -> list[tuple[str, str]]:
    """One LABEL=URL per line (the CLI's --button); the URL rules are the service's."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, sep, url = line.partition("=")
        if not sep or not label.strip() or not url.strip():
            raise ValidationError(f"button line {n} must be LABEL=URL, got {line!r}")
        out.append((label.strip(), url.strip()))
    return out


class Composer(QWidget):
    def __init__(self, view: CampaignsView) -> None:
        super().__init__()
        self.view = view
        self.bot = QComboBox()
        self.name = QLineEdit()
        self.name.setPlaceholderText("campaign name")
        self.parse_mode = QComboBox()
        self.parse_mode.addItems(["html", "markdownv2", "plain"])
        self.text = QPlainTextEdit()
        self.text.setObjectName("text")
        self.text.setPlaceholderText("Hi {first_name}! …")
        self.variables = QComboBox()
        self.variables.addItem("Insert variable…")
        self.variables.addItems(["{" + f + "}" for f in BUILTIN_FIELDS])
        self.media_kind = QComboBox()
        self.media_kind.setObjectName("media_kind")
        for label, kind in KINDS:
            self.media_kind.addItem(label, kind)
        self.media_path = QLineEdit()
        self.media_path.setPlaceholderText("file")
        self.browse = QPushButton("Browse…")
        self.file_row = QWidget()
        fr = QHBoxLayout(self.file_row)
        fr.setContentsMargins(0, 0, 0, 0)
        fr.addWidget(self.media_path, 1)
        fr.addWidget(self.browse)
        # An album: its files in order (drag, or Up/Down, to reorder).
        self.album = QListWidget()
        self.album.setObjectName("album")
        self.album.setMaximumHeight(84)
        self.album.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.album_add = QPushButton("Add…")
        self.album_remove = QPushButton("Remove")
        self.album_up = QPushButton("Up")
        self.album_down = QPushButton("Down")
        self.album_box = QWidget()
        ab = QHBoxLayout(self.album_box)
        ab.setContentsMargins(0, 0, 0, 0)
        ab.addWidget(self.album, 1)
        album_btns = QVBoxLayout()
        album_btns.setSpacing(0)
        for b in (self.album_add, self.album_remove, self.album_up, self.album_down):
            album_btns.addWidget(b)
        ab.addLayout(album_btns)
        self.copy_from = QLineEdit()
        self.copy_from.setObjectName("copy_from")
        self.copy_from.setPlaceholderText("CHAT:MESSAGE_ID, e.g. -1001234567890:42 or @channel:42")
        self.copy_from.setToolTip(
            "a post of a channel the bot administers, or a message in a chat with the bot; "
            "sent with copyMessage exactly as it is"
        )
        # How every message goes out (SendOptions).
        self.silent = QCheckBox("Silent")
        self.silent.setObjectName("silent")
        self.silent.setToolTip("delivered without a notification sound (disable_notification)")
        self.protect = QCheckBox("Protect content")
        self.protect.setObjectName("protect")
        self.protect.setToolTip("recipients cannot forward or save it (protect_content)")
        self.link_preview = QCheckBox("Link preview")
        self.link_preview.setObjectName("link_preview")
        self.link_preview.setChecked(True)
        self.link_preview.setToolTip("a preview of the first link (text messages only)")
        self.max_rate = QDoubleSpinBox()
        self.max_rate.setObjectName("max_rate")
        self.max_rate.setRange(0, MAX_RATE_CAP)
        self.max_rate.setDecimals(0)  # whole messages per second, as operators think of it
        self.max_rate.setSpecialValueText("no rate cap")
        self.max_rate.setSuffix(" msg/s max")
        self.max_rate.setToolTip("this campaign never sends faster (the bot's limit still holds)")
        self.buttons = QPlainTextEdit()
        self.buttons.setPlaceholderText(
            "one button per line: Label=https://… or Label=cb:tag=NAME | cb:reply=TEXT | cb:NAME"
        )
        self.buttons.setMaximumHeight(60)
        self.segment = QLineEdit()
        self.segment.setObjectName("segment")
        self.segment.setPlaceholderText("segment (empty: every active subscriber)")
        self.audience = QLabel("")
        self.audience.setObjectName("audience")
        self.scheduled = QCheckBox("Schedule at")
        self.at = QDateTimeEdit(QDateTime.currentDateTime().addSecs(3600))
        self.at.setCalendarPopup(True)
        self.paid = QCheckBox("Paid broadcast (costs Stars)")
        self.paid.setToolTip("Up to 1,000 msg/s; 0.1 Star per message above the free rate")
        self.stars = QLabel("")
        self.stars.setObjectName("stars")
        # A/B test: the Text above is variant A; B (and C, D when filled) below.
        self.ab_on = QCheckBox("A/B test (the text above is variant A)")
        self.ab_on.setObjectName("ab_on")
        self.variants = []
        for label in "BCD":
            edit = QPlainTextEdit()
            edit.setObjectName(f"variant_{label}")
            edit.setPlaceholderText(f"variant {label}" + ("" if label == "B" else " (optional)"))
            edit.setMaximumHeight(44)
            self.variants.append(edit)
        self.test_share = QSpinBox()
        self.test_share.setRange(1, 100)
        self.test_share.setValue(20)
        self.test_share.setPrefix("test share ")
        self.test_share.setSuffix(" %")
        self.ab_metric = QComboBox()
        self.ab_metric.addItems(list(AB_METRICS))
        self.decide_after = QLineEdit("24h")
        self.decide_after.setObjectName("decide_after")
        self.decide_after.setToolTip("the test window: 90s, 30m, 24h, 2d")
        self.ab_box = QWidget()
        ab_lay = QVBoxLayout(self.ab_box)
        ab_lay.setContentsMargins(0, 0, 0, 0)
        for edit in self.variants:
            ab_lay.addWidget(edit)
        # Two short rows: in one the composer grew past 1280 px beside the campaign list.
        ab_row = QHBoxLayout()
        ab_row.addWidget(self.test_share)
        ab_row.addWidget(self.ab_metric, 1)
        ab_lay.addLayout(ab_row)
        ab_when = QHBoxLayout()
        ab_when.addWidget(QLabel("decide after"))
        ab_when.addWidget(self.decide_after, 1)
        ab_lay.addLayout(ab_when)
        self.ab_box.setVisible(False)
        self.error = error_label()
        self.preview_for = QComboBox()
        self.preview_for.setObjectName("preview_for")
        # A long name must not widen the composer (and with it the window) past 1280 px.
        for combo in (self.preview_for, self.bot):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(12)
        self.preview = MessagePreview()
        self.create_btn = QPushButton("Save &draft")
        self.send_btn = QPushButton("&Send")
        self.send_btn.setObjectName("send")
        self.people: list[Any] = []
        self.estimate: Any = None
        self.touched = False

        media_w = QWidget()
        media = QVBoxLayout(media_w)
        media.setContentsMargins(0, 0, 0, 0)
        media.addWidget(self.media_kind)
        for w in (self.file_row, self.album_box, self.copy_from):
            media.addWidget(w)
        # Two short rows: in one the composer grew ~40 px past 1280 beside the campaign list.
        options = QHBoxLayout()
        options.addWidget(self.silent)
        options.addWidget(self.protect)
        options.addStretch(1)
        rate = QHBoxLayout()
        rate.addWidget(self.link_preview)
        rate.addWidget(self.max_rate)
        rate.addStretch(1)
        seg = QHBoxLayout()
        seg.addWidget(self.segment, 1)
        seg.addWidget(self.audience)
        when = QHBoxLayout()
        when.addWidget(self.scheduled)
        when.addWidget(self.at, 1)
        form = QFormLayout()
        form.addRow("Bot", self.bot)
        form.addRow("Name", self.name)
        form.addRow("Message", media_w)
        form.addRow("Format", self.parse_mode)
        form.addRow("Text", self.text)
        form.addRow("", self.variables)
        form.addRow("Buttons", self.buttons)
        form.addRow("Options", options)
        form.addRow("", rate)
        form.addRow("", self.ab_on)
        form.addRow("", self.ab_box)
        form.addRow("Audience", seg)
        form.addRow("When", when)
        form.addRow("", self.paid)
        form.addRow("", self.stars)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addLayout(form)
        lv.addWidget(self.error)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.create_btn)
        row.addWidget(self.send_btn)
        lv.addLayout(row)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(QLabel("Preview for"))
        rv.addWidget(self.preview_for)
        rv.addWidget(self.preview, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(split)

        v = view
        v.track(self.variables.activated, self._insert_variable)
        for sig in (self.text.textChanged, self.buttons.textChanged):
            v.track(sig, self.changed)
        for sig in (
            self.segment.textChanged,
            self.media_path.textChanged,
            self.copy_from.textChanged,
        ):
            v.track(sig, lambda _t: self.changed())
        for sig in (self.parse_mode.currentIndexChanged, self.preview_for.currentIndexChanged):
            v.track(sig, lambda _i: self.changed())
        v.track(self.media_kind.currentIndexChanged, lambda _i: self._kind_changed())
        for box in (self.paid, self.silent, self.protect, self.link_preview):
            v.track(box.toggled, lambda _b: self.changed())
        v.track(self.max_rate.valueChanged, lambda _v: self.changed())
        v.track(self.album.model().rowsMoved, lambda *_a: self.changed())
        v.track(self.album_add.clicked, self._album_add)
        v.track(self.album_remove.clicked, self._album_remove)
        v.track(self.album_up.clicked, lambda: self._album_move(-1))
        v.track(self.album_down.clicked, lambda: self._album_move(1))
        v.track(self.ab_on.toggled, self.ab_box.setVisible)
        v.track(self.bot.currentTextChanged, lambda _t: self._bot_changed())
        v.track(self.browse.clicked, self._browse)
        v.track(self.create_btn.clicked, lambda: self.submit(start=False))
        v.track(self.send_btn.clicked, lambda: self.submit(start=True))
        self._debounce = v.timer(300, self.validate, single=True)
        self._kind_changed()

    def kind(self) -> str:
        return str(self.media_kind.currentData())

    def _kind_changed(self) -> None:
        """Show the inputs of the chosen kind: a file, an album's list, or a source."""
        kind = self.kind()
        self.file_row.setVisible(kind in media.FILE_KINDS)
        self.album_box.setVisible(kind == "album")
        self.copy_from.setVisible(kind == "copy")
        # A copy is sent exactly as it is: no text of ours (the service refuses one).
        self.text.setEnabled(kind != "copy")
        self.variables.setEnabled(kind != "copy")
        self.text.setPlaceholderText(
            "a copy has no text of its own"
            if kind == "copy"
            else "Hi {first_name}! …"
            if kind == "text"
            else "caption (optional)"
        )
        self.changed()

    # -- the album's files -----------------------------------------------------------------

    def album_items(self) -> list[media.MediaItem]:
        role = Qt.ItemDataRole.UserRole
        return [self.album.item(i).data(role) for i in range(self.album.count())]

    def add_album_file(self, path: str, kind: str | None = None) -> None:
        """Add a file; its kind from its name as ``--album FILE`` tells it (photo or video),
        else the operator is asked (document or audio, or a photo with an odd suffix)."""
        if kind is None:
            try:
                kind = media.album_kind(path).kind
            except UserError:
                kind = self.view.ctx.ask_item(
                    self, "Album file", f"What is {Path(path).name}?", list(media.ALBUM_KINDS)
                )
                if kind is None:
                    return
        item = QListWidgetItem(f"{kind}: {Path(path).name}")
        item.setToolTip(path)
        item.setData(Qt.ItemDataRole.UserRole, media.MediaItem(kind, Path(path)))
        self.album.addItem(item)
        self.album.setCurrentItem(item)
        self.changed()

    def _album_add(self) -> None:
        name = self.view.ctx.choose_file(self, "Album file", False)
        if name:
            self.add_album_file(name)

    def _album_remove(self) -> None:
        row = self.album.currentRow()
        if row >= 0:
            self.album.takeItem(row)
            self.changed()

    def _album_move(self, step: int) -> None:
        row = self.album.currentRow()
        to = row + step
        if row < 0 or not 0 <= to < self.album.count():
            return
        item = self.album.takeItem(row)
        self.album.insertItem(to, item)
        self.album.setCurrentRow(to)
        self.changed()

    def set_bots(self, names: list[str]) -> None:
        self.bot.blockSignals(True)
        self.bot.clear()
        self.bot.addItems(names)
        self.bot.blockSignals(False)
        self._bot_changed()

    def _bot_changed(self) -> None:
        bot = self.bot.currentText()
        if bot:
            self.view.call(self.view.ctx.services.sample_subscribers(bot, None), self._people)

    def _people(self, people: list[Any]) -> None:
        self.people = people
        self.preview_for.blockSignals(True)
        self.preview_for.clear()
        self.preview_for.addItems(
            [f"{p.first_name or '?'} (@{p.username or '-'}, {p.language or '-'})" for p in people]
            or ["(no subscriber)"]
        )
        self.preview_for.blockSignals(False)
        self.changed()

    def _insert_variable(self, i: int) -> None:
        if i > 0:
            self.text.insertPlainText(self.variables.itemText(i))
            self.text.setFocus()
        self.variables.setCurrentIndex(0)

    def _browse(self) -> None:
        name = self.view.ctx.choose_file(self, "Media file", False)
        if name:
            self.media_path.setText(name)

    def options(self) -> SendOptions:
        rate = self.max_rate.value()
        return SendOptions(
            silent=self.silent.isChecked(),
            protect=self.protect.isChecked(),
            link_preview=self.link_preview.isChecked(),
            max_rate=rate if rate > 0 else None,
        )

    def spec(self) -> CampaignSpec:
        """What is typed, as the CLI's ``campaign create`` builds it; the rules are the
        service's (``Campaigns.validate``)."""
        kind = self.kind()
        files: dict[str, Path | None] = {k: None for k in media.FILE_KINDS}
        if kind in media.FILE_KINDS:
            name = self.media_path.text().strip()
            if not name:
                raise ValidationError(f"choose the {kind} file")
            files[kind] = Path(name)
        album: list[media.MediaItem] = []
        if kind == "album":
            album = self.album_items()
            if not album:  # an empty list would read as no album at all
                media.check_album(album)
        copy_from = None
        if kind == "copy":
            copy_from = self.copy_from.text().strip()
            media.parse_copy_source(copy_from)  # an empty one would read as no copy
        at = None
        if self.scheduled.isChecked():
            at = self.at.dateTime().toPython().astimezone(UTC)  # type: ignore[attr-defined]
        return CampaignSpec(
            bot=self.bot.currentText(),
            text="" if kind == "copy" else self.text.toPlainText(),
            parse_mode=self.parse_mode.currentText(),  # type: ignore[arg-type]
            buttons=parse_buttons(self.buttons.toPlainText()),
            segment=self.segment.text().strip() or None,
            at=at,
            paid=self.paid.isChecked(),
            name=self.name.text().strip() or None,
            options=self.options(),
            album=album,
            copy_from=copy_from,
            **files,  # type: ignore[arg-type]
        )

    def changed(self) -> None:
        self.render_preview()
        self._debounce.start()

    def render_preview(self) -> None:
        try:
            spec = self.spec()
        except UserError as exc:
            self.preview.show_problem(str(exc))
            return
        i = self.preview_for.currentIndex()
        p = self.people[i] if 0 <= i < len(self.people) else None
        values = {
            "first_name": p.first_name if p else "",
            "username": p.username if p else "",
            "language": p.language if p else "",
            "chat_id": str(p.chat_id) if p else "",
        }
        kind = self.kind()
        path = getattr(spec, kind, None) if kind in media.FILE_KINDS else None
        try:
            page = message_html(
                spec.text,
                parse_mode=spec.parse_mode,
                values=values,
                buttons=spec.buttons,
                file=media.MediaItem(kind, path) if path is not None else None,
                album=spec.album,
                copy_from=spec.copy_from,
                options=spec.options,
                dark=self.view.ctx.theme == "dark",
            )
        except UserError as exc:
            self.preview.show_problem(str(exc))
            return
        self.preview.show_message(page)

    def validate(self) -> None:
        """``Campaigns.validate`` on what is typed: its one error inline, else the audience."""
        if not self.bot.currentText():
            show_error(self.error, "register a bot first (Settings)")
            return
        if not self.text.toPlainText().strip() and self.kind() == "text" and not self.touched:
            return  # an empty composer is not an error yet
        self.touched = True
        try:
            spec = self.spec()
        except UserError as exc:
            self._invalid(str(exc))
            return
        self.view.call(self.view.ctx.services.validate(spec), self._valid, self._invalid)

    def _valid(self, est: Any) -> None:
        self.estimate = est
        show_error(self.error, None)
        self.audience.setText(f"{est.audience:,} recipients")
        eta = timedelta(seconds=round(est.seconds))
        self.stars.setText(
            f"about {est.stars:g} Stars · about {eta} at the paid rate"
            if self.paid.isChecked()
            else f"about {eta} at Telegram's free rate"
        )
        self.view.validated += 1

    def _invalid(self, line: str) -> None:
        self.estimate = None
        show_error(self.error, line)
        self.audience.setText("")
        self.view.validated += 1

    def submit(self, *, start: bool) -> None:
        try:
            spec = self.spec()
        except UserError as exc:
            self._invalid(str(exc))
            return
        ctx = self.view.ctx

        def go(est: Any) -> None:
            if spec.paid and not ctx.confirm(
                self,
                "Paid broadcast",
                f"This paid broadcast goes to {est.audience:,} subscribers and costs about "
                f"{est.stars:g} Stars (0.1 Star per message above the free rate). Send it?",
            ):
                return
            if (
                start
                and spec.at is None
                and not spec.paid
                and not ctx.confirm(
                    self, "Send campaign", f"Send this message to {est.audience:,} subscribers now?"
                )
            ):
                return
            self.view.call(
                ctx.services.create_campaign(spec, start=start), self.view.created, self._invalid
            )

        if self.ab_on.isChecked():
            self._submit_ab(spec, start=start)
            return
        self.view.call(ctx.services.validate(spec), go, self._invalid)

    def ab_texts(self) -> list[str]:
        """Variant A (the text) and every filled variant box; the service checks 2-4."""
        rest = [e.toPlainText() for e in self.variants if e.toPlainText().strip()]
        return [self.text.toPlainText(), *rest]

    def _submit_ab(self, spec: CampaignSpec, *, start: bool) -> None:
        ctx = self.view.ctx
        variants = self.ab_texts()
        share = self.test_share.value() / 100

        def go(est: Any) -> None:
            if start and not ctx.confirm(
                self,
                "Send A/B test",
                f"{share:.0%} of the {est.audience:,} subscribers get one of the {len(variants)} "
                f"variants now; after {self.decide_after.text().strip()} the variants are "
                f"compared on {self.ab_metric.currentText()} and a significant winner goes to the "
                "rest (otherwise you pick one). Start it?",
            ):
                return
            self.view.call(
                ctx.services.create_ab_test(
                    spec,
                    variants,
                    test_share=share,
                    metric=self.ab_metric.currentText(),
                    decide_after=self.decide_after.text().strip(),
                    start=start,
                ),
                self.view.created,
                self._invalid,
            )

        self.view.call(ctx.services.validate(spec), go, self._invalid)


class Detail(QWidget):
    """A campaign's progress while it runs and its report once it ends."""

    def __init__(self, view: CampaignsView) -> None:
        super().__init__()
        self.view = view
        self.campaign_id: int | None = None
        self.heading = QLabel()
        self.heading.setObjectName("heading")
        self.content = QLabel()  # the message kind and the send options
        self.content.setObjectName("content")
        self.content.setWordWrap(True)
        self.progress = QProgressBar()
        self.numbers = QLabel()
        self.numbers.setObjectName("numbers")
        self.chart = OutcomeChart()
        self.rate = RateChart("rate (msg/s)")
        self.clock = time.monotonic
        self.pause_btn = QPushButton("&Pause")
        self.resume_btn = QPushButton("&Resume")
        self.cancel_btn = QPushButton("Ca&ncel")
        self.resend_btn = QPushButton("Resend &uncertain…")
        self.export_btn = QPushButton("&Export CSV…")
        self.edit_btn = QPushButton("Ed&it…")
        self.recall_btn = QPushButton("Re&call…")
        self.actions_label = QLabel()
        self.actions_label.setObjectName("actions")
        self.taken_actions: list[dict[str, Any]] = []
        self.reasons = RowsModel(REASON_COLUMNS, self)
        self.recipients = RowsModel(RECIPIENT_COLUMNS, self)
        self.error = error_label()
        self.report: dict[str, Any] | None = None
        self.all_rows = False  # the finished campaign's recipients were read
        self.read_once = False  # the report was read since the campaign was opened
        self.live_report = True  # it can change after the end: buttons or an A/B test
        self.status: dict[str, Any] = {}
        reasons_t = row_table(self.reasons, "reasons")
        recips_t = row_table(self.recipients, "recipients", single=False, fit=False)
        self.clicks = ClicksPanel()
        self.ab = AbPanel(view)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detail_tabs")
        self.tabs.addTab(recips_t, "Recipients")
        # By reason sits with the other tables: beside the charts it was ~100 px wide.
        self.tabs.addTab(reasons_t, "By reason")
        self.tabs.addTab(self.clicks, "Clicks")
        self.tabs.addTab(self.ab, "A/B test")
        # Two rows of buttons: in one row they made the detail ~680 px wide, which pushed
        # the window past 1280 px beside the campaign list.
        live = QHBoxLayout()
        for b in (self.pause_btn, self.resume_btn, self.cancel_btn):
            live.addWidget(b)
        live.addStretch(1)
        live.addWidget(self.export_btn)
        after = QHBoxLayout()
        for b in (self.resend_btn, self.edit_btn, self.recall_btn):
            after.addWidget(b)
        after.addStretch(1)
        self.numbers.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.heading)
        lay.addWidget(self.content)
        lay.addWidget(self.progress)
        lay.addWidget(self.numbers)
        lay.addLayout(live)
        lay.addLayout(after)
        lay.addWidget(self.actions_label)
        lay.addWidget(self.error)
        split = QSplitter(Qt.Orientation.Vertical)
        top = QSplitter()
        top.addWidget(self.chart.widget)
        top.addWidget(self.rate.widget)
        split.addWidget(top)
        split.addWidget(self.tabs)
        lay.addWidget(split, 1)
        v = view
        for btn, action in ((self.pause_btn, "pause"), (self.resume_btn, "resume")):
            v.track(btn.clicked, lambda _c=False, a=action: self.act(a))
        v.track(self.cancel_btn.clicked, self._cancel)
        v.track(self.resend_btn.clicked, self.resend_uncertain)
        v.track(self.export_btn.clicked, self._export)
        v.track(self.edit_btn.clicked, self.edit)
        v.track(self.recall_btn.clicked, self.recall)

    def show_campaign(self, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self.report = None
        self.all_rows = False
        self.read_once = False
        self.live_report = True
        self.taken_actions = []
        self.actions_label.setText("")
        self.content.setText("")
        self.recipients.set_rows([])
        self.clicks.show_summary(None)
        self.tabs.setTabVisible(self.tabs.indexOf(self.ab), False)
        self.ab.campaign_id = None
        self.refresh()

    def reread(self) -> None:
        """Read the report (clicks, A/B test) again now, not at the next few seconds' turn."""
        self.report = None
        self.read_once = False
        self.refresh()

    def refresh(self) -> None:
        if self.campaign_id is None:
            return
        cid = self.campaign_id
        self.view.call(
            self.view.ctx.services.campaign_status(cid), lambda st: self._status(cid, st)
        )

    def _status(self, cid: int, st: dict[str, Any]) -> None:
        if cid != self.campaign_id:
            return
        self.status = st
        state = st["state"]
        done = sum(st.get(s, 0) for s in STATES if s not in ("pending", "sending"))
        self.progress.setMaximum(max(1, st["audience"]))
        self.progress.setValue(done)
        eta = "-" if st["eta_s"] is None else f"{st['eta_s']:.0f} s"
        self.heading.setText(f"Campaign {cid}: {state}")
        # Rate and ETA only mean something while it runs ("0.0/s, ETA 0 s" on a finished one).
        live = f"   rate {st['rate_per_s']}/s  ETA {eta}" if state == "running" else ""
        self.numbers.setText("  ".join(f"{s} {st.get(s, 0):,}" for s in STATES) + live)
        self.chart.show({s: st.get(s, 0) for s in STATES})
        running = {f"campaign {cid}": float(st["rate_per_s"])} if state == "running" else {}
        self.rate.show(running, now=self.clock())
        self.pause_btn.setEnabled(state == "running")
        self.resume_btn.setEnabled(state == "paused")
        self.cancel_btn.setEnabled(state in ("running", "paused", "scheduled", "draft"))
        self.resend_btn.setEnabled(st.get("uncertain", 0) > 0 and state not in ("running",))
        finished = state in ("completed", "cancelled") and st.get("sent", 0) > 0
        self.edit_btn.setEnabled(finished)
        self.recall_btn.setEnabled(finished)
        if finished and (not self.taken_actions or self.view.ticks % 2 == 0):
            self.view.call(
                self.view.ctx.services.campaign_actions(cid), lambda a: self._actions(cid, a)
            )
        ended = state in ("completed", "cancelled")
        # The report carries the clicks and the A/B test, which go on after the last
        # delivery: read on opening, then, for a campaign with buttons or an A/B test, every
        # 5 s (every 10 s while it sends, off the recipients' turn: its reads stalled the
        # window at 1,000 msg/s); ``self.report`` is the one read after the end.
        again = self.live_report and (
            self.view.ticks % 5 == 0 if ended else self.view.ticks % 10 == 7
        )
        if (ended and self.report is None) or not self.read_once or again:
            self.read_once = True
            self.view.call(
                self.view.ctx.services.campaign_report(cid),
                functools.partial(self._report, cid, final=ended),
            )
        if ended and not self.all_rows:
            self.all_rows = True
            self.view.call(
                self.view.ctx.services.recipients(cid), lambda rows: self._recipients(cid, rows)
            )
        elif not ended and self.view.ticks % 5 == 0:
            # While it runs, the first rows only: thousands re-read and re-shown every few
            # seconds cost the window 100-500 ms each time at 1,000 msg/s.
            self.view.call(
                self.view.ctx.services.recipients(cid, limit=RUNNING_ROWS),
                lambda rows: self._recipients(cid, rows),
            )

    def _actions(self, cid: int, actions: list[dict[str, Any]]) -> None:
        if cid != self.campaign_id:
            return
        self.taken_actions = actions
        lines = []
        for a in actions:
            counts = ", ".join(
                f"{k} {a[k]}"
                for k in ("edited", "recalled", "failed", "suppressed", "uncertain", "pending")
                if a[k]
            )
            lines.append(f"{a['kind']} {a['id']}: {a['state']} ({counts or 'nothing yet'})")
        self.actions_label.setText("\n".join(lines))

    def edit(self) -> None:
        """Ask for the new text (starting from what the messages say), check it like a new
        campaign, say what will happen, then edit."""
        cid = self.campaign_id
        if cid is None:
            return
        services = self.view.ctx.services

        def asked(current_and_mode: tuple[str, str]) -> None:
            current, mode = current_and_mode
            text = self.view.ctx.ask_text(
                self, "Edit campaign", "New text for every delivered message:", current
            )
            if text is None:
                return
            spec = ActionSpec(
                campaign_id=cid,
                kind="edit",
                text=text,
                parse_mode=mode,  # type: ignore[arg-type]
            )
            self.view.call(
                services.plan_campaign_action(spec),
                lambda plan: self._confirmed(spec, EDIT_CONFIRM.format(what=plan.describe())),
                lambda line: show_error(self.error, line),
            )

        self.view.call(services.action_text(cid), asked, lambda line: show_error(self.error, line))

    def recall(self) -> None:
        cid = self.campaign_id
        if cid is None:
            return
        spec = ActionSpec(campaign_id=cid, kind="recall")
        self.view.call(
            self.view.ctx.services.plan_campaign_action(spec),
            lambda plan: self._confirmed(spec, RECALL_CONFIRM.format(what=plan.describe())),
            lambda line: show_error(self.error, line),
        )

    def _confirmed(self, spec: ActionSpec, message: str) -> None:
        title = "Edit campaign" if spec.kind == "edit" else "Recall campaign"
        if not self.view.ctx.confirm(self, title, message):
            return
        show_error(self.error, None)
        self.view.call(
            self.view.ctx.services.start_campaign_action(spec),
            lambda aid: (self.view.ctx.status(f"{spec.kind} {aid} started"), self.refresh()),
            lambda line: show_error(self.error, line),
        )

    def _report(self, cid: int, report: dict[str, Any], *, final: bool) -> None:
        if cid != self.campaign_id:
            return
        if final:
            self.report = report
        self.live_report = bool(report["clicks"]["buttons"]) or "ab_test" in report
        self.content.setText(describe_content(report["campaign"]))
        self.reasons.set_rows(report["reasons"])
        self.clicks.show_summary(report.get("clicks"))
        if "ab_test" in report:
            self.view.call(self.view.ctx.services.ab_results(cid), lambda ab: self._ab(cid, ab))

    def _ab(self, cid: int, ab: dict[str, Any] | None) -> None:
        if cid != self.campaign_id or ab is None:
            return
        self.ab.show_test(cid, ab)
        tab = self.tabs.indexOf(self.ab)
        if not self.tabs.isTabVisible(tab):  # an A/B test opens on its results
            self.tabs.setTabVisible(tab, True)
            self.tabs.setCurrentIndex(tab)

    def _recipients(self, cid: int, rows: list[dict[str, Any]]) -> None:
        if cid == self.campaign_id:
            self.recipients.set_rows(rows)

    def act(self, action: str) -> None:
        if self.campaign_id is None:
            return
        self.view.call(
            self.view.ctx.services.campaign_action(self.campaign_id, action),
            lambda _info: (self.refresh(), self.view.reload()),
            lambda line: show_error(self.error, line),
        )

    def _cancel(self) -> None:
        if self.view.ctx.confirm(
            self, "Cancel campaign", "Recipients not yet sent will be marked cancelled. Cancel?"
        ):
            self.act("cancel")

    def resend_uncertain(self) -> None:
        n = int(self.status.get("uncertain", 0))
        if self.campaign_id is None or not n:
            return
        if not self.view.ctx.confirm(self, "Resend uncertain", RESEND_WARNING.format(n=n)):
            return
        self.report = None
        self.all_rows = False
        self.view.call(
            self.view.ctx.services.resend_uncertain(self.campaign_id),
            lambda k: (
                self.view.ctx.status(f"{k} uncertain recipient(s) queued again"),
                self.refresh(),
            ),
            lambda line: show_error(self.error, line),
        )

    def _export(self) -> None:
        name = self.view.ctx.choose_file(self, "Export report", True)
        if name:
            self.export_to(Path(name))

    def export_to(self, path: Path) -> None:
        if self.campaign_id is None:
            return
        self.view.call(
            self.view.ctx.services.export_report(self.campaign_id, path),
            lambda n: self.view.ctx.status(f"exported {n} recipient(s) to {path}"),
            lambda line: show_error(self.error, line),
        )


class CampaignsView(View):
    title = "Campaigns"
    refresh_ms = 1000

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.validated = 0
        self.ticks = 0
        self.list = RowsModel(LIST_COLUMNS, self)
        self.table = row_table(self.list, "campaigns", stretch=1)
        self.table.setWordWrap(False)  # a long name is elided on its one line
        self.new_btn = QPushButton("&New campaign")
        self.composer = Composer(self)
        # The composer grows with what it composes (an album's list, the A/B box): it scrolls
        # rather than push the window past 800 px high. Its minimum width is the composer's, so
        # at 1280 px it scrolls sideways only by the vertical bar's width, and only when both
        # the album and the A/B box are open.
        self.composer_area = QScrollArea()
        self.composer_area.setWidget(self.composer)
        self.composer_area.setWidgetResizable(True)
        self.composer_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.composer_area.setMinimumWidth(self.composer.minimumSizeHint().width())
        self.detail = Detail(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.composer_area)
        self.stack.addWidget(self.detail)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.new_btn)
        lv.addWidget(self.table, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 3)
        # The list's six columns need this much (at 1280 px the composer keeps ~650 px).
        left.setMinimumWidth(LIST_WIDTH)
        QVBoxLayout(self).addWidget(split)
        self.track(self.new_btn.clicked, self.compose)
        self.track(
            self.table.selectionModel().currentRowChanged, lambda cur, _p: self._picked(cur.row())
        )
        self.call(ctx.services.bots(), lambda bots: self.composer.set_bots([b.name for b in bots]))
        self.reload()

    def reload(self) -> None:
        self.call(self.ctx.services.campaign_list(), self.list.set_rows)

    def refresh(self) -> None:
        self.ticks += 1
        if self.ticks % 3 == 0:
            self.reload()
        if self.stack.currentWidget() is self.detail:
            self.detail.refresh()

    def compose(self) -> None:
        self.table.clearSelection()
        self.stack.setCurrentWidget(self.composer_area)
        self.composer.text.setFocus()

    def _picked(self, row: int) -> None:
        info = self.list.row(row)
        if info is not None:
            self.open_campaign(info.id)

    def open_campaign(self, campaign_id: int) -> None:
        self.stack.setCurrentWidget(self.detail)
        self.detail.show_campaign(campaign_id)

    def created(self, info: Any) -> None:
        self.ctx.status(f"campaign {info.id} {info.state}")
        self.reload()
        self.open_campaign(info.id)

    def screenshot_states(self) -> list[tuple[str, Any]]:
        """What the README shows of this screen: a composed message, a running and a
        finished campaign (the demo home has both)."""

        def composed() -> None:
            self.compose()
            c = self.composer
            c.name.setText("spring drop")
            c.text.setPlainText(
                "Hi <b>{first_name}</b>! The <i>spring collection</i> is here: "
                '<a href="https://example.com">see it first</a>.\nUse code <code>SPRING10</code>.'
            )
            c.buttons.setPlainText(
                "Shop now=https://example.com/shop\nSizes=https://example.com/sizes"
            )
            c.segment.setText("source:newsletter or source:friend")

        def pick(state: str) -> None:
            for info in self.list.rows:
                if info.state == state:
                    self.open_campaign(info.id)
                    return

        def ab_composed() -> None:
            composed()
            c = self.composer
            c.name.setText("spring drop A/B")
            c.buttons.setPlainText("Show me=cb:tag=spring\nShop now=https://example.com/shop")
            c.ab_on.setChecked(True)
            c.variants[0].setPlainText("{first_name}, the spring collection is in: 10% off today.")
            c.ab_metric.setCurrentText("clicks")

        return [
            ("composer", composed),
            ("composer-ab", ab_composed),
            ("running", lambda: pick("running")),
            ("report", lambda: pick("completed")),
            ("clicks", lambda: self.detail.tabs.setCurrentWidget(self.detail.clicks)),
        ]
