"""`botdesk secrets set|list|delete|migrate`: values never come from arguments."""

from __future__ import annotations

import sys

import typer

from botdesk.cli.common import console, home_path, print_json, table

app = typer.Typer(no_args_is_help=True)


def _store():  # type: ignore[no-untyped-def]
    from botdesk.app import load, open_secrets

    home, _settings = load(home_path())
    return home, open_secrets(home)


@app.command("set")
def set_(name: str = typer.Argument(..., help="Secret name, e.g. gemini.api_key.")) -> None:
    """Store a secret; the value is read from stdin, or from a prompt that does not echo."""
    from botdesk.errors import ValidationError

    _home, store = _store()
    if sys.stdin.isatty():
        value = typer.prompt(f"value for {name}", hide_input=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise ValidationError("empty secret value: nothing stored")
    store.set(name, value)
    console().print(f"stored secret '{name}' in {store.backend.name}")


@app.command("list")
def list_(json_out: bool = typer.Option(False, "--json")) -> None:
    """List secret names and the backend (never values)."""
    _home, store = _store()
    names = store.names()
    if json_out:
        print_json({"backend": store.backend.name, "names": names})
        return
    console().print(f"backend: {store.backend.name} ({store.backend.protection})")
    table(None, ["name"], [[n] for n in names])


@app.command("delete")
def delete(name: str) -> None:
    """Delete a secret."""
    _home, store = _store()
    store.delete(name)
    console().print(f"deleted secret '{name}'")


@app.command("migrate")
def migrate() -> None:
    """Move plaintext secrets found in botdesk.toml into the store (keeps a 0600 backup)."""
    from botdesk.secrets import migrate_plaintext

    home, store = _store()
    moved = migrate_plaintext(home.config_file, store)
    if not moved:
        console().print("nothing to migrate: botdesk.toml holds no plaintext secrets")
        return
    for name in moved:
        console().print(f"moved {name} -> secret:{name}")
