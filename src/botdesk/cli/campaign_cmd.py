"""Campaigns: create, start, pause, resume, cancel, watch, report, run."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from botdesk.cli.common import console, print_json, run, table, with_app

app = typer.Typer(no_args_is_help=True)


def _parse_at(value: str | None) -> datetime | None:
    from botdesk.errors import ValidationError

    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"--at must be an ISO 8601 date-time, got {value!r}") from None
    if at.tzinfo is None:
        raise ValidationError("--at needs a timezone, e.g. 2026-12-01T09:00:00Z")
    return at.astimezone(UTC)


def _parse_buttons(buttons: list[str]) -> list[tuple[str, str]]:
    from botdesk.errors import ValidationError

    out = []
    for b in buttons:
        label, sep, url = b.partition("=")
        if not sep or not label or not url:
            raise ValidationError(f"--button must be LABEL=URL or LABEL=cb:ACTION, got {b!r}")
        out.append((label.strip(), url.strip()))
    return out


@app.command("create")
def create(
    bot: str = typer.Option(..., "--bot"),
    text: str | None = typer.Option(
        None, "--text", help="Message text, or a file's or album's caption (or --text-file)."
    ),
    text_file: Path | None = typer.Option(None, "--text-file"),
    parse_mode: str = typer.Option("plain", "--parse-mode", help="html | markdownv2 | plain"),
    photo: Path | None = typer.Option(None, "--photo", help="A photo (up to 10 MB)."),
    document: Path | None = typer.Option(None, "--document", help="Any file (up to 50 MB)."),
    video: Path | None = typer.Option(None, "--video", help="An MPEG-4 video (.mp4/.mov/.m4v)."),
    animation: Path | None = typer.Option(
        None, "--animation", help="A GIF or silent MPEG-4 animation."
    ),
    audio: Path | None = typer.Option(None, "--audio", help="An MP3 or M4A audio file."),
    voice: Path | None = typer.Option(
        None, "--voice", help="A voice message (.ogg Opus, .mp3, .m4a)."
    ),
    album: list[str] = typer.Option(
        [],
        "--album",
        help="An album item (2-10, repeatable): FILE (photo/video by suffix) or "
        "photo:|video:|document:|audio:FILE; the text is its caption; no buttons.",
    ),
    copy_from: str | None = typer.Option(
        None,
        "--copy-from",
        help="CHAT:MESSAGE_ID: send a copy of this message (a post of a channel the bot "
        "administers, or a message in a chat with the bot) with copyMessage; no --text; "
        "--button replaces its keyboard.",
    ),
    button: list[str] = typer.Option(
        [],
        "--button",
        help="LABEL=URL, or LABEL=cb:tag=NAME | cb:reply=TEXT | cb:NAME (a callback button "
        "whose presses are counted), or a menu choice LABEL=cb:pick=NAME (tags NAME, removes "
        "the other pick= tags) and/or cb:tz=ZONE (sets the time zone), joined with ',' "
        "(cb:pick=berlin,tz=Europe/Berlin); repeatable.",
    ),
    segment: str | None = typer.Option(None, "--segment"),
    at: str | None = typer.Option(None, "--at", help="Start at this ISO 8601 time."),
    paid: bool = typer.Option(
        False, "--paid", help="Paid broadcast (up to 1000 msg/s, costs Stars)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm the Star cost of --paid."),
    name: str | None = typer.Option(None, "--name"),
    silent: bool = typer.Option(False, "--silent", help="Deliver without a notification sound."),
    protect: bool = typer.Option(
        False, "--protect", help="Protected content: no forwarding or saving."
    ),
    no_link_preview: bool = typer.Option(
        False, "--no-link-preview", help="No preview of the first link (text messages)."
    ),
    max_rate: float | None = typer.Option(
        None, "--max-rate", help="Never faster than N msg/s (the bot's limit still applies)."
    ),
    variant: list[str] = typer.Option(
        [], "--variant", help="A/B test: a variant's text or text file (2-4, repeatable)."
    ),
    test_share: float = typer.Option(
        0.2, "--test-share", help="A/B test: share of the audience that gets the variants."
    ),
    metric: str = typer.Option("replies", "--metric", help="A/B test: clicks|replies|unsubscribes"),
    decide_after: str = typer.Option("24h", "--decide-after", help="A/B test window, e.g. 24h."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a campaign (validated completely; nothing is sent until it starts).

    With --variant (2-4 times) it is an A/B test: at start a random --test-share of the
    audience gets the variants, and `campaign decide ID` after --decide-after sends the
    winner to the rest."""
    from botdesk.campaigns import CampaignSpec, SendOptions
    from botdesk.errors import ValidationError
    from botdesk.media import album_kind

    mode = parse_mode.lower()
    if mode not in ("plain", "html", "markdownv2"):
        raise ValidationError("--parse-mode must be html, markdownv2 or plain")
    spec = CampaignSpec(
        bot=bot,
        text=text or "",
        parse_mode=mode,  # type: ignore[arg-type]
        photo=photo,
        document=document,
        video=video,
        animation=animation,
        audio=audio,
        voice=voice,
        album=[album_kind(a) for a in album],
        copy_from=copy_from,
        buttons=_parse_buttons(button),
        segment=segment,
        at=_parse_at(at),
        paid=paid,
        name=name,
        options=SendOptions(
            silent=silent, protect=protect, link_preview=not no_link_preview, max_rate=max_rate
        ),
    )
    if variant:
        if text is not None or text_file is not None:
            raise ValidationError("an A/B test takes its texts from --variant, not --text")
        _create_ab(spec, variant, test_share, metric, decide_after, json_out=json_out)
        return
    if copy_from or album or any((photo, document, video, animation, audio, voice)):
        if text is not None and text_file is not None:  # a caption is optional
            raise ValidationError("give at most one of --text or --text-file")
    elif (text is None) == (text_file is None):
        raise ValidationError("give exactly one of --text or --text-file")
    if text_file is not None:
        try:
            spec.text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read --text-file {text_file}: {exc}") from None

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.bots import BotRegistry
        from botdesk.campaigns import Campaigns

        rec = await BotRegistry(a.db, a.secrets).get(bot)
        camps = Campaigns(a.db)
        now = datetime.now(UTC)
        est = None
        if paid:  # validated once: the estimate is shown, then the same result is stored
            est = await camps.validate(spec, rec, now=now)
            msg = (
                f"paid broadcast to {est.audience} subscribers: about {est.stars:g} Stars "
                f"(0.1 Star per message above the free rate)"
            )
            if not yes and not (sys.stdin.isatty() and typer.confirm(msg + ". Continue?")):
                raise ValidationError(msg + "; confirm with --yes")
        return await camps.create(spec, rec, now=now, checked=est)

    info = with_app(go)
    if json_out:
        print_json(info.as_dict())
    else:
        sys.stdout.write(f"{info.id}\n")


def _variant_text(value: str) -> str:
    """A --variant is a file's text when it names a readable file, else the text itself."""
    from botdesk.errors import ValidationError

    path = Path(value)
    try:
        if len(value) < 4096 and "\n" not in value and path.is_file():
            return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read --variant file {value}: {exc}") from None
    return value


def _create_ab(
    spec: Any, variants: list[str], test_share: float, metric: str, decide_after: str, *,
    json_out: bool,
) -> None:  # fmt: skip
    from dataclasses import replace

    from botdesk.ab_campaigns import parse_duration
    from botdesk.errors import ValidationError

    if spec.paid:
        raise ValidationError("--paid is not available for A/B tests yet")
    texts = [_variant_text(v) for v in variants]
    window = parse_duration(decide_after)
    spec = replace(spec, text=texts[0])
    bot = spec.bot

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.ab_campaigns import AbTests
        from botdesk.bots import BotRegistry
        from botdesk.campaigns import Campaigns

        rec = await BotRegistry(a.db, a.secrets).get(bot)
        cid = await AbTests(a.db).create(
            spec,
            texts,
            rec,
            test_share=test_share,
            metric=metric,
            decide_after=window,
            now=datetime.now(UTC),
        )
        return await Campaigns(a.db).get(cid)

    info = with_app(go)
    if json_out:
        print_json(info.as_dict())
    else:
        sys.stdout.write(f"{info.id}\n")


@app.command("decide")
def decide(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    pick: int | None = typer.Option(
        None, "--pick", help="Send this variant (1-4) to the rest, whatever the test says."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """A/B test: after the window, compare the variants; send the winner to the rest of the
    audience, or report "no significant difference" and send nothing (then choose with --pick)."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.ab_campaigns import AbTests

        return await AbTests(a.db).decide(campaign_id, now=datetime.now(UTC), pick=pick)

    from botdesk.ab_campaigns import describe, outcome_dict

    out = with_app(go)
    if json_out:
        print_json(outcome_dict(out))
        return
    for line in describe(out):
        console().print(line, markup=False, highlight=False)


def _simple(action: str) -> Any:
    def command(campaign_id: int = typer.Argument(..., metavar="ID")) -> None:
        async def go(a):  # type: ignore[no-untyped-def]
            from botdesk.campaigns import Campaigns

            return await getattr(Campaigns(a.db), action)(campaign_id, now=datetime.now(UTC))

        info = with_app(go)
        extra = f", audience {info.audience}" if action == "start" else ""
        console().print(f"campaign {info.id}: {info.state}{extra}")

    command.__doc__ = {
        "start": "Snapshot the audience and start delivering (by `serve` or `campaign run`).",
        "pause": "Pause a running campaign.",
        "resume": "Resume a paused campaign.",
        "cancel": "Cancel: recipients not yet sent are marked cancelled.",
    }[action]
    return command


for _action in ("start", "pause", "resume", "cancel"):
    app.command(_action)(_simple(_action))


@app.command("list")
def list_(
    bot: str | None = typer.Option(None, "--bot"),
    steps: bool = typer.Option(
        False, "--steps", help="Also list the sequences' steps (each is a campaign of its own)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List campaigns, newest first (sequence steps: `botdesk sequence stats`, or --steps)."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.campaigns import Campaigns

        return await Campaigns(a.db).recent(bot=bot, steps=steps)

    rows = with_app(go)
    if json_out:
        print_json([r.as_dict() for r in rows])
        return
    table(
        None,
        ["id", "bot", "name", "state", "audience", "created", "scheduled"],
        [
            [
                r.id,
                r.bot,
                r.name,
                r.state,
                r.audience,
                f"{r.created_at:%Y-%m-%d %H:%M}",
                f"{r.scheduled_at:%Y-%m-%d %H:%M}" if r.scheduled_at else "",
            ]
            for r in rows
        ],
    )


@app.command("status")
def status(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    json_out: bool = typer.Option(False, "--json"),
    watch: bool = typer.Option(False, "--watch", help="Live progress bar until it ends."),
) -> None:
    """Counts by state, rate and ETA."""

    async def once(a):  # type: ignore[no-untyped-def]
        from botdesk.campaigns import Campaigns

        return await Campaigns(a.db).status(campaign_id, now=datetime.now(UTC))

    if watch:
        run(_watch(campaign_id))
        return
    st = with_app(once)
    if json_out:
        print_json(st)
        return
    _print_status(st)


def _print_status(st: dict[str, Any]) -> None:
    eta = "-" if st["eta_s"] is None else f"{st['eta_s']:.0f}s"
    console().print(
        f"campaign {st['id']}: {st['state']}  audience {st['audience']}  sent {st['sent']}  "
        f"pending {st['pending']}  sending {st['sending']}  failed {st['failed']}  "
        f"suppressed {st['suppressed']}  uncertain {st['uncertain']}  cancelled {st['cancelled']}  "
        f"rate {st['rate_per_s']}/s  eta {eta}"
    )


async def _watch(campaign_id: int) -> None:
    import asyncio

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from botdesk.app import open_app
    from botdesk.campaigns import Campaigns
    from botdesk.cli.common import home_path

    async with open_app(home_path()) as a:
        camps = Campaigns(a.db)
        st = await camps.status(campaign_id, now=datetime.now(UTC))
        with Progress(
            TextColumn("campaign {task.fields[cid]} {task.fields[state]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[rate]}/s  eta {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console(),
        ) as progress:
            task = progress.add_task(
                "",
                total=max(st["audience"], 1),
                cid=campaign_id,
                state=st["state"],
                rate=0,
                eta="-",
            )
            while True:
                st = await camps.status(campaign_id, now=datetime.now(UTC))
                done = st["audience"] - st["pending"] - st["sending"]
                eta = "-" if st["eta_s"] is None else f"{st['eta_s']:.0f}s"
                progress.update(
                    task,
                    total=max(st["audience"], 1),
                    completed=done,
                    state=st["state"],
                    rate=st["rate_per_s"],
                    eta=eta,
                )
                if st["state"] in ("completed", "cancelled", "draft") or (
                    st["state"] == "paused" and st["sending"] == 0
                ):
                    break
                await asyncio.sleep(0.5)
    _print_status(st)


@app.command("report")
def report(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    csv_file: Path | None = typer.Option(None, "--csv", help="Write per-recipient outcomes here."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Counts by state and by error reason, clicks per button; per-recipient outcomes (and
    clicked buttons, first click time) with --csv."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.campaigns import Campaigns

        camps = Campaigns(a.db)
        rep = await camps.report(campaign_id)
        written = 0
        if csv_file is not None:
            from botdesk import clicks

            async with a.db.read() as conn:
                clicked = await clicks.per_recipient(conn, campaign_id)
            tmp = csv_file.with_name(csv_file.name + ".tmp")
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(
                    fh,
                    fieldnames=[
                        "chat_id",
                        "username",
                        "state",
                        "attempts",
                        "message_id",
                        "error",
                        "updated_at",
                        "clicked_buttons",
                        "first_click_at",
                    ],
                )
                w.writeheader()
                async for row in camps.recipients(campaign_id):
                    buttons, first = clicked.get(row["chat_id"], ("", ""))
                    w.writerow(row | {"clicked_buttons": buttons, "first_click_at": first})
                    written += 1
            tmp.replace(csv_file)
        return rep, written

    rep, written = with_app(go)
    if json_out:
        print_json(rep)
    else:
        c = rep["campaign"]
        console().print(
            f"campaign {c['id']} ({c['name']}) on {c['bot']}: {c['state']}, "
            f"audience {c['audience']}"
        )
        table(None, ["state", "count"], [[k, v] for k, v in rep["counts"].items()])
        if ab := rep.get("ab_test"):
            _print_ab(ab)
        if rep["reasons"]:
            table(
                "reasons",
                ["state", "reason", "count"],
                [[r["state"], r["reason"], r["count"]] for r in rep["reasons"]],
            )
        _print_clicks(rep["clicks"])
    if csv_file is not None:
        console(stderr=True).print(f"wrote {written} rows to {csv_file}")


def _print_clicks(c: dict[str, Any]) -> None:
    if not c["buttons"]:
        return

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:g}s"

    rows = []
    for b in c["buttons"]:
        if b["clicks"] is None:
            rows.append([b["button"], b["label"], b["kind"], "not tracked", "", "", ""])
            continue
        rows.append(
            [
                b["button"],
                b["label"],
                b["kind"],
                b["unique"],
                b["clicks"],
                pct(b["ctr"]),
                secs(b["median_first_click_s"]),
            ]
        )
    rows.append(
        [
            "",
            "all buttons",
            "",
            c["unique"],
            c["clicks"],
            pct(c["ctr"]),
            secs(c["median_first_click_s"]),
        ]
    )
    table(
        f"clicks (click-through = unique clickers / {c['delivered']} delivered)",
        ["#", "button", "kind", "unique", "clicks", "CTR", "median first click"],
        rows,
    )


def _print_ab(ab: dict[str, Any]) -> None:
    kids = ", ".join(f"{'ABCD'[i]} = campaign {c}" for i, c in enumerate(ab["variant_campaigns"]))
    console().print(
        f"A/B test on {ab['metric']}: variants {kids}; test share {ab['test_share']:g}, "
        f"seed {ab['seed']}, window ends {ab['window_end'] or '(not started)'}",
        markup=False,
    )
    d = ab["decision"]
    if d:
        p = f", p = {d['p_value']:.3g}" if "p_value" in d else ""
        sent = (
            f"variant {'ABCD'[ab['winner'] - 1]} sent to the rest"
            if ab["winner"]
            else "nothing sent"
        )
        console().print(f"decision: {d['outcome']}{p}; {sent}", markup=False)


@app.command("resend-uncertain")
def resend_uncertain(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    yes: bool = typer.Option(False, "--yes", "-y"),
) -> None:
    """Send again to recipients whose delivery could not be confirmed (may duplicate)."""
    if not yes and not typer.confirm(
        "Uncertain recipients may already have the message; send it again?", default=False
    ):
        raise typer.Abort()

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.campaigns import Campaigns

        return await Campaigns(a.db).resend_uncertain(campaign_id, now=datetime.now(UTC))

    n = with_app(go)
    console().print(f"{n} uncertain recipients queued again")


@app.command("run")
def run_(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Deliver a campaign in the foreground (for scripts and cron); starts a draft."""

    async def go(a):  # type: ignore[no-untyped-def]
        from botdesk.campaigns import Campaigns
        from botdesk.runtime.foreground import run_campaign

        await run_campaign(a, campaign_id)
        return await Campaigns(a.db).status(campaign_id, now=datetime.now(UTC))

    st = with_app(go)
    if json_out:
        print_json(st)
    else:
        _print_status(st)


def _register_actions() -> None:
    from botdesk.cli import campaign_actions_cmd

    campaign_actions_cmd.register(app)


_register_actions()
