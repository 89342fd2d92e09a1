"""Drip sequences: create (or update) from a YAML file, list, show, pause, resume, stats.

`botdesk sequence create|list|show|pause|resume|stats`. The file format is in
docs/engagement.md ("Sequences"); `botdesk serve` enrols subscribers and sends the steps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from botdesk.cli.common import console, print_json, table, with_app

app = typer.Typer(no_args_is_help=True)

REF_ARG = typer.Argument(..., help="Sequence name or id.")
BOT_FILTER = typer.Option(None, "--bot", help="The bot, when names repeat across bots.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable output.")


@app.command("create")
def create(
    file: Path = typer.Argument(..., help="YAML sequence file (format: docs/engagement.md)."),
    bot: str = typer.Option(..., "--bot", help="Registered bot name (see `botdesk bot list`)."),
    update_existing: bool = typer.Option(
        False, "--update", help="Replace the steps of the bot's sequence with the file's name."
    ),
    json_out: bool = JSON_OPT,
) -> None:
    """Validate FILE and store it as a sequence of the bot (active at once under serve)."""
    from botdesk.bots import BotRegistry
    from botdesk.sequence_file import SequenceFileError
    from botdesk.sequences import Sequences

    async def go(a):  # type: ignore[no-untyped-def]
        rec = await BotRegistry(a.db, a.secrets).get(bot)
        return await Sequences(a.db).create(
            file, rec, now=datetime.now(UTC), update_existing=update_existing
        )

    try:
        info, created = with_app(go)
    except SequenceFileError as exc:
        err = console(stderr=True)
        for line in exc.problems:
            err.print(f"botdesk: error: {line}", markup=False)
        raise typer.Exit(2) from None
    if json_out:
        print_json({**info.as_dict(), "created": created})
        return
    verb = "created" if created else f"updated to version {info.version}"
    console().print(
        f"sequence {info.name} (id {info.id}) {verb} for {bot}: {len(info.steps)} steps, "
        f"trigger {info.definition.trigger.describe()}; `botdesk serve` runs it",
        markup=False,
    )


@app.command("list")
def list_(bot: str | None = BOT_FILTER, json_out: bool = JSON_OPT) -> None:
    """List sequences."""
    from botdesk.sequences import Sequences

    infos = with_app(lambda a: Sequences(a.db).list(bot=bot))
    if json_out:
        print_json([i.as_dict() for i in infos])
        return
    if not infos:
        console().print("no sequences (create one with `botdesk sequence create FILE --bot NAME`)")
        return
    table(
        "sequences",
        ["id", "bot", "name", "state", "trigger", "steps", "version"],
        [
            [i.id, i.bot, i.name, i.state, i.definition.trigger.describe(), len(i.steps), i.version]
            for i in infos
        ],
    )


@app.command("show")
def show(ref: str = REF_ARG, bot: str | None = BOT_FILTER, json_out: bool = JSON_OPT) -> None:
    """Show a sequence: trigger, stop rules, quiet hours, every step, and the steps updates
    dropped (their campaigns cancelled, their rows kept)."""
    from botdesk.sequences import Sequences

    info = with_app(lambda a: Sequences(a.db).find(ref, bot=bot))
    d = info.as_dict()
    if json_out:
        print_json(d)
        return
    out = console()
    out.print(
        f"sequence {info.name} (id {info.id}) of {info.bot}: {info.state}, version "
        f"{info.version} from {info.filename}",
        markup=False,
    )
    stop = ["unsubscribe", "block"] + (["reply"] if d["stop_on_reply"] else [])
    if d["goal_tag"]:
        stop.append(f"goal tag {d['goal_tag']}")
    out.print(f"trigger: {d['trigger']}; stops on: {', '.join(stop)}", markup=False)
    out.print(f"quiet hours: {d['quiet_hours'] or 'none'}", markup=False)
    # Here, not at the top: sequence_file imports campaigns (SQLAlchemy, aiogram), and every
    # command, `--help` too, imports this module to register the group.
    from botdesk.sequence_file import format_duration as _fmt_s

    table(
        None,
        ["step", "campaign", "delay", "after", "expires", "segment", "buttons", "text"],
        [
            [
                s["number"],
                s["campaign_id"],
                _fmt_s(s["delay_s"]),
                s["after"],
                _fmt_s(s["expires_s"]),
                s["segment"] or "",
                len(s["buttons"]),
                s["text"][:50],
            ]
            for s in d["steps"]
        ],
    )
    for x in d["dropped_steps"]:
        rows = ", ".join(f"{k} {v}" for k, v in sorted(x["rows"].items())) or "no rows"
        out.print(
            f"dropped: step {x['number']} (campaign {x['campaign_id']}, cancelled) by version "
            f"{x['dropped_in_version']} at {x['dropped_at'][:19]}Z; its rows: {rows}",
            markup=False,
        )


def _set_state(ref: str, bot: str | None, state: str) -> None:
    from botdesk.sequences import Sequences

    info = with_app(lambda a: Sequences(a.db).set_state(ref, state, bot=bot, now=datetime.now(UTC)))
    console().print(f"sequence {info.name} (id {info.id}) is {info.state}", markup=False)


@app.command("pause")
def pause(ref: str = REF_ARG, bot: str | None = BOT_FILTER) -> None:
    """Pause: no step is issued or sent; triggers seen meanwhile enrol on resume."""
    _set_state(ref, bot, "paused")


@app.command("resume")
def resume(ref: str = REF_ARG, bot: str | None = BOT_FILTER) -> None:
    """Resume: steps due meanwhile go out now (unless older than their expiry)."""
    _set_state(ref, bot, "active")


def _clicks(step: dict[str, Any]) -> str:
    c = step.get("clicks") or {}
    buttons = c.get("buttons") or []
    parts = []
    for b in buttons:
        if b.get("unique") is not None:
            parts.append(f"{b.get('label')}: {b.get('unique')}")
    return ", ".join(parts)


@app.command("stats")
def stats(ref: str = REF_ARG, bot: str | None = BOT_FILTER, json_out: bool = JSON_OPT) -> None:
    """Enrolled, active, completed, stopped by reason; per step its ledger rows and clicks."""
    from botdesk.sequences import Sequences

    st = with_app(lambda a: Sequences(a.db).stats(ref, bot=bot))
    if json_out:
        print_json(st)
        return
    out = console()
    stopped = ", ".join(f"{k} {v}" for k, v in sorted(st["stopped_by"].items())) or "none"
    out.print(
        f"sequence {st['name']} (id {st['id']}) of {st['bot']}, {st['state']}: enrolled "
        f"{st['enrolled']}, active {st['active']}, completed {st['completed']}, stopped "
        f"{st['stopped']} ({stopped})",
        markup=False,
    )
    table(
        None,
        [
            "step",
            "pending",
            "sent",
            "failed",
            "suppressed",
            "uncertain",
            "expired",
            "skipped",
            "cancelled",
            "clicks",
        ],
        [
            [
                s["step"],
                s["pending"] + s["sending"],
                s["sent"],
                s["failed"],
                s["suppressed"],
                s["uncertain"],
                s["expired"],
                s["skipped"],
                s["cancelled"],
                _clicks(s),
            ]
            for s in st["steps"]
        ],
    )
