"""`botdesk bot add|list|remove`."""

from __future__ import annotations

import os
import sys

import typer

from botdesk.cli.common import console, print_json, table, with_app

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Local name for the bot, e.g. shop."),
    token_stdin: bool = typer.Option(False, "--token-stdin", help="Read the token from stdin."),
    token_env: str | None = typer.Option(
        None, "--token-env", help="Read the token from this environment variable."
    ),
    api_base: str | None = typer.Option(
        None, "--api-base", help="Bot API server (default: Telegram), e.g. the sandbox's URL."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Check a token with getMe and register the bot (the token goes to the secret store)."""
    from botdesk.errors import ValidationError

    if token_stdin == bool(token_env):
        raise ValidationError("give exactly one of --token-stdin or --token-env VAR")
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise ValidationError(f"environment variable {token_env} is empty or not set")
    else:
        token = sys.stdin.readline().strip()
    if api_base:
        api_base = api_base.rstrip("/")

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry

        return await BotRegistry(a.db, a.secrets).add(
            name,
            token,
            api_base=api_base,
            connect_timeout=a.settings.network.connect_timeout,
            read_timeout=a.settings.network.read_timeout,
        )

    rec = with_app(go)
    if json_out:
        print_json(rec.as_dict())
    else:
        console().print(f"registered bot '{rec.name}' as @{rec.username} (id {rec.telegram_id})")


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """List registered bots."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry

        return await BotRegistry(a.db, a.secrets).list()

    bots = with_app(go)
    if json_out:
        print_json([b.as_dict() for b in bots])
        return
    if not bots:
        console().print("no bots registered (add one with `botdesk bot add NAME --token-stdin`)")
        return
    table(
        None,
        ["name", "username", "api base", "status"],
        [
            [b.name, "@" + b.username, b.api_base or "https://api.telegram.org", b.status]
            for b in bots
        ],
    )


@app.command("remove")
def remove(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a bot, its token and everything recorded for it."""
    if not yes and not typer.confirm(
        f"Remove bot '{name}', its token, subscribers and campaigns?", default=False
    ):
        raise typer.Abort()

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry

        await BotRegistry(a.db, a.secrets).remove(name)

    with_app(go)
    console().print(f"removed bot '{name}'")
