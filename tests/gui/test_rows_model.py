"""The short-list table model, without widgets: a refresh that changes some rows tells the
views about those rows only; one that changes nothing tells them nothing."""

from __future__ import annotations

from typing import Any

from PySide6.QtTest import QAbstractItemModelTester

from botdesk.gui.models.rows import RowsModel

COLUMNS = (("name", lambda r: r["name"]), ("sent", lambda r: r["sent"]))


def rows(*sent: int) -> list[dict[str, Any]]:
    return [{"name": f"c{i}", "sent": s} for i, s in enumerate(sent)]


def test_refresh_reports_only_the_rows_that_changed(qapp: Any) -> None:
    model = RowsModel(COLUMNS)
    QAbstractItemModelTester(model)
    changed: list[tuple[int, int, int, int]] = []
    resets: list[int] = []
    model.dataChanged.connect(
        lambda a, b, *_r: changed.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.modelReset.connect(lambda: resets.append(1))
    model.set_rows(rows(0, 0, 0, 0, 0))
    assert resets == [1] and not changed
    model.set_rows(rows(0, 0, 0, 0, 0))  # nothing new: no signal at all
    assert resets == [1] and not changed
    model.set_rows(rows(0, 5, 0, 7, 0))  # rows 1 and 3: one span over them, no reset
    assert resets == [1] and changed == [(1, 0, 3, 1)]
    assert model.data(model.index(3, 1)) == "7"
    model.set_rows(rows(0, 5))  # fewer rows: a reset
    assert resets == [1, 1] and model.rowCount() == 2
