"""What every CLI command shares: the home, running coroutines, output helpers.

Command modules keep their top-level imports to typer and this module so that
`botdesk --help` stays fast; services are imported inside the commands.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.console import Console

    from botdesk.app import App

T = TypeVar("T")


class State:
    home: Path | None = None


STATE = State()


def home_path() -> Path:
    if STATE.home is not None:
        return STATE.home
    from botdesk.config import default_home

    return default_home()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def with_app(fn: Callable[[App], Awaitable[T]], *, upgrade: bool = True) -> T:
    """Open the app (settings, logging, database), run ``fn`` with it, close everything."""
    from botdesk.app import open_app

    async def go() -> T:
        async with open_app(home_path(), upgrade=upgrade, quiet=True) as app:
            return await fn(app)

    return run(go())


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console().print(t)
