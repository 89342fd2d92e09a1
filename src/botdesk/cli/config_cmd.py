"""`botdesk config show` and `botdesk doctor`."""

from __future__ import annotations

import os
from typing import Any

import typer

from botdesk.cli.common import console, home_path, print_json, with_app

app = typer.Typer(no_args_is_help=True)

_SECRET_KEYS = ("token", "api_key", "password", "secret", "key")


def _mask(obj: Any, key: str = "") -> Any:
    if isinstance(obj, dict):
        # TOML has no null: unset optional values are left out of the display
        return {k: _mask(v, k) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_mask(v, key) for v in obj]
    if isinstance(obj, str) and obj and not obj.startswith("secret:"):
        low = key.lower()
        if low.endswith(_SECRET_KEYS) and not low.endswith("_secret"):
            return "***"
    return obj


@app.command("show")
def show(json_out: bool = typer.Option(False, "--json")) -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    from botdesk.app import load
    from botdesk.log import REDACTOR
    from botdesk.store.db import redact_url

    home, settings = load(home_path())
    data = _mask(settings.model_dump(mode="json"))
    data["database"]["url"] = redact_url(home.database_url(settings))
    data = {"home": str(home.path), "config_file": str(home.config_file), **data}
    if json_out:
        print_json(data)
        return
    import tomli_w

    text = tomli_w.dumps({k: v for k, v in data.items() if v is not None})
    console().print(REDACTOR.redact(text), markup=False)


def doctor(json_out: bool = typer.Option(False, "--json")) -> None:
    """Check home, configuration, database, secret store and each bot; print a verdict per line."""
    from botdesk.app import load
    from botdesk.errors import BotdeskError

    checks: list[tuple[str, str, str]] = []  # (check, verdict ok|warn|fail, detail)
    path = home_path()
    try:
        home, _settings = load(path)
        checks.append(
            (
                "configuration",
                "ok",
                f"{home.config_file}"
                + ("" if home.config_file.exists() else " (defaults: no file)"),
            )
        )
    except BotdeskError as exc:
        checks.append(("configuration", "fail", str(exc)))
        _print(checks, json_out)
        raise typer.Exit(1) from None
    try:
        home.ensure()
        writable = os.access(home.path, os.W_OK)
        mode = home.path.stat().st_mode & 0o777
        verdict = "ok" if writable and not mode & 0o077 else ("warn" if writable else "fail")
        detail = f"{home.path} (mode {mode:o}{'' if writable else ', not writable'})"
        if mode & 0o077:
            detail += ": readable by others, consider chmod 700"
        checks.append(("home", verdict, detail))
    except OSError as exc:
        checks.append(("home", "fail", f"{home.path}: {exc.strerror}"))
    checks.append(_assistant_model(_settings.assistant.embeddings))

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.store.db import redact_url

        try:
            cur, head = await a.db.revision_status()
            url = redact_url(a.db.url)
            checks.append(("database", "ok", f"{url} reachable"))
            if cur == head:
                checks.append(("migrations", "ok", f"at revision {cur}"))
            else:
                checks.append(
                    (
                        "migrations",
                        "fail" if cur else "warn",
                        f"at {cur or 'nothing'}, code expects {head}: run `botdesk db upgrade`",
                    )
                )
        except BotdeskError as exc:
            checks.append(("database", "fail", str(exc)))
            return
        try:
            store = a.secrets
            checks.append(
                ("secret store", "ok", f"{store.backend.name}: {store.backend.protection}")
            )
        except BotdeskError as exc:
            checks.append(("secret store", "fail", str(exc)))
            return
        if cur != head:
            return
        from botdesk.bots import BotRegistry
        from botdesk.telegram.gateway import get_me

        reg = BotRegistry(a.db, store)
        bots = await reg.list()
        if not bots:
            checks.append(("bots", "warn", "no bot registered"))
        for b in bots:
            try:
                me = await get_me(
                    reg.token(b),
                    api_base=b.api_base,
                    connect_timeout=a.settings.network.connect_timeout,
                    read_timeout=a.settings.network.read_timeout,
                )
                checks.append(
                    (
                        f"bot {b.name}",
                        "ok",
                        f"@{me.username} reachable at {b.api_base or 'api.telegram.org'}",
                    )
                )
            except BotdeskError as exc:
                checks.append((f"bot {b.name}", "fail", str(exc)))

    with_app(go, upgrade=False)
    _print(checks, json_out)
    if any(v == "fail" for _c, v, _d in checks):
        raise typer.Exit(1)


def _assistant_model(enabled: bool) -> tuple[str, str, str]:
    """Whether the assistant answers with the embedding model or falls back to lexical retrieval."""
    if not enabled:
        return (
            "assistant model",
            "ok",
            "disabled in the configuration (assistant.embeddings = false): lexical retrieval",
        )
    from botdesk.assistant.embeddings import load_default_embedder

    status = load_default_embedder()
    return ("assistant model", "ok" if status.embedder is not None else "warn", status.describe())


def _print(checks: list[tuple[str, str, str]], json_out: bool) -> None:
    from botdesk.log import REDACTOR

    if json_out:
        print_json([{"check": c, "verdict": v, "detail": REDACTOR.redact(d)} for c, v, d in checks])
        return
    from rich.table import Table

    t = Table(title="botdesk doctor")
    t.add_column("check")
    t.add_column("verdict")
    t.add_column("detail")
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c, v, d in checks:
        t.add_row(c, f"[{style[v]}]{v.upper()}[/]", REDACTOR.redact(d))
    console().print(t)
