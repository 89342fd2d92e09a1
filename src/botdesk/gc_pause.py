"""The cyclic garbage collector off while a CLI command starts up (issue 13, part 2).

Why: importing SQLAlchemy, the store models, botdesk's modules and typer creates tens of
thousands of long-lived objects (classes, functions, modules), none of them garbage; the
collector ran about 200 times over them before the first message of ``campaign run``, about
0.1 s of CPU on a 1.5 s path. aiogram's own import already runs with it off
(``telegram.fast_import``).

``pause()`` turns it off; ``resume()`` moves what start-up made to the permanent generation
(``gc.freeze``: later collections skip it) and turns it back on. ``resume`` is called where a
long-running command starts its work (``runtime.foreground.run_leased``); a timer calls it
anyway after ``LIMIT_S`` so that no command runs long without the collector, whatever path it
takes. Both are idempotent.
"""

from __future__ import annotations

import gc
import threading

LIMIT_S = 10.0

_paused = threading.Event()


def pause(limit_s: float = LIMIT_S) -> None:
    if _paused.is_set() or not gc.isenabled():
        return
    _paused.set()
    gc.disable()
    timer = threading.Timer(limit_s, resume)
    timer.daemon = True
    timer.start()


def resume() -> None:
    if not _paused.is_set():
        return
    _paused.clear()
    gc.freeze()
    gc.enable()
