"""`botdesk demo`: the whole product on the embedded defaults, no token and no network.

A sandbox Telegram server runs in-process with a demo bot and a few hundred simulated users;
a temporary home (SQLite, offline assistant) registers the bot and serves it. Users start the
bot (with deep-link sources), ask questions the knowledge base answers, one asks for a human
and the operator answers from the inbox, some stop or block the bot; then a campaign goes to
every subscriber at the sandbox's Telegram-like limit, and the report closes the show.
An onboarding sequence (three tips a few seconds apart, ``demo/sequence.yaml``) runs for
everyone who starts the bot; some press its button (a tag its third step's segment asks for),
askers stop it by replying, leavers by /stop or a block; its stats close the show too.
An A/B test (two texts with a callback button each, half of the audience, decided on clicks
after a window of seconds) runs alongside the campaign: the simulated users who got variant A
press its button with probability 35%, those who got B with 10% (``AB_PRESS``); ``serve``
decides when the window ends and the demo shows what the test honestly says, and the winner
going to the rest of the audience when there is one.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from sqlalchemy import func, select

from botdesk import ab_campaigns, clicks, inbox, knowledge_base
from botdesk.ab_campaigns import AbTests, recorded_difference, variant_label
from botdesk.app import App, open_app
from botdesk.bots import BotRegistry
from botdesk.campaigns import Campaigns, CampaignSpec
from botdesk.runtime.assembly import build_runtime
from botdesk.sequences import Sequences
from botdesk.store.models import Campaign, Delivery, SequenceStep, Subscriber

BOT = "demo"
SEQUENCE = "onboarding"
USERNAME = "botdesk_demo_bot"
SOURCES = ("ad_instagram", "ad_facebook", "newsletter", "friend")
QUESTIONS = (
    "hey how long till my package arrives?",
    "shipping price??",
    "i want to send back a jacket, how",
    "when will i get my money back",
    "can i pay with paypal",
    "where is my order, is there tracking",
    "do u deliver to switzerland",
    "what size should i take",
    "is there a shop in berlin i can visit",
    "can i still cancel my order",
)
OUT_OF_SCOPE = "do you sell bicycles?"
HUMAN = "can I talk to a real person please"
OPERATOR_REPLY = "Hi, this is Anna from the team. I'm looking into it right now!"
CAMPAIGN_TEXT = (
    "Hi <b>{first_name}</b>! Our winter sale starts today: <i>30% off</i> all jackets. "
    "Reply to this chat if you have questions."
)

AB_NAME = "jackets A/B"
AB_VARIANTS = (
    "{first_name}, jackets are <b>30% off</b> today only. Tap to see them first!",
    "New in the shop: our winter collection.",
)
AB_BUTTON = ("Show me the jackets", "cb:show_jackets")
AB_PRESS = (0.35, 0.10)  # the chance that a simulated recipient presses variant A's, B's button
AB_SHARE = 0.5
AB_WINDOW = timedelta(seconds=15)


@dataclass
class Feed:
    """What the live view shows besides the database counts."""

    phase: str = "starting"
    lines: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    campaign: int | None = None
    ab: int | None = None

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.transcript.append(line)
        del self.lines[:-12]


async def _counts(app: App) -> dict[str, int]:
    async with app.db.read() as conn:
        rows = (
            await conn.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status))
        ).all()
    return {r[0]: int(r[1]) for r in rows}


async def _sources(app: App) -> dict[str, int]:
    async with app.db.read() as conn:
        rows = (
            await conn.execute(select(Subscriber.source, func.count()).group_by(Subscriber.source))
        ).all()
    return {(r[0] or "direct"): int(r[1]) for r in rows}


async def _view(app: App, feed: Feed, sb: Any, started: float) -> Group:
    counts = await _counts(app)
    subs = Table.grid(padding=(0, 2))
    subs.add_column(style="bold")
    subs.add_column(justify="right")
    for s in ("active", "unsubscribed", "blocked"):
        subs.add_row(s, str(counts.get(s, 0)))
    stats = sb.stats()
    tg = Table.grid(padding=(0, 2))
    tg.add_column(style="bold")
    tg.add_column(justify="right")
    tg.add_row("messages accepted", str(stats["accepted"]))
    tg.add_row("429 answers", str(stats["rate_limited"]))
    tg.add_row("elapsed", f"{time.monotonic() - started:.0f}s")
    top = Table.grid(padding=(0, 1))
    top.add_row(Panel(subs, title="subscribers"), Panel(tg, title="sandbox Telegram"))
    parts: list[Any] = [Panel(top, title=f"botdesk demo - {feed.phase}")]
    if feed.campaign is not None:
        st = await Campaigns(app.db).status(feed.campaign, now=datetime.now(UTC))
        done = st["audience"] - st["pending"] - st["sending"]
        bar = ProgressBar(total=max(1, st["audience"]), completed=done, width=50)
        line = Table.grid(padding=(0, 1))
        line.add_row(
            bar,
            f"{done}/{st['audience']}  sent {st['sent']}  suppressed {st['suppressed']}  "
            f"{st['rate_per_s']}/s",
        )
        parts.append(Panel(line, title=f"campaign {feed.campaign}: {st['state']}"))
    if feed.ab is not None:
        parts.append(await _ab_panel(app, feed.ab))
    parts.append(Panel("\n".join(feed.lines) or "...", title="conversations"))
    return Group(*parts)


async def _wait_reply(
    sb: Any, chat_id: int, after: int, within: float = 20.0
) -> dict[str, Any] | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # The onboarding sequence's tips are no answers (they may arrive in between).
        msgs = [
            m
            for m in sb.messages(bot=USERNAME, chat_id=chat_id)
            if m["message_id"] > after and not (m.get("text") or "").startswith("Tip ")
        ]
        if msgs:
            last: dict[str, Any] = msgs[-1]
            return last
        await asyncio.sleep(0.05)
    return None


def _last_id(sb: Any, chat_id: int) -> int:
    msgs = sb.messages(bot=USERNAME, chat_id=chat_id)
    return max((m["message_id"] for m in msgs), default=0)


async def _ask(app: App, sb: Any, feed: Feed, user: Any, text: str) -> None:
    before = _last_id(sb, user.id)
    await sb.user_send(user.id, USERNAME, text)
    reply = await _wait_reply(sb, user.id, before)
    answer = (reply or {}).get("text") or "(no answer)"
    hist = await inbox.show(app.db, bot=BOT, chat_id=user.id, limit=1)
    meta = hist[-1].meta if hist else None
    src = ""
    if meta and meta.get("sources"):
        src = f" [dim](from {', '.join(meta['sources'])}, confidence {meta.get('confidence')})[/]"
    elif meta and meta.get("reason"):
        src = f" [yellow](handoff: {meta['reason']})[/]"
    feed.say(f"[cyan]{user.first_name}[/]: {text}")
    feed.say(f"  [green]bot[/]: {answer[:110]}{src}")


async def run_demo(
    *, users: int = 300, seed: int = 7, home: Path | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run the scenario; returns the final summary (also printed)."""
    from botdesk.sandbox import Sandbox, SandboxConfig

    console = console or Console()
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="botdesk-demo-")) if home is None else home
    try:
        (tmp / "botdesk.toml").write_text(
            '[log]\nlevel = "WARNING"\n'
            f'[bots.{BOT}]\nwelcome_text = "Welcome, {{first_name}}! Ask me anything about '
            'your order. /stop unsubscribes."\n',
            encoding="utf-8",
        )
        cfg = SandboxConfig(host="127.0.0.1", port=0, seed=seed, latency=(0.03, 0.12))
        async with Sandbox(cfg) as sb, open_app(tmp) as app:
            info = sb.add_bot(USERNAME)
            await BotRegistry(app.db, app.secrets).add(
                BOT, info.token, api_base=sb.base_url, connect_timeout=2, read_timeout=10
            )
            kb = resources.files("botdesk.demo").joinpath("kb.md")
            with resources.as_file(kb) as kb_path:
                await knowledge_base.import_file(app.db, kb_path, bot=BOT, now=datetime.now(UTC))
            seq_file = resources.files("botdesk.demo").joinpath("sequence.yaml")
            with resources.as_file(seq_file) as seq_path:
                rec = await BotRegistry(app.db, app.secrets).get(BOT)
                await Sequences(app.db).create(seq_path, rec, now=datetime.now(UTC))
            runtime = await build_runtime(app, poll_timeout=1)
            await runtime.start()
            feed = Feed()
            started = time.monotonic()
            try:
                with Live(console=console, refresh_per_second=4, transient=False) as live:

                    async def refresh() -> None:
                        while True:
                            live.update(await _view(app, feed, sb, started))
                            await asyncio.sleep(0.25)

                    painter = asyncio.create_task(refresh())
                    try:
                        summary = await _scenario(app, sb, feed, rng, users, seed=seed)
                    finally:
                        painter.cancel()
                        await asyncio.gather(painter, return_exceptions=True)
                        live.update(await _view(app, feed, sb, started))
            finally:
                await runtime.stop()
            summary["sandbox"] = {k: sb.stats()[k] for k in ("accepted", "rate_limited", "errors")}
        _print_summary(console, summary)
        return summary
    finally:
        if home is None:
            shutil.rmtree(tmp, ignore_errors=True)


async def _until(pred: Any, within: float) -> None:
    """Poll the database-backed condition (there is no event to wait on across processes)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.1)


async def _scenario(
    app: App, sb: Any, feed: Feed, rng: random.Random, n: int, *, seed: int
) -> dict[str, Any]:
    people = sb.add_users(n)
    feed.phase = f"{n} users start the bot"
    for i, u in enumerate(people):
        if i % 10 == 9:
            payload: str | None = "not a valid payload!"
        elif i % 3 == 0:
            payload = None
        else:
            payload = rng.choice(SOURCES)
        await sb.user_start(u.id, USERNAME, payload=payload)
        await asyncio.sleep(0.004)

    async def all_in() -> bool:
        return sum((await _counts(app)).values()) >= n

    await _until(all_in, 60)
    feed.phase = f"welcoming {n} subscribers at Telegram's pace (30 msg/s per bot)"

    async def welcomed() -> bool:
        return sum(1 for m in sb.messages(bot=USERNAME) if "Welcome" in (m.get("text") or "")) >= n

    await _until(welcomed, 120)
    feed.phase = "subscribers ask questions"
    askers = rng.sample(people, len(QUESTIONS) + 2)
    await asyncio.gather(
        *(_ask(app, sb, feed, u, q) for u, q in zip(askers, QUESTIONS, strict=False))
    )
    await _ask(app, sb, feed, askers[-2], OUT_OF_SCOPE)
    human = askers[-1]
    await _ask(app, sb, feed, human, HUMAN)
    feed.phase = "an operator answers from the inbox"
    before = _last_id(sb, human.id)
    await inbox.enqueue_reply(app.db, bot=BOT, chat_id=human.id, text=OPERATOR_REPLY)
    got = await _wait_reply(sb, human.id, before)
    sent = (got or {}).get("text", "(not delivered)")
    feed.say(f"  [magenta]operator[/] to {human.first_name}: {sent}")
    feed.phase = "some subscribers press the onboarding tip's button"
    await _press_tips(app, sb, [u for u in people if u not in askers][: max(3, n // 10)])
    feed.phase = "some users leave"
    leavers = rng.sample([u for u in people if u not in askers], max(2, n // 10))
    blockers = leavers[: len(leavers) // 3]
    for u in leavers[len(blockers) :]:
        await sb.user_send(u.id, USERNAME, "/stop")
    for u in blockers:
        await sb.user_block(u.id, USERNAME)

    async def left() -> bool:
        c = await _counts(app)
        return c.get("unsubscribed", 0) + c.get("blocked", 0) >= len(leavers)

    await _until(left, 30)
    # The worker sends campaigns in id order: the tips already due go first, so the test
    # starts when they are out (its window would otherwise pass with nothing delivered).
    feed.phase = "the onboarding tips go out"

    async def tips_out() -> bool:
        async with app.db.read() as conn:
            q = (
                select(func.count())
                .select_from(Delivery)
                .join(SequenceStep, SequenceStep.campaign_id == Delivery.campaign_id)
                .where(Delivery.state.in_(("pending", "sending")))
            )
            return not (await conn.execute(q)).scalar()

    await _until(tips_out, 60)
    feed.phase = "an A/B test and a campaign to every active subscriber"
    camps = Campaigns(app.db)
    rec = await BotRegistry(app.db, app.secrets).get(BOT)
    now = datetime.now(UTC)
    ab = await AbTests(app.db).create(
        CampaignSpec(bot=BOT, text=AB_VARIANTS[0], parse_mode="html", name=AB_NAME,
                     buttons=[AB_BUTTON]),
        list(AB_VARIANTS), rec, test_share=AB_SHARE, metric="clicks", decide_after=AB_WINDOW,
        now=now, seed=seed,
    )  # fmt: skip
    await camps.start(ab, now=now)
    feed.ab = ab
    pressing = asyncio.create_task(_press_variants(app, sb, ab, seed, now + AB_WINDOW))
    info = await camps.create(
        CampaignSpec(bot=BOT, text=CAMPAIGN_TEXT, parse_mode="html", name="winter sale"),
        rec,
        now=now,
    )
    await camps.start(info.id, now=now)
    feed.campaign = info.id

    async def finished() -> bool:
        return (await camps.get(info.id)).state == "completed"

    await _until(finished, 120)
    feed.phase = "the A/B test's window ends: serve decides, the winner goes to the rest"
    await pressing

    async def ab_done() -> bool:
        return (await camps.get(ab)).state in ("completed", ab_campaigns.UNDECIDED)

    await _until(ab_done, AB_WINDOW.total_seconds() + 60)
    feed.phase = "the onboarding sequence finishes"
    seqs = Sequences(app.db)

    async def settled() -> bool:
        return int((await seqs.stats(SEQUENCE, bot=BOT))["active"]) == 0

    await _until(settled, 60)
    feed.phase = "done"
    report = await camps.report(info.id)
    return {
        "transcript": list(feed.transcript),
        "subscribers": await _counts(app),
        "sources": await _sources(app),
        "campaign": report,
        "handoffs": len(await inbox.list_conversations(app.db, bot=BOT, needs_human=True)),
        "sequence": await seqs.stats(SEQUENCE, bot=BOT),
        "ab": await camps.report(ab),
    }


async def _press_variants(app: App, sb: Any, ab: int, seed: int, end: datetime) -> None:
    """Recipients of the test press their variant's button with its known probability, one
    draw per recipient (seeded by the chat, so the run is the same whatever the timing)."""
    children = await ab_campaigns.variant_campaigns(app.db, ab)
    seen: set[int] = set()
    while datetime.now(UTC) < end - timedelta(seconds=1):
        for m in sb.messages(bot=USERNAME):
            rows = (m.get("reply_markup") or {}).get("inline_keyboard") or [[{}]]
            data = rows[0][0].get("callback_data")
            target = clicks.parse_data(data)
            if target is None or target[0] not in children or m["chat_id"] in seen:
                continue
            seen.add(m["chat_id"])
            chance = AB_PRESS[children.index(target[0])]
            if random.Random(f"{seed}:{m['chat_id']}").random() < chance:
                await sb.user_press(m["chat_id"], USERNAME, m["message_id"], data)
        await asyncio.sleep(0.2)


async def _ab_panel(app: App, ab: int) -> Panel:
    async with app.db.read() as conn:
        state = (await conn.execute(select(Campaign.state).where(Campaign.id == ab))).scalar()
    out = await AbTests(app.db).results(ab, now=datetime.now(UTC))
    left = (out.window_end - datetime.now(UTC)).total_seconds()
    line = "   ".join(
        f"{variant_label(v.number)}: {v.successes}/{v.delivered} clicked"
        f" (users press {AB_PRESS[v.number - 1]:.0%})"
        for v in out.variants
    )
    when = f"decides in {left:.0f}s" if left > 0 else "window over"
    return Panel(f"{line}   {when}", title=f"A/B test {ab} '{AB_NAME}' on clicks: {state}")


def _decision_lines(ab: dict[str, Any]) -> list[str]:
    """The decision serve recorded, in words."""
    d = ab.get("decision")
    if not d:
        return ["not decided"]
    lines = [str(d["outcome"])]
    if "best" in d:
        what = f"variant {variant_label(d['best'])}" if d["outcome"] == "winner" else ""
        lines = [f"{d['outcome']}: {what}{', ' if what else ''}{recorded_difference(d)}"]
    return lines


async def _press_tips(app: App, sb: Any, users: list[Any]) -> None:
    """Users who got the first tip press its button (a callback: a click, and the tag)."""
    step1 = (await Sequences(app.db).find(SEQUENCE, bot=BOT)).steps[0]
    data = clicks.callback_data(step1, 0)

    async def tipped() -> bool:
        return all(_tip(sb, u) for u in users)

    await _until(tipped, 15)
    for u in users:
        got = _tip(sb, u)
        if got:
            await sb.user_press(u.id, USERNAME, got[0]["message_id"], data)


def _tip(sb: Any, u: Any) -> list[dict[str, Any]]:
    return [
        m for m in sb.messages(bot=USERNAME, chat_id=u.id) if "Tip 1/3" in (m.get("text") or "")
    ]


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    console.print(Panel("\n".join(s["transcript"]), title="what the assistant said"))
    t = Table(title="subscribers by status")
    t.add_column("status")
    t.add_column("count", justify="right")
    for k, v in sorted(s["subscribers"].items()):
        t.add_row(k, str(v))
    u = Table(title="subscribers by source")
    u.add_column("source (deep link)")
    u.add_column("count", justify="right")
    for k, v in sorted(s["sources"].items(), key=lambda kv: -kv[1]):
        u.add_row(k, str(v))
    c = s["campaign"]
    r = Table(
        title=f"campaign {c['campaign']['id']} '{c['campaign']['name']}': {c['campaign']['state']}"
    )
    r.add_column("state")
    r.add_column("count", justify="right")
    for k, v in c["counts"].items():
        if v:
            r.add_row(k, str(v))
    q = s["sequence"]
    stopped = ", ".join(f"{k} {v}" for k, v in sorted(q["stopped_by"].items())) or "none"
    w = Table(
        title=f"sequence '{q['name']}': enrolled {q['enrolled']}, completed {q['completed']}, "
        f"stopped {q['stopped']} ({stopped})"
    )
    for col in ("step", "sent", "skipped", "cancelled", "failed/uncertain", "clicks"):
        w.add_column(col, justify="right")
    for st in q["steps"]:
        w.add_row(
            str(st["step"]),
            str(st["sent"]),
            str(st["skipped"]),
            str(st["cancelled"]),
            str(st["failed"] + st["uncertain"] + st["suppressed"]),
            str(st["clicks"]["unique"]),
        )
    a = s["ab"]
    ab = a["ab_test"]
    v = Table(title=f"A/B test {a['campaign']['id']} '{a['campaign']['name']}' on {ab['metric']}, "
              f"test share {ab['test_share']:g}, window {ab['decide_after_s']:g}s: "
              f"{a['campaign']['state']}")  # fmt: skip
    for col in ("variant", "text", "users press", "delivered", "clicked", "rate"):
        v.add_column(col, justify="left" if col == "text" else "right")
    for i, rv in enumerate((ab["decision"] or {}).get("variants", [])):
        v.add_row(
            variant_label(rv["number"]),
            AB_VARIANTS[i][:40],
            f"{AB_PRESS[i]:.0%}",
            str(rv["delivered"]),
            str(rv["successes"]),
            f"{rv['successes'] / rv['delivered']:.1%}" if rv["delivered"] else "-",
        )
    console.print(t, u, r, w, v)
    for line in _decision_lines(ab):
        console.print(line, markup=False)
    if ab["winner"]:
        console.print(
            f"variant {variant_label(ab['winner'])} went to the rest of the audience: "
            f"{a['counts']['sent']} of {a['campaign']['audience']} sent"
        )
    elif ab["decision"]:
        console.print("nothing sent to the rest: the operator picks with `campaign decide --pick`")
    sbx = s["sandbox"]
    console.print(
        f"sandbox accepted {sbx['accepted']} messages, answered 429 {sbx['rate_limited']} times; "
        f"conversations waiting for a human: {s['handoffs']}"
    )
