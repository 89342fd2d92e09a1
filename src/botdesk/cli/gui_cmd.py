"""`botdesk gui`."""

from __future__ import annotations

from pathlib import Path

import typer

from botdesk.cli.common import STATE, home_path


def gui(
    demo: bool = typer.Option(
        False, "--demo", help="Open on a fresh demo home (sandbox, demo bot, campaigns)."
    ),
    screenshot_dir: Path | None = typer.Option(
        None, "--screenshot-dir", help="Render every screen into PNG files here, then exit."
    ),
    serve: bool | None = typer.Option(
        None,
        "--serve/--no-serve",
        help="Serve the bots in this window (default: yes on SQLite, no on PostgreSQL).",
    ),
) -> None:
    """Open the desktop console (needs the gui extra: pip install 'botdesk[gui]')."""
    from botdesk.errors import UserError

    try:
        from botdesk.gui.app import run
    except ImportError as exc:
        raise UserError(
            f"the desktop console needs the gui extra ({exc.name} is missing): "
            "pip install 'botdesk[gui]'"
        ) from None
    home = STATE.home if (demo and STATE.home is not None) else (None if demo else home_path())
    raise typer.Exit(run(home, demo=demo, screenshot_dir=screenshot_dir, serve=serve))
