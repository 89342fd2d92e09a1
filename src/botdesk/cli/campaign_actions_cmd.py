"""`campaign edit | recall | actions`: change or delete a sent campaign's messages."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from botdesk.cli.common import console, print_json, table, with_app

STATE_COLUMNS = (
    "edited",
    "recalled",
    "failed",
    "suppressed",
    "uncertain",
    "pending",
    "acting",
    "cancelled",
)


def _confirm(line: str, yes: bool) -> None:
    from botdesk.errors import ValidationError

    if yes:
        return
    if not (sys.stdin.isatty() and typer.confirm(f"This will {line}. Continue?", default=False)):
        raise ValidationError(f"this would {line}; confirm with --yes")


async def _perform(a: Any, action_id: int, *, show: bool) -> dict[str, Any]:
    """Run the action here with a progress bar; when a `serve` process owns the bot, it
    performs the action and the bar follows it (with --json: return at once)."""
    from botdesk.campaign_actions import CampaignActions
    from botdesk.runtime.action_run import run_action

    service = CampaignActions(a.db)
    st = await service.status(action_id)
    if not show:
        result = await run_action(a, action_id)
        st = await service.status(action_id)
        st["performed_by"] = "here" if result is not None else "another process"
        return st
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"{st['kind']} of campaign {st['campaign_id']}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task("", total=max(st["total"], 1))
        work = asyncio.create_task(run_action(a, action_id))
        while True:
            st = await service.status(action_id)
            progress.update(task, completed=st["total"] - st["pending"] - st["acting"])
            if work.done() and (work.result() is not None or st["state"] != "running"):
                break  # done here, or by the process that serves the bot (followed meanwhile)
            if work.done():
                await asyncio.sleep(0.5)
            else:
                await asyncio.wait({work}, timeout=0.5)
        result = work.result()
    st["performed_by"] = "here" if result is not None else "another process"
    return st


def _print(st: dict[str, Any]) -> None:
    counts = "  ".join(f"{k} {st[k]}" for k in STATE_COLUMNS if st[k] or k in ("failed",))
    console().print(
        f"action {st['id']} ({st['kind']} of campaign {st['campaign_id']}): {st['state']}  "
        f"messages {st['total']}  {counts}"
    )
    if st.get("performed_by") == "another process" and st["state"] == "running":
        console().print(
            "the bot is served by another process: it performs this action; follow it with "
            f"`botdesk campaign actions {st['campaign_id']}`"
        )
    if st["reasons"]:
        table(
            None,
            ["state", "reason", "count"],
            [[r["state"], r["reason"], r["count"]] for r in st["reasons"]],
        )


def _start(spec: Any, *, yes: bool, json_out: bool) -> None:
    """Check, confirm, store the action, then perform it here (or leave it to `serve`)."""
    from botdesk.campaign_actions import CampaignActions

    async def go(a):  # type: ignore[no-untyped-def]
        service = CampaignActions(a.db)
        plan = await service.plan(spec)
        _confirm(plan.describe(), yes)
        aid = await service.start(spec, now=datetime.now(UTC))
        return await _perform(a, aid, show=not json_out)

    st = with_app(go)
    print_json(st) if json_out else _print(st)


def edit(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    text: str | None = typer.Option(None, "--text", help="The new text (or caption)."),
    text_file: Path | None = typer.Option(None, "--text-file"),
    parse_mode: str = typer.Option("plain", "--parse-mode", help="html | markdownv2 | plain"),
    button: list[str] = typer.Option(
        [], "--button", help="LABEL=URL (repeatable): replace the buttons."
    ),
    no_buttons: bool = typer.Option(False, "--no-buttons", help="Remove the buttons."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Edit every delivered message of a finished campaign (text or caption, and buttons).

    Checked like a new campaign first; then sent at the bot's rate limit with its own
    per-recipient ledger. Without --button the campaign's buttons are kept."""
    from botdesk.campaign_actions import ActionSpec
    from botdesk.cli.campaign_cmd import _parse_buttons
    from botdesk.errors import ValidationError

    if (text is None) == (text_file is None):
        raise ValidationError("give exactly one of --text or --text-file")
    if text_file is not None:
        try:
            text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read --text-file {text_file}: {exc}") from None
    mode = parse_mode.lower()
    if mode not in ("plain", "html", "markdownv2"):
        raise ValidationError("--parse-mode must be html, markdownv2 or plain")
    if button and no_buttons:
        raise ValidationError("give --button or --no-buttons, not both")
    buttons = tuple(_parse_buttons(button)) if button else (() if no_buttons else None)
    spec = ActionSpec(
        campaign_id=campaign_id,
        kind="edit",
        text=text,
        parse_mode=mode,  # type: ignore[arg-type]
        buttons=buttons,
    )

    _start(spec, yes=yes, json_out=json_out)


def recall(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Delete every delivered message of a finished campaign from its recipients' chats.

    Telegram lets a bot delete a message only within 48 hours of sending it; older ones are
    reported as failed with that reason."""
    from botdesk.campaign_actions import ActionSpec

    spec = ActionSpec(campaign_id=campaign_id, kind="recall")

    _start(spec, yes=yes, json_out=json_out)


def actions(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    resume: bool = typer.Option(
        False, "--resume", help="Finish an interrupted edit or recall here."
    ),
    cancel: bool = typer.Option(
        False, "--cancel", help="Stop an unfinished edit or recall (pending rows cancelled)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """The edits and recalls of a campaign: counts by state and reasons."""
    from botdesk.campaign_actions import CampaignActions
    from botdesk.errors import DeliveryError

    async def go(a):  # type: ignore[no-untyped-def]
        service = CampaignActions(a.db)
        if resume and cancel:
            raise DeliveryError("give --resume or --cancel, not both")
        if cancel:
            await service.cancel(campaign_id, now=datetime.now(UTC))
        if resume:
            aid = await service.open_action(campaign_id)
            if aid is None:
                await service.for_campaign(campaign_id)  # a clear error for an unknown id
                raise DeliveryError(f"campaign {campaign_id} has no unfinished edit or recall")
            await _perform(a, aid, show=not json_out)
        return await service.for_campaign(campaign_id)

    rows = with_app(go)
    if json_out:
        print_json(rows)
        return
    if not rows:
        console().print(f"campaign {campaign_id} has not been edited or recalled")
    for st in rows:
        _print(st)


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)
    app.command("recall")(recall)
    app.command("actions")(actions)
