"""`botdesk gui`: open the console on a home (or on a fresh demo home), run until closed.

Single-machine mode (SQLite, or ``--serve``): the console runs the runtime in-process,
serving the bots and delivering campaigns. On a PostgreSQL database that headless
`botdesk serve` workers share, it manages them without serving (``--no-serve`` forces
that anywhere) and the dashboard shows which worker holds each bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from botdesk.app import App, open_app


def qt_app() -> Any:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(["botdesk"])
    app.setApplicationName("botdesk")
    return app


def decide_serving(app: App, serve: bool | None) -> bool:
    if serve is not None:
        return serve
    return app.db.is_sqlite


def freeze_libraries() -> None:
    """Hide what the imports made (Qt's and the libraries' modules, classes, tables) from the
    garbage collector: they live as long as the process. A full collection walked them with
    the GIL held for 300+ ms, a frozen window, every few seconds of a 1,000 msg/s campaign.
    Only what exists now is frozen: the window and the runtime come after and stay
    collectable (frozen Qt wrappers would keep their C++ timers alive past their loop)."""
    # The runtime thread's imports, made here so that they are frozen too.
    for name in ("botdesk.runtime.assembly", "botdesk.delivery.worker"):
        importlib.import_module(name)

    gc.collect()
    gc.freeze()
    tune_gc()


# Collection thresholds for the console's process (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Fewer, larger young collections. A collection holds the GIL whichever thread runs it,
    and a 1,000 msg/s campaign on the runtime's thread made one every ~30 ms at CPython's
    threshold of 700 (550 in a 10,000-message run, 50 of them generation 1 at 10-55 ms and 5
    full ones at 90-180 ms, measured with bench/_stallprobe.py): each one the window waited
    out. Most of what the runtime allocates is freed by reference counting before any
    collection; a larger first threshold only lets the survivors wait longer to be looked at.
    The older generations follow at 20 collections each, so a full collection is rare
    (minutes of a campaign, not seconds); the libraries are frozen out of it anyway."""
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.asynccontextmanager
async def console(home: Path, *, serve: bool | None = None) -> AsyncIterator[Any]:
    """The window over an opened home: yields the MainWindow; closes everything after."""
    from botdesk.gui.bridge import Bridge
    from botdesk.gui.services import Services
    from botdesk.gui.theme import apply_theme
    from botdesk.gui.views.base import Context
    from botdesk.gui.window import MainWindow

    async with open_app(home) as app:
        services = Services(app, serving=decide_serving(app, serve))
        bridge = Bridge(app.home.path / "logs")
        theme = app.settings.gui.theme
        apply_theme(theme)
        ctx = Context(services=services, bridge=bridge, theme=theme)
        thresholds = gc.get_threshold()
        freeze_libraries()
        window = MainWindow(ctx)
        try:
            await services.start_runtime()
            yield window
        finally:
            window.close_screen()
            window.close()
            await bridge.drain()
            await services.aclose()
            window.deleteLater()
            gc.set_threshold(*thresholds)  # the process outlives the window (tests, --demo)


async def take_screenshots(window: Any, out: Path, *, settle: float = 1.5) -> list[Path]:
    """Every screen rendered into a PNG (the README's pictures)."""
    from botdesk.gui.window import SCREENS

    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any screen
    files = []
    window.show()
    for cls in SCREENS:
        view = window.open_screen(cls)
        name = cls.__name__.removesuffix("View").lower()
        await asyncio.sleep(settle)
        await window.ctx.bridge.drain()
        states = view.screenshot_states() if hasattr(view, "screenshot_states") else [("", None)]
        for suffix, setup in states:
            if setup is not None:
                setup()
                await asyncio.sleep(settle)
                await window.ctx.bridge.drain()
            await asyncio.sleep(0.3)
            path = out / (f"{name}-{suffix}.png" if suffix else f"{name}.png")
            window.grab().save(str(path))
            files.append(path)
    return files


async def _main(
    home: Path | None, *, demo: bool, screenshot_dir: Path | None, serve: bool | None
) -> int:
    closed = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        if demo:
            from botdesk.runtime.demo_home import demo_home

            home = await stack.enter_async_context(demo_home(home))
        assert home is not None
        window = await stack.enter_async_context(console(home, serve=serve))
        if screenshot_dir is not None:
            for p in await take_screenshots(window, screenshot_dir):
                print(p)
            return 0
        window.destroyed.connect(closed.set)
        qt_app().lastWindowClosed.connect(closed.set)
        window.show()
        await closed.wait()
    return 0


def run(
    home: Path | None,
    *,
    demo: bool = False,
    screenshot_dir: Path | None = None,
    serve: bool | None = None,
) -> int:
    import qasync

    if (
        screenshot_dir is not None
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = qt_app()
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return int(
                loop.run_until_complete(
                    _main(home, demo=demo, screenshot_dir=screenshot_dir, serve=serve)
                )
            )
    finally:
        asyncio.set_event_loop(None)
