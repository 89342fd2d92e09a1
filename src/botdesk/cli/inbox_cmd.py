"""Inbox: read conversations and take them over.

`botdesk inbox list|show`. The rules (what a conversation is, who needs a human) live in
``botdesk.inbox``; this module only renders them. Texts come from Telegram users, so they
are shown inert: rich markup is escaped and control characters are replaced.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import typer

from botdesk.cli.common import console, print_json, table, with_app

if TYPE_CHECKING:
    from datetime import datetime

app = typer.Typer(no_args_is_help=True)

DEFAULT_LIST_LIMIT = 100
DEFAULT_SHOW_LIMIT = 50
PREVIEW_CHARS = 60


def _inert(text: str | None, *, one_line: bool = False) -> str:
    """User text made safe for the terminal: no markup, no escape sequences."""
    from rich.markup import escape

    if not text:
        return ""
    keep = "\n" if not one_line else ""
    out = "".join(
        c if c in keep or unicodedata.category(c) not in ("Cc", "Cf") else " " for c in text
    )
    return escape(out)


def _preview(text: str | None) -> str:
    flat = " ".join((text or "").split())
    if len(flat) > PREVIEW_CHARS:
        flat = flat[: PREVIEW_CHARS - 1] + "…"
    return _inert(flat, one_line=True)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_(
    bot: str | None = typer.Option(None, "--bot", help="Only this bot's conversations."),
    needs_human: bool = typer.Option(
        False, "--needs-human", help="Only conversations waiting for an operator."
    ),
    limit: int = typer.Option(DEFAULT_LIST_LIMIT, "--limit", min=1, max=10_000),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List conversations, most recent first."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import inbox

        return await inbox.list_conversations(a.db, bot=bot, needs_human=needs_human, limit=limit)

    convs = with_app(go)
    if json_out:
        print_json([c.as_dict() for c in convs])
        return
    if not convs:
        what = "waiting for a human" if needs_human else "yet"
        console().print(f"no conversations {what}")
        return
    table(
        None,
        ["bot", "chat", "name", "messages", "last (UTC)", "human", "last text"],
        [
            [
                c.bot,
                c.chat_id,
                _inert(c.name, one_line=True),
                c.messages,
                _when(c.last_message_at),
                ("yes: " + _inert(c.handoff_reason, one_line=True)) if c.needs_human else "",
                _preview(c.last_text),
            ]
            for c in convs
        ],
    )


@app.command("show")
def show(
    bot: str = typer.Option(..., "--bot", help="Registered bot name (see `botdesk bot list`)."),
    chat: int = typer.Option(..., "--chat", help="Chat id (see `botdesk inbox list`)."),
    limit: int = typer.Option(DEFAULT_SHOW_LIMIT, "--limit", min=1, max=10_000),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Show the last messages of one conversation, oldest first.

    A reply that did not reach the chat is marked under it: "not delivered: REASON" (blocked,
    chat gone, bad request) or "delivery uncertain: REASON" (its answer was lost).
    """

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import inbox

        return await inbox.show(a.db, bot=bot, chat_id=chat, limit=limit)

    messages = with_app(go)
    if json_out:
        print_json({"bot": bot, "chat_id": chat, "messages": [m.as_dict() for m in messages]})
        return
    out = console()
    for m in messages:
        arrow = "<-" if m.direction == "in" else "->"
        out.print(f"{_when(m.at)}  {arrow} {m.author:<9} {_inert(m.text)}")
        marker = m.marker()
        if marker is not None:  # a reply that did not (surely) reach the chat
            out.print(f"{'':18}   [red]{_inert(marker, one_line=True)}[/red]")


@app.command("reply")
def reply(
    text: str = typer.Argument(..., help="The reply, as plain text."),
    bot: str = typer.Option(..., "--bot"),
    chat: int = typer.Option(..., "--chat"),
    wait: float = typer.Option(
        15.0, "--wait", min=0, help="Seconds to wait for a running `serve` to send it."
    ),
) -> None:
    """Answer a subscriber as the operator; the assistant stays silent until `inbox release`.

    The reply goes through the bot's rate limiter: a running `botdesk serve` that owns the bot
    sends it; with none running, this command sends it itself.
    """
    import asyncio

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import inbox
        from botdesk.runtime.foreground import deliver_replies

        item = await inbox.enqueue_reply(a.db, bot=bot, chat_id=chat, text=text)
        await deliver_replies(a, bot)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        state, error = await inbox.reply_state(a.db, item)
        while state in ("pending", "sending") and loop.time() < deadline:
            await asyncio.sleep(0.2)
            state, error = await inbox.reply_state(a.db, item)
        return state, error

    state, error = with_app(go)
    if state == "sent":
        console().print(f"sent to chat {chat}; the conversation is now yours (`inbox release`)")
    elif state in ("pending", "sending"):
        console().print("queued: the serve process that owns the bot will send it")
    else:
        from botdesk.errors import TelegramError

        raise TelegramError(f"the reply was not delivered: {error}")


@app.command("release")
def release(bot: str = typer.Option(..., "--bot"), chat: int = typer.Option(..., "--chat")) -> None:
    """Hand the conversation back to the assistant."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import inbox

        await inbox.release(a.db, bot=bot, chat_id=chat)

    with_app(go)
    console().print(f"chat {chat} on '{bot}' is back with the assistant")
