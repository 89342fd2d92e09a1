"""`botdesk demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from botdesk.cli.common import run


def demo(
    users: int = typer.Option(300, "--users", min=10, max=5000, help="Simulated users."),
    seed: int = typer.Option(7, "--seed"),
    keep: Path | None = typer.Option(
        None, "--keep", help="Use this folder as the demo home and keep it afterwards."
    ),
) -> None:
    """Run the whole product against an in-process sandbox: no token, no network."""
    from botdesk.runtime.demo import run_demo

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    run(run_demo(users=users, seed=seed, home=keep))
