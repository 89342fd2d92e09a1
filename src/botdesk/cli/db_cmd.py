"""`botdesk db upgrade|status`."""

from __future__ import annotations

import typer

from botdesk.cli.common import console, print_json, with_app

app = typer.Typer(no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database schema to the current revision."""

    async def go(a):  # type: ignore[no-untyped-def]
        await a.db.upgrade()
        return await a.db.revision_status()

    cur, _head = with_app(go, upgrade=False)
    console().print(f"database at revision {cur}")


@app.command("status")
def status(json_out: bool = typer.Option(False, "--json")) -> None:
    """Show the database URL (without password) and its schema revision."""
    from botdesk.store.db import redact_url

    async def go(a):  # type: ignore[no-untyped-def]
        cur, head = await a.db.revision_status()
        return redact_url(a.db.url), cur, head

    url, cur, head = with_app(go, upgrade=False)
    info = {"url": url, "current": cur, "head": head, "up_to_date": cur == head}
    if json_out:
        print_json(info)
    else:
        verdict = "up to date" if cur == head else "needs `botdesk db upgrade`"
        console().print(f"{url}: revision {cur or 'none'} (code head {head}): {verdict}")
