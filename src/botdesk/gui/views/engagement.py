"""A campaign's engagement in its detail: clicks per button (``clicks.summary``, through the
campaign report) and an A/B test's variants, counts and decision (``ab_campaigns``), with the
`campaign decide` action behind a confirmation. Numbers are the services'; nothing is
computed again here but their formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from botdesk.ab_campaigns import recorded_difference, variant_label
from botdesk.gui.models.rows import RowsModel
from botdesk.gui.views.base import error_label, row_table, show_error

if TYPE_CHECKING:
    from botdesk.gui.views.campaigns import CampaignsView


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def secs(v: float | None) -> str:
    return "-" if v is None else f"{v:g} s"


def _untracked(r: dict[str, Any], text: Any) -> Any:
    return "not tracked" if r["clicks"] is None else text


CLICK_COLUMNS = (
    ("button", lambda r: r["label"]),
    ("kind", lambda r: r["kind"]),
    ("unique clickers", lambda r: _untracked(r, r["unique"])),
    ("clicks", lambda r: _untracked(r, r["clicks"])),
    ("CTR", lambda r: _untracked(r, pct(r["ctr"]))),
    ("median first click", lambda r: _untracked(r, secs(r["median_first_click_s"]))),
)
VARIANT_COLUMNS = (
    ("variant", lambda v: variant_label(v["number"])),
    ("campaign", lambda v: v.get("campaign_id", "")),
    ("delivered", lambda v: v["delivered"]),
    ("did it", lambda v: v["successes"]),
    ("rate", lambda v: pct(v["successes"] / v["delivered"]) if v["delivered"] else "-"),
    ("unsubscribed", lambda v: v["left"]),
)
_DID = {"replies": "replied", "unsubscribes": "stayed subscribed", "clicks": "clicked"}
DECIDE_CONFIRM = (
    "This runs the test on {metric} now, once: if one variant is significantly better it is "
    "sent to the rest of the audience (the holdout) at once; otherwise nothing is sent and "
    "you pick a variant. It cannot be undone. Decide?"
)
PICK_CONFIRM = (
    "Variant {label} will be sent to the rest of the audience (the holdout) now, whatever the "
    "test says. It cannot be undone. Send it?"
)


class ClicksPanel(QWidget):
    """Per button: unique clickers, clicks, click-through rate, median time to first click."""

    def __init__(self) -> None:
        super().__init__()
        self.model = RowsModel(CLICK_COLUMNS, self)
        self.total = QLabel()
        self.total.setObjectName("clicks_total")
        self.total.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.total)
        lay.addWidget(row_table(self.model, "clicks", stretch=0), 1)

    def show_summary(self, c: dict[str, Any] | None) -> None:
        if not c or not c["buttons"]:
            self.model.set_rows([])
            self.total.setText("This campaign has no buttons.")
            return
        self.model.set_rows(c["buttons"])
        self.total.setText(
            f"All buttons: {c['unique']} unique clicker(s), {c['clicks']} click(s), "
            f"CTR {pct(c['ctr'])} (unique clickers / {c['delivered']} delivered), "
            f"median first click {secs(c['median_first_click_s'])}"
        )


def decision_text(ab: dict[str, Any]) -> str:
    """The recorded decision in words (the CLI's wording), or why there is none yet."""
    d = ab.get("decision")
    if not ab.get("decided_at") or not d:
        if not ab.get("started_at"):
            return "Pending: the test starts with the campaign."
        end = datetime.fromisoformat(ab["window_end"])
        if datetime.now(UTC) < end:
            return (
                f"Pending: decided after the window ends at {end:%Y-%m-%d %H:%M:%S} UTC "
                "(counts so far above; no early look at the test)."
            )
        return "Pending: the window has ended; Decide… runs the test."
    lines = []
    if "best" in d:
        best = variant_label(d["best"])
        diff = recorded_difference(d)
        if d["outcome"] == "winner":
            lines.append(f"Decided: winner variant {best}. {diff}")
        else:
            lines.append(f"Decided: no significant difference. {diff}")
    else:
        lines.append(f"Decided: {d['outcome']}.")
    if ab.get("winner"):
        lines.append(f"Variant {variant_label(ab['winner'])} was sent to the rest of the audience.")
    elif ab.get("state") == "undecided":
        lines.append("Nothing sent yet: Pick variant… chooses what the rest receives.")
    return " ".join(lines)


class AbPanel(QWidget):
    """An A/B test's variants with their metric and counts, its decision, Decide…/Pick…."""

    def __init__(self, view: CampaignsView) -> None:
        super().__init__()
        self.view = view
        self.campaign_id: int | None = None
        self.ab: dict[str, Any] | None = None
        self.settings = QLabel()
        self.settings.setObjectName("ab_settings")
        self.settings.setWordWrap(True)
        self.model = RowsModel(VARIANT_COLUMNS, self)
        self.decision = QLabel()
        self.decision.setObjectName("ab_decision")
        self.decision.setWordWrap(True)
        self.decide_btn = QPushButton("&Decide…")
        self.pick_btn = QPushButton("Pick &variant…")
        self.error = error_label()
        buttons = QHBoxLayout()
        buttons.addWidget(self.decide_btn)
        buttons.addWidget(self.pick_btn)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.settings)
        lay.addWidget(row_table(self.model, "variants", stretch=1), 1)
        lay.addWidget(self.decision)
        lay.addLayout(buttons)
        lay.addWidget(self.error)
        view.track(self.decide_btn.clicked, self.decide)
        view.track(self.pick_btn.clicked, self.pick)

    def show_test(self, campaign_id: int, ab: dict[str, Any]) -> None:
        self.campaign_id = campaign_id
        self.ab = ab
        did = _DID.get(ab["metric"], ab["metric"])
        self.model.set_rows(self._variants(ab))
        self.settings.setText(
            f"A/B test on {ab['metric']} (a success: the recipient {did}; unsubscribing in the "
            f"window counts against a variant): test share {ab['test_share']:.0%}, window "
            f"{ab['decide_after_s'] / 3600:g} h, seed {ab['seed']}; state {ab['state']}."
        )
        self.decision.setText(decision_text(ab))
        ended = bool(ab.get("window_end")) and datetime.now(UTC) >= datetime.fromisoformat(
            ab["window_end"]
        )
        self.decide_btn.setEnabled(ab["state"] == "testing" and ended)
        self.pick_btn.setEnabled(ab["state"] == "undecided" or (ab["state"] == "testing" and ended))

    @staticmethod
    def _variants(ab: dict[str, Any]) -> list[dict[str, Any]]:
        kids = ab["variant_campaigns"]
        rows = (ab.get("decision") or {}).get("variants") or ab.get("so_far") or []
        if not rows:  # not started: the variants, no counts yet
            rows = [
                {"number": i, "delivered": 0, "successes": 0, "left": 0}
                for i in range(1, len(kids) + 1)
            ]
        return [r | {"campaign_id": kids[r["number"] - 1]} for r in rows]

    def decide(self) -> None:
        if self.campaign_id is None or self.ab is None:
            return
        if not self.view.ctx.confirm(
            self, "Decide A/B test", DECIDE_CONFIRM.format(metric=self.ab["metric"])
        ):
            return
        self._run(None)

    def pick(self) -> None:
        if self.campaign_id is None or self.ab is None:
            return
        labels = [variant_label(i) for i in range(1, len(self.ab["variant_campaigns"]) + 1)]
        label = self.view.ctx.ask_item(self, "Pick variant", "Send to the rest:", labels)
        if label is None:
            return
        if not self.view.ctx.confirm(self, "Pick variant", PICK_CONFIRM.format(label=label)):
            return
        self._run(labels.index(label) + 1)

    def _run(self, pick: int | None) -> None:
        assert self.campaign_id is not None
        show_error(self.error, None)
        self.view.call(
            self.view.ctx.services.decide_ab(self.campaign_id, pick=pick),
            lambda lines: (self.view.ctx.status(lines[-1]), self.view.detail.reread()),
            lambda line: show_error(self.error, line),
        )
