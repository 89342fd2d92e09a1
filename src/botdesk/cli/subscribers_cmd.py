"""Subscribers: count, list, export, import and tag segments.

`botdesk subscribers count|list|export|import|tag|untag|set-timezone`. Segments are parsed
before the database is opened, so a typo costs nothing and reports its position; the selection
rules live in ``botdesk.audience`` and ``botdesk.segments``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from botdesk.cli.common import console, print_json, table, with_app

if TYPE_CHECKING:
    from botdesk.segments import Segment

app = typer.Typer(no_args_is_help=True)


BOT_OPT = typer.Option(..., "--bot", help="Registered bot name (see `botdesk bot list`).")
SEGMENT_OPT = typer.Option(
    None,
    "--segment",
    "-s",
    help="Segment expression, e.g. 'tag:vip and lang:en' (see docs/segments.md). "
    "Active subscribers unless it names a status.",
)


def _segment(text: str | None) -> Segment | None:
    from botdesk.segments import parse_segment

    if text is None or not text.strip():
        return None
    return parse_segment(text)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _bot_id(a: Any, name: str) -> int:
    from botdesk.bots import BotRegistry

    return (await BotRegistry(a.db, a.secrets).get(name)).id


@app.command("count")
def count(
    bot: str = BOT_OPT,
    segment: str | None = SEGMENT_OPT,
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Print how many subscribers the segment selects."""
    seg = _segment(segment)

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import audience

        return await audience.count(a.db, await _bot_id(a, bot), seg, now=_now())

    n = with_app(go)
    if json_out:
        print_json({"bot": bot, "segment": str(seg) if seg else None, "count": n})
    else:
        typer.echo(n)


@app.command("list")
def list_(
    bot: str = BOT_OPT,
    segment: str | None = SEGMENT_OPT,
    page: int = typer.Option(1, "--page", help="Page number, from 1."),
    page_size: int = typer.Option(50, "--page-size", help="Rows per page (at most 1000)."),
    json_out: bool = typer.Option(False, "--json", help="A JSON array of the page's rows."),
) -> None:
    """List one page of the segment's subscribers, oldest first."""
    from botdesk.audience import MAX_PAGE_SIZE
    from botdesk.errors import ValidationError

    # Checked here rather than with typer's min/max: its BadParameter escapes the CLI's
    # error boundary (typer vendors its own click), which would make a typo exit 1.
    if page < 1:
        raise ValidationError("--page must be 1 or more")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"--page-size must be between 1 and {MAX_PAGE_SIZE}")
    seg = _segment(segment)

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import audience

        bot_id, now = await _bot_id(a, bot), _now()
        rows = await audience.page(
            a.db, bot_id, seg, now=now, offset=(page - 1) * page_size, limit=page_size
        )
        total = None if json_out else await audience.count(a.db, bot_id, seg, now=now)
        return rows, total

    rows, total = with_app(go)
    if json_out:
        print_json([r.as_dict() for r in rows])
        return
    pages = max(1, math.ceil(total / page_size))
    if rows:
        table(
            None,
            ["chat id", "status", "name", "username", "lang", "source", "tags", "joined"],
            [
                [
                    r.chat_id,
                    r.status,
                    r.first_name,
                    "@" + r.username if r.username else None,
                    r.language,
                    r.source,
                    " ".join(r.tags),
                    r.joined_at.strftime("%Y-%m-%d %H:%M") if r.joined_at else None,
                ]
                for r in rows
            ],
        )
    console().print(f"page {page} of {pages}: {len(rows)} shown, {total} in segment")


@app.command("export")
def export(
    bot: str = BOT_OPT,
    segment: str | None = SEGMENT_OPT,
    csv_path: Path = typer.Option(..., "--csv", help="CSV file to write.", dir_okay=False),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE if it exists."),
) -> None:
    """Export the segment to CSV, streamed (header row; tags space-separated)."""
    from botdesk.errors import ValidationError

    seg = _segment(segment)
    if csv_path.is_dir():
        raise ValidationError(f"{csv_path} is a directory")
    if csv_path.exists() and not force:
        raise ValidationError(f"{csv_path} already exists (use --force to overwrite)")
    if not csv_path.parent.is_dir():
        raise ValidationError(f"folder {csv_path.parent} does not exist")

    async def go(a):  # type: ignore[no-untyped-def]
        return await _write_csv(a, await _bot_id(a, bot), seg, csv_path)

    n = with_app(go)
    console().print(f"exported {n} subscribers to {csv_path}")


async def _write_csv(a: Any, bot_id: int, seg: Segment | None, path: Path) -> int:
    from botdesk import audience

    return await audience.export_csv(a.db, bot_id, seg, path, now=_now())


@app.command("tag")
def tag(
    tag_name: str = typer.Argument(..., metavar="TAG", help="1-64 letters, digits, '_' or '-'."),
    bot: str = BOT_OPT,
    chat: int | None = typer.Option(None, "--chat", help="Tag this one chat (any status)."),
    segment: str | None = typer.Option(
        None, "--segment", "-s", help="Tag everyone this segment selects."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Tag one chat (--chat) or a whole segment (--segment)."""
    from botdesk.errors import ValidationError
    from botdesk.segments import check_tag

    if (chat is None) == (segment is None):
        raise ValidationError("give exactly one of --chat ID or --segment EXPR")
    check_tag(tag_name)
    seg = _segment(segment)
    if segment is not None and seg is None:
        raise ValidationError(
            "--segment is empty (to tag every active subscriber, use status:active)"
        )

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import audience

        bot_id = await _bot_id(a, bot)
        if chat is not None:
            return int(await audience.tag(a.db, bot_id, chat, tag_name, now=_now()))
        return await audience.tag_segment(a.db, bot_id, seg, tag_name, now=_now())

    n = with_app(go)
    if json_out:
        print_json({"bot": bot, "tag": tag_name, "tagged": n})
    elif chat is not None:
        console().print(
            f"tagged chat {chat} with '{tag_name}'"
            if n
            else f"chat {chat} already has '{tag_name}'"
        )
    else:
        console().print(f"tagged {n} more subscribers with '{tag_name}'")


@app.command("untag")
def untag(
    tag_name: str = typer.Argument(..., metavar="TAG"),
    bot: str = BOT_OPT,
    chat: int = typer.Option(..., "--chat", help="The chat to remove the tag from."),
) -> None:
    """Remove a tag from one chat."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import audience

        return await audience.untag(a.db, await _bot_id(a, bot), chat, tag_name)

    removed = with_app(go)
    console().print(
        f"removed '{tag_name}' from chat {chat}" if removed else f"chat {chat} had no '{tag_name}'"
    )


@app.command("set-timezone")
def set_timezone(
    zone: str = typer.Argument(
        ..., metavar="ZONE", help="An IANA time zone such as Europe/Berlin, or 'none' to forget it."
    ),
    bot: str = BOT_OPT,
    chat: int | None = typer.Option(None, "--chat", help="This one chat (any status)."),
    segment: str | None = typer.Option(
        None, "--segment", "-s", help="Everyone this segment selects."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Set the time zone of one chat (--chat) or a segment (--segment); sequences keep their
    quiet hours in it (docs/engagement.md)."""
    from botdesk.errors import ValidationError
    from botdesk.timezones import check_zone

    if (chat is None) == (segment is None):
        raise ValidationError("give exactly one of --chat ID or --segment EXPR")
    name = None if zone.lower() == "none" else check_zone(zone)
    seg = _segment(segment)
    if segment is not None and seg is None:
        raise ValidationError("--segment is empty (for every active subscriber, use status:active)")

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk import audience

        return await audience.set_timezone(
            a.db, await _bot_id(a, bot), name, chat_id=chat, segment=seg, now=_now()
        )

    n = with_app(go)
    if json_out:
        print_json({"bot": bot, "timezone": name, "changed": n})
    else:
        console().print(f"time zone {name or 'none'}: {n} subscriber(s) changed")


MAX_PROBLEMS_SHOWN = 20


@app.command("import")
def import_(
    file: Path = typer.Argument(..., metavar="FILE", help="CSV (header row) or JSON Lines file."),
    bot: str = BOT_OPT,
    source: str = typer.Option(
        ..., "--source", help="Label for where these people came from (segment: source:LABEL)."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Ask Telegram (getChat, at the bot's rate) and mark unknown chats gone.",
    ),
    json_out: bool = typer.Option(False, "--json", help="The report as JSON."),
) -> None:
    """Import the people who started the bot before botdesk (nothing is sent).

    Columns/keys: chat_id (required), first_name, last_name, username, language, timezone
    (an IANA name such as Europe/Berlin), tags (';' or '|' separated; a list in JSON),
    started_at (ISO 8601); any other one is a custom field. Chats already known keep their
    status; malformed rows are reported by line and skipped. See docs/delivery.md.
    """
    from botdesk.errors import ValidationError
    from botdesk.subscriber_import import check_source, read_file

    check_source(source)
    records = read_file(file)  # a missing file stops here, before the database opens

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry
        from botdesk.clock import SystemClock
        from botdesk.subscriber_import import import_rows, verify_chats

        registry = BotRegistry(a.db, a.secrets)
        rec = await registry.get(bot)
        report = await import_rows(
            a.db, rec.id, records, source=source, file_name=file.name, now=_now(), keep_chats=verify
        )
        checked = None
        if verify and report.chats:
            s = a.settings
            checked = await verify_chats(
                a.db,
                rec.id,
                report.chats,
                token=registry.token(rec),
                api_base=rec.api_base,
                rate=s.bot(rec.name).rate or s.delivery.rate,
                paid_rate=s.delivery.paid_rate,
                learned=(rec.learned_rate, rec.learned_paid_rate),
                clock=SystemClock(),
                connect_timeout=s.network.connect_timeout,
                read_timeout=s.network.read_timeout,
                proxy=s.network.proxy or None,
            )
        return report, checked

    report, checked = with_app(go)
    if json_out:
        out = report.as_dict()
        out["bot"] = bot
        out["verify"] = checked.as_dict() if checked else None
        print_json(out)
    else:
        err = console(stderr=True)
        for p in report.problems[:MAX_PROBLEMS_SHOWN]:
            err.print(f"{file.name}: {p}")
        if report.skipped > MAX_PROBLEMS_SHOWN:
            err.print(f"{file.name}: ... {report.skipped - MAX_PROBLEMS_SHOWN} more (see --json)")
        console().print(
            f"imported {report.rows} rows from {file.name} into {bot}: {report.added} new, "
            f"{report.merged} already subscribers (merged), {report.repeated} repeated, "
            f"{report.skipped} skipped"
        )
        if checked is not None:
            console().print(
                f"verified {checked.checked} chats: {checked.gone} gone, "
                f"{checked.deactivated} deactivated, {checked.unchecked} not checked"
            )
    if report.rows == 0:
        raise ValidationError(f"{file.name}: no valid rows ({report.skipped} skipped)")
