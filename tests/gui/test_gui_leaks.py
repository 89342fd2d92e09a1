"""Opening and closing screens leaks nothing: Python objects, Qt objects, bridge calls and
signal connections stay flat over 500 screen openings, and the same check catches a view that
keeps a connection or a widget (vorta's BaseTab lesson, checked rather than trusted)."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from pathlib import Path
from typing import Any

from PySide6.QtCore import SIGNAL, QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel
from tests.gui.conftest import console_on

from botdesk.gui.views.base import View
from botdesk.gui.window import SCREENS

OPENINGS = 504  # 72 rounds of the seven screens
WARM_UP_ROUNDS = 2
TOLERANCE = 3  # a count may move by this much (a timer or a task between two snapshots)


async def settle(window: Any) -> None:
    """Let cancelled calls finish and Qt delete what was deleteLater'd."""
    await window.ctx.bridge.drain()
    for _ in range(3):
        await asyncio.sleep(0.02)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def census(window: Any) -> Counter[str]:
    """What a leak would grow: botdesk's (and pyqtgraph's) Python objects by type, Qt's own
    objects, the bridge's calls and buckets, and the connections to long-lived signals.

    Python wrappers of Qt's own classes are not counted by type: listing the children below
    makes a wrapper for each, which outlives this call (about 22 per census, whatever the
    screens did), so that count measures the census, not the console. Qt's objects are
    counted on Qt's side instead (``allWidgets``, ``findChildren``)."""
    gc.collect()
    counts: Counter[str] = Counter(
        f"py {type(o).__module__}.{type(o).__qualname__}"
        for o in gc.get_objects()
        if type(o).__module__.startswith(("botdesk", "pyqtgraph"))
    )
    bridge = window.ctx.bridge
    counts["qt all widgets"] = len(QApplication.allWidgets())
    counts["qt window's children"] = len(window.findChildren(QObject))
    counts["bridge calls in flight"] = bridge.in_flight()
    counts["bridge owners"] = len(bridge._tasks)
    counts["bridge.busy receivers"] = bridge.receivers(SIGNAL("busy(int)"))
    counts["bridge.failed receivers"] = bridge.receivers(SIGNAL("failed(QString)"))
    return counts


def growth(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    keys = set(after) | set(before)
    return {k: after[k] - before[k] for k in keys if after[k] - before[k] > TOLERANCE}


async def cycle(window: Any, screens: tuple[type[View], ...], rounds: int) -> None:
    for _ in range(rounds):
        for cls in screens:
            window.open_screen(cls)
            # Some first loads finish, some are still in flight when the screen closes
            # (cancelled): both paths must give everything back.
            await asyncio.sleep(0.005)
    window.open_screen(screens[0])
    await settle(window)


_KEPT: list[Any] = []


class LeakyView(View):
    """Breaks both rules on purpose: an untracked connection to a long-lived signal, and a
    widget kept alive outside the view."""

    title = "Leaky"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        ctx.bridge.busy.connect(lambda n: None)
        _KEPT.append(QLabel("kept"))


def test_every_screen_500_times_leaves_counts_flat(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home, users=3) as (window, _sb, _people):
            window.show()
            await cycle(window, SCREENS, WARM_UP_ROUNDS)
            before = census(window)
            await cycle(window, SCREENS, OPENINGS // len(SCREENS) - WARM_UP_ROUNDS)
            after = census(window)
            assert growth(before, after) == {}
            assert after["bridge calls in flight"] == 0
            assert after["qt all widgets"] > 0 and after["bridge.busy receivers"] >= 1

    drive(scenario())


def test_the_check_catches_a_leaky_view(drive, home: Path, monkeypatch: Any) -> None:
    import botdesk.gui.window

    monkeypatch.setattr(botdesk.gui.window, "SCREENS", (*SCREENS, LeakyView))

    async def scenario() -> None:
        async with console_on(home) as (window, _sb, _people):
            screens = (SCREENS[0], LeakyView)
            await cycle(window, screens, WARM_UP_ROUNDS)
            before = census(window)
            await cycle(window, screens, 30)
            grew = growth(before, census(window))
            assert grew.get("bridge.busy receivers", 0) >= 30
            assert grew.get("qt all widgets", 0) >= 30
            _KEPT.clear()

    drive(scenario())
