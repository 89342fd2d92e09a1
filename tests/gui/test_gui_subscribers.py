"""The subscribers screen on a real SQLite home whose subscribers started the bot through the
sandbox: the parser's error inline at its position, the live count after the debounce,
tag/untag of the selection (read back through the services), and the CSV export."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel
from tests.gui.conftest import BOT, console_on, until

from botdesk.audience import CSV_COLUMNS, csv_row
from botdesk.errors import SegmentSyntaxError
from botdesk.gui.views.subscribers import SubscribersView
from botdesk.segments import parse_segment

USERS = 12
BAD = "lang:de and ("


def caret_position(label_html: str) -> int:
    """Where the view put its caret: the spaces before ``^`` on the last line."""
    last = label_html.rsplit("<br>", 1)[1]
    return last.split("^", 1)[0].count("&nbsp;")


def test_segment_error_count_tag_untag_export(drive, home: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=USERS) as (window, _sb, people):
            view = window.open_screen(SubscribersView)
            services = window.ctx.services
            await until(lambda: view.count.text() == f"{USERS} subscribers", what="count")

            # A bad expression: the parser's message and a caret under its position.
            try:
                parse_segment(BAD)
            except SegmentSyntaxError as exc:
                expected = exc
            view.segment.setText(BAD)
            assert view.error.isVisible()
            assert str(expected) in html.unescape(re.sub("<[^>]+>", "", view.error.text()))
            assert caret_position(view.error.text()) == expected.position > 0
            assert view.count.text() == ""

            # A good one: the count of what it selects, once the debounce has run.
            langs = [u.language_code for u in people]
            lang = max(set(langs), key=langs.count)
            view.segment.setText(f"lang:{lang}")
            assert not view.error.isVisible()
            n = langs.count(lang)
            want = f"{n:,} subscriber{'s' if n != 1 else ''}"
            await until(lambda: view.count.text() == want, what=want)

            # A count still in flight when the expression turns bad must not land.
            shown = view.model
            view.reload()
            view.segment.setText(BAD)
            await window.ctx.bridge.drain()
            assert view.count.text() == "" and view.model is shown and view.error.isVisible()

            # Tag the first three rows of the whole list, then untag one of them.
            view.segment.setText("")
            await until(lambda: view.count.text() == f"{USERS} subscribers", what="all again")
            model = view.model
            assert model is not None
            await until(lambda: model.chat_ids([0, 1, 2]) and len(model.chat_ids([0, 1, 2])) == 3)
            chosen = model.chat_ids([0, 1, 2])
            view.table.selectionModel().select(
                QItemSelection(model.index(0, 0), model.index(2, model.columnCount() - 1)),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            assert view.selected_rows() == [0, 1, 2]
            view.tag_name.setText("vip")
            view.tag_selection(remove=False)
            await window.ctx.bridge.drain()
            assert not view.error.isVisible()

            async def tagged() -> set[int]:
                views, _ = await services.subscriber_page(
                    BOT, "tag:vip", after=None, skip=0, limit=100
                )
                return {v.chat_id for v in views}

            assert await tagged() == set(chosen)
            assert await services.subscriber_count(BOT, "tag:vip") == 3

            await until(lambda: view.model is not model, what="reloaded after tagging")
            model = view.model
            assert model is not None
            await until(lambda: len(model.chat_ids([1])) == 1, what="row 1 loaded")
            view.table.selectRow(1)
            assert view.selected_rows() == [1]
            view.tag_selection(remove=True)
            await window.ctx.bridge.drain()
            assert await tagged() == {chosen[0], chosen[2]}

            # Export the segment: the service's columns, and exactly the rows it selects.
            view.segment.setText("tag:vip")
            await until(lambda: view.count.text() == "2 subscribers", what="2 tagged")
            out = tmp_path / "vip.csv"
            view.export_to(out)
            await window.ctx.bridge.drain()
            rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
            assert tuple(rows[0]) == CSV_COLUMNS
            views, _ = await services.subscriber_page(BOT, "tag:vip", after=None, skip=0, limit=10)
            assert rows[1:] == [["" if c is None else str(c) for c in csv_row(v)] for v in views]
            assert {int(r[0]) for r in rows[1:]} == {chosen[0], chosen[2]}

    drive(scenario())


def test_a_tag_without_selection_says_so_inline(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=2) as (window, _sb, _people):
            view = window.open_screen(SubscribersView)
            await until(lambda: view.count.text() == "2 subscribers", what="count")
            view.tag_selection(remove=False)
            assert view.error.isVisible() and "tag" in view.error.text()
            view.tag_name.setText("vip")
            view.tag_selection(remove=False)
            assert "select" in view.error.text()
            await window.ctx.bridge.drain()
            assert await window.ctx.services.subscriber_count(BOT, "tag:vip") == 0

    drive(scenario())
