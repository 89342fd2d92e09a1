"""Sequences (drip): the bot's sequences with their enrolments, the selected one's steps with
their ledger rows and clicks and its stop reasons, Pause / Resume, and "Load file…" to create
or update one from a YAML file (its problems inline, the lines `botdesk sequence create`
prints). Every figure is ``Sequences.stats``'s, through ``gui/services.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import (
    Context,
    View,
    error_label,
    fill_combo,
    row_table,
    show_error,
)
from botdesk.sequence_file import format_duration

LIST_COLUMNS = (
    ("id", lambda s: s["id"]),
    ("name", lambda s: s["name"]),
    ("trigger", lambda s: s["trigger"]),
    ("state", lambda s: s["state"]),
    ("version", lambda s: s["version"]),
    ("steps", lambda s: len(s["steps"])),
    ("enrolled", lambda s: s["enrolled"]),
    ("active", lambda s: s["active"]),
    ("completed", lambda s: s["completed"]),
    ("stopped", lambda s: s["stopped"]),
)


def step_clicks(row: dict[str, Any]) -> str:
    """All buttons' clicks and unique clickers (``clicks.summary``); "-" without buttons."""
    c = row.get("clicks") or {}
    if not c.get("buttons"):
        return "-"
    return f"{c['clicks']} ({c['unique']} unique)"


STEP_COLUMNS = (
    ("step", lambda r: r["step"]),
    ("delay", lambda r: format_duration(r["def"].get("delay_s"))),
    ("after", lambda r: r["def"].get("after", "")),
    ("pending", lambda r: r["pending"] + r["sending"]),
    ("sent", lambda r: r["sent"]),
    ("failed", lambda r: r["failed"]),
    ("suppressed", lambda r: r["suppressed"]),
    ("uncertain", lambda r: r["uncertain"]),
    ("expired", lambda r: r["expired"]),
    ("skipped", lambda r: r["skipped"]),
    ("cancelled", lambda r: r["cancelled"]),
    ("clicks", step_clicks),
    ("text", lambda r: " ".join(str(r["def"].get("text", "")).split())),
)
UPDATE_CONFIRM = (
    "{bot} already has a sequence {name!r} (version {version}, {state}). Replace its steps "
    "with this file's? Steps already issued keep what they were sent with, new steps are "
    "added, steps beyond the new end are cancelled. The trigger cannot change."
)


def step_rows(seq: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step's counts with its definition (delay, after, text) beside them."""
    defs = {s["number"]: s for s in seq["definition"]["steps"]}
    return [r | {"def": defs.get(r["step"], {})} for r in seq["steps"]]


def summary_text(seq: dict[str, Any]) -> str:
    d = seq["definition"]
    stops = ", ".join(f"{k} {v}" for k, v in sorted(seq["stopped_by"].items())) or "none"
    rules = ["unsubscribe", "block"] + (["reply"] if d["stop_on_reply"] else [])
    if d["goal_tag"]:
        rules.append(f"goal tag {d['goal_tag']}")
    return (
        f"Sequence {seq['name']} (id {seq['id']}), {seq['state']}, version {seq['version']} "
        f"from {d['filename']}: trigger {seq['trigger']}; quiet hours "
        f"{d['quiet_hours'] or 'none'}; stops on {', '.join(rules)}.\n"
        f"Enrolled {seq['enrolled']}, active {seq['active']}, completed {seq['completed']}, "
        f"stopped {seq['stopped']} (by reason: {stops})." + _dropped_text(d)
    )


def _dropped_text(d: dict[str, Any]) -> str:
    """The steps updates removed (their campaigns cancelled), as `sequence show` lists them."""
    dropped = d.get("dropped_steps") or []
    if not dropped:
        return ""
    parts = [
        f"step {x['number']} (campaign {x['campaign_id']}, by version {x['dropped_in_version']})"
        for x in dropped
    ]
    return f"\nDropped by updates: {', '.join(parts)}."


class SequencesView(View):
    title = "Sequences"
    refresh_ms = 2000

    def __init__(self, ctx: Context, parent: Any = None) -> None:
        super().__init__(ctx, parent)
        self.loaded = 0  # answers to the list read (tests wait on it)
        self.selected: int | None = None
        self.bot = QComboBox()
        self.bot.setObjectName("bot")
        self.bot.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.bot.setMinimumContentsLength(12)
        self.load_btn = QPushButton("&Load file…")
        self.pause_btn = QPushButton("&Pause")
        self.resume_btn = QPushButton("&Resume")
        self.error = error_label()
        self.list = RowsModel(LIST_COLUMNS, self)
        self.table = row_table(self.list, "sequences", stretch=2)
        self.table.setWordWrap(False)
        self.summary = QLabel("No sequence selected.")
        self.summary.setObjectName("sequence_summary")
        self.summary.setWordWrap(True)
        self.steps = RowsModel(STEP_COLUMNS, self)
        self.steps_table = row_table(self.steps, "steps", single=True, stretch=12)
        self.steps_table.setWordWrap(False)
        for b in (self.pause_btn, self.resume_btn):
            b.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(QLabel("Bot"))
        top.addWidget(self.bot)
        top.addWidget(self.load_btn)
        top.addStretch(1)
        top.addWidget(self.pause_btn)
        top.addWidget(self.resume_btn)
        detail = QWidget()
        dv = QVBoxLayout(detail)
        dv.setContentsMargins(0, 0, 0, 0)
        dv.addWidget(self.summary)
        dv.addWidget(self.steps_table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.error)
        lay.addWidget(split, 1)

        self.track(self.bot.currentTextChanged, lambda _t: self._bot_changed())
        self.track(self.load_btn.clicked, self._choose)
        self.track(self.pause_btn.clicked, lambda: self.set_state("paused"))
        self.track(self.resume_btn.clicked, lambda: self.set_state("active"))
        self.track(
            self.table.selectionModel().currentRowChanged, lambda cur, _p: self._picked(cur.row())
        )
        self.call(ctx.services.bots(), self._bots)

    # -- reading -------------------------------------------------------------------------

    def _bots(self, bots: list[Any]) -> None:
        fill_combo(self.bot, [b.name for b in bots])
        if not bots:
            show_error(self.error, "register a bot first (Settings)")
        self._bot_changed()

    def _bot_changed(self) -> None:
        self.selected = None
        self.list.set_rows([])
        self._show(None)
        self.refresh()

    def refresh(self) -> None:
        bot = self.bot.currentText()
        if bot:
            self.call(self.ctx.services.sequences(bot), lambda rows: self._listed(bot, rows))

    def _listed(self, bot: str, rows: list[dict[str, Any]]) -> None:
        if bot != self.bot.currentText():
            return
        self.loaded += 1
        self.list.set_rows(rows)
        ids = [r["id"] for r in rows]
        if self.selected not in ids:  # the first one, or the one just loaded
            self.selected = ids[0] if ids else None
        if self.selected is not None and self.table.currentIndex().row() != ids.index(
            self.selected
        ):
            self.table.selectRow(ids.index(self.selected))
        self._show(self.current())

    def current(self) -> dict[str, Any] | None:
        for s in self.list.rows:
            if s["id"] == self.selected:
                return dict(s)
        return None

    def _picked(self, row: int) -> None:
        s = self.list.row(row)
        if s is not None:
            self.selected = s["id"]
            self._show(s)

    def _show(self, seq: dict[str, Any] | None) -> None:
        if seq is None:
            self.summary.setText(
                "No sequence selected."
                if self.list.rows
                else "No sequences yet: Load file… stores one (format: docs/engagement.md)."
            )
            self.steps.set_rows([])
            self.pause_btn.setEnabled(False)
            self.resume_btn.setEnabled(False)
            return
        self.summary.setText(summary_text(seq))
        self.steps.set_rows(step_rows(seq))
        self.pause_btn.setEnabled(seq["state"] == "active")
        self.resume_btn.setEnabled(seq["state"] == "paused")

    # -- acting --------------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        if self.selected is None:
            return
        show_error(self.error, None)
        self.call(
            self.ctx.services.sequence_state(self.selected, state),
            lambda info: (self.ctx.status(f"sequence {info.name} is {info.state}"), self.refresh()),
            lambda line: show_error(self.error, line),
        )

    def _choose(self) -> None:
        name = self.ctx.choose_file(self, "Sequence file (YAML)", False)
        if name:
            self.load_file(Path(name))

    def load_file(self, path: Path) -> None:
        """Check the file; its problems inline, else store it (a sequence of that name on
        this bot is replaced after a confirmation, as `sequence create --update`)."""
        bot = self.bot.currentText()
        if not bot:
            show_error(self.error, "register a bot first (Settings)")
            return
        show_error(self.error, None)

        def checked(result: tuple[list[str], Any]) -> None:
            problems, existing = result
            if problems:
                show_error(self.error, "\n".join(problems))
                return
            if existing is not None and not self.ctx.confirm(
                self,
                "Update sequence",
                UPDATE_CONFIRM.format(
                    bot=bot, name=existing.name, version=existing.version, state=existing.state
                ),
            ):
                return
            self.call(
                self.ctx.services.load_sequence(path, bot, update=existing is not None),
                stored,
                lambda line: show_error(self.error, line),
            )

        def stored(result: tuple[Any, bool]) -> None:
            info, created = result
            verb = "created" if created else f"updated to version {info.version}"
            self.ctx.status(f"sequence {info.name} (id {info.id}) {verb}: {len(info.steps)} steps")
            self.selected = info.id
            self.refresh()

        self.call(
            self.ctx.services.check_sequence_file(path, bot),
            checked,
            lambda line: show_error(self.error, line),
        )
