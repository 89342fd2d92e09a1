"""Keyword replies and menus: load, list, test a bot's rules; register its command menu.

`botdesk rules load|list|test|clear|apply`. The file format is in docs/engagement.md ("Keyword
replies and menus"); validation and matching live in ``botdesk.reply_rules``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from botdesk.cli.common import console, print_json, table, with_app

app = typer.Typer(no_args_is_help=True)

BOT_OPT = typer.Option(..., "--bot", help="Registered bot name (see `botdesk bot list`).")


async def _bot(a: Any, name: str) -> Any:
    from botdesk.bots import BotRegistry

    return await BotRegistry(a.db, a.secrets).get(name)


def _pattern(rule: Any) -> str:
    if rule.kind == "command":
        return " ".join("/" + p for p in rule.patterns)
    return ", ".join(rule.patterns)


@app.command("load")
def load(
    file: Path = typer.Argument(..., help="YAML rules file (format: docs/engagement.md)."),
    bot: str = BOT_OPT,
) -> None:
    """Validate FILE and make it the bot's rules (every serving worker picks them up)."""
    from datetime import UTC, datetime

    from botdesk import reply_rules

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await _bot(a, bot)
        return await reply_rules.store(a.db, bot_id=rec.id, path=file, now=datetime.now(UTC))

    try:
        rules, version = with_app(go)
    except reply_rules.RulesFileError as exc:
        err = console(stderr=True)
        for line in exc.problems:
            err.print(f"botdesk: error: {line}", markup=False)
        raise typer.Exit(2) from None
    menus = sum(len(r.reply.menu) for r in rules.rules)
    console().print(
        f"{file}: {len(rules.rules)} rules, {menus} menu buttons, {len(rules.commands)} "
        f"commands stored for {bot} (version {version}); `botdesk rules apply --bot {bot}` "
        "registers the command menu now (serve does it by itself)",
        markup=False,
    )


@app.command("list")
def list_(bot: str = BOT_OPT, json_out: bool = typer.Option(False, "--json")) -> None:
    """List the bot's rules in match order, and its command menu."""
    from botdesk import reply_rules

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await _bot(a, bot)
        return await reply_rules.current(a.db, bot_id=rec.id)

    rules = with_app(go)
    order = sorted(rules.rules, key=lambda r: ("command", "keyword", "regex").index(r.kind))
    if json_out:
        print_json(
            {
                "version": rules.version,
                "rules": [
                    {
                        "name": r.name,
                        "kind": r.kind,
                        "patterns": list(r.patterns),
                        "language": r.language,
                        "tags": list(r.tags),
                        "text": r.reply.text,
                        "parse_mode": r.reply.parse_mode,
                        "photo": r.reply.photo,
                        "document": r.reply.document,
                        "buttons": [{"label": lab, "url": u} for lab, u in r.reply.links],
                        "menu": [
                            {
                                "label": b.label,
                                "tag": b.tag or None,
                                "timezone": b.timezone,
                                "callback_data": b.key,
                            }
                            for b in r.reply.menu
                        ],
                    }
                    for r in order
                ],
                "commands": [
                    {"command": c.command, "description": c.description, "language": c.language}
                    for c in rules.commands
                ],
            }
        )
        return
    if not rules.rules and not rules.commands:
        console().print(f"{bot} has no rules (load a file with `botdesk rules load`)")
        return
    table(
        f"rules of {bot} (version {rules.version})",
        ["name", "kind", "matches", "lang", "tags", "reply"],
        [
            [
                r.name,
                r.kind,
                _pattern(r),
                r.language or "any",
                " ".join(r.tags),
                r.reply.text[:50] + (f"  [{len(r.reply.menu)} menu]" if r.reply.menu else ""),
            ]
            for r in order
        ],
    )
    if rules.commands:
        table(
            "command menu",
            ["command", "lang", "description"],
            [["/" + c.command, c.language or "default", c.description] for c in rules.commands],
        )


@app.command("test")
def test(
    text: str = typer.Argument(..., help="A message as a subscriber would write it."),
    bot: str = BOT_OPT,
    language: str | None = typer.Option(None, "--lang", help="Subscriber language code."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Show which rule answers TEXT, or "assistant" when none does."""
    from botdesk import reply_rules

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await _bot(a, bot)
        return await reply_rules.current(a.db, bot_id=rec.id)

    rule = with_app(go).match(text, language)
    if json_out:
        print_json(
            {
                "rule": rule.name,
                "kind": rule.kind,
                "reply": rule.reply.text,
                "tags": list(rule.tags),
            }
            if rule
            else {"rule": None, "answered_by": "assistant"}
        )
        return
    if rule is None:
        console().print("assistant")
        return
    lang = f" [{rule.language}]" if rule.language else ""
    c = console()
    c.print(f"rule {rule.name} ({rule.kind}: {_pattern(rule)}){lang}", markup=False)
    c.print(rule.reply.text, markup=False)
    if rule.tags:
        c.print(f"tags: {' '.join(rule.tags)}", markup=False)


@app.command("clear")
def clear(bot: str = BOT_OPT) -> None:
    """Remove the bot's rules: the assistant answers everything again."""
    from botdesk import reply_rules

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await _bot(a, bot)
        return await reply_rules.clear(a.db, bot_id=rec.id)

    removed = with_app(go)
    console().print(
        f"rules of {bot} removed (the command menu stays until you change it in @BotFather "
        "or apply other rules)"
        if removed
        else f"{bot} had no rules",
        markup=False,
    )


@app.command("apply")
def apply(bot: str = BOT_OPT) -> None:
    """Register the rules' command menu with Telegram now (setMyCommands, per language)."""
    from botdesk import reply_rules
    from botdesk.bots import BotRegistry
    from botdesk.runtime.rules import apply_commands
    from botdesk.telegram.gateway import bot_session

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await _bot(a, bot)
        rules = await reply_rules.current(a.db, bot_id=rec.id)
        if not rules.commands:
            return rules, []
        net = a.settings.network
        async with bot_session(
            BotRegistry(a.db, a.secrets).token(rec),
            api_base=rec.api_base,
            connect_timeout=net.connect_timeout,
            read_timeout=net.read_timeout,
            proxy=net.proxy or None,
        ) as tg:
            return rules, await apply_commands(tg, rules)

    rules, langs = with_app(go)
    if not rules.commands:
        console().print(f"{bot}'s rules have no commands: nothing to register")
        return
    console().print(
        f"{len(rules.commands)} commands registered for {bot}: "
        + ", ".join(x or "default" for x in langs),
        markup=False,
    )
