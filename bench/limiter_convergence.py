"""How fast botdesk's limiter finds the limit Telegram actually enforces, and what it costs.

    .venv/bin/python bench/limiter_convergence.py [--limits 3,5,15,30] [--recipients 150]
    .venv/bin/python bench/limiter_convergence.py --rise [--rise-at 20] [--rise-recipients 2500]
    .venv/bin/python bench/limiter_convergence.py --kinds chat,group,paid,edit

botdesk is configured for Telegram's 30 msg/s; the sandbox (its own process, default latency
30-120 ms, bot burst 10) enforces a lower limit. For each limit one campaign is delivered with
``run_campaign`` (SQLite ledger) and the figures come from the sandbox's own record:

- ``429s``: refusals the sandbox's limiter answered during the campaign;
- ``settle_s``: seconds from the first accepted message until every later 3 s window has no
  429 and an accepted rate of at least 0.9 x the limit (``-`` if never; above the limit only
  the server's burst can be accepted, and each 429 a probe draws later is in ``429s``);
- ``learned``: the rate botdesk stored for the bot at the end (``bots.learned_rate``; ``-``:
  the configured 30/s);
- ``429s_to_settle``: the refusals before that moment;
- ``rate``: accepted messages per second over the campaign's last half.

``--rise``: the limit is 5/s, then 30/s from ``--rise-at`` seconds on; prints how long after the
rise the accepted rate (over 60 messages) first reached 90% of 30/s, and the 429s drawn.

The other learned limits (``--kinds``, default all of ``free,chat,group,paid,edit``):

- ``chat``: three private chats written to as fast as botdesk's per-chat limit allows (1/s
  configured; the sandbox enforces ``--chat-limits``, default 0.5 and 0.8/s) for
  ``--chat-seconds``, through the bot's ``pacing.Gate`` with the real client (replies to
  busy chats); ``group``: the same with three groups, botdesk configured for 120/min per group
  and the sandbox enforcing ``--group-limits`` (default 60 and 90/min: Telegram's 20/min scaled
  up so a run takes a minute, not ten). Per row: 429s, those in the run's second half, each
  chat's accepted rate over the second half (lowest and highest, as a share of the limit) and
  the rate learned;
- ``paid``: a paid broadcast (``--paid-recipients``) configured for 1,000/s against a sandbox
  allowing ``--paid-limits`` (default 300 and 600/s), the same figures as the free rows;
- ``edit``: a 150-recipient campaign sent at full speed, then the sandbox's limit falls to
  ``--edit-limit`` (default 5/s) and the campaign is edited (editMessageText): 429s, settle and
  rate of the edits, the rate stored. The sandbox counts an edit's 429s like a message's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from _common import (
    SandboxProcess,
    banner,
    botdesk_app,
    create_campaign,
    register_bot,
    seed_subscribers,
    token_for,
)

CONFIGURED = 30.0
GROUP_CONFIGURED = 120.0  # per minute
PAID_CONFIGURED = 1000.0
BURST = 10.0
TEXT = "Spring sale: 20% off everything this week."
TOML = "[network]\nconnect_timeout = 5.0\nread_timeout = 10.0\n"
WINDOW = 3.0


def settle(arrivals: list[float], refusals: list[float], limit: float) -> float | None:
    """The first arrival from which every 3 s window is 429-free and within the band."""
    if not arrivals:
        return None
    end = arrivals[-1]
    candidates = [t for t in arrivals if t + WINDOW <= end]
    for start in candidates:
        ok = True
        for t0 in (t for t in candidates if t >= start):
            if any(t0 <= r < t0 + WINDOW for r in refusals):
                ok = False
                break
            n = sum(1 for t in arrivals if t0 <= t < t0 + WINDOW)
            if n / WINDOW < 0.9 * limit:
                ok = False
                break
        if ok:
            return start
    return None


async def stored_rate(app: Any, bot_id: int, *, paid: bool = False) -> float | None:
    """The rate botdesk stored for the bot (``bots.learned_rate`` / ``learned_paid_rate``)."""
    from sqlalchemy import select

    from botdesk.store.models import Bot

    column = Bot.learned_paid_rate if paid else Bot.learned_rate
    async with app.db.read() as conn:
        value = (await conn.execute(select(column).where(Bot.id == bot_id))).scalar()
    return None if value is None else float(value)


async def campaign(limit: float, recipients: int, rise_at: float | None) -> dict[str, Any]:
    from botdesk.runtime.foreground import run_campaign

    username, token = "conv_bot", token_for(1)
    async with SandboxProcess(bots=[(username, token)], bot_rate=limit, bot_burst=BURST) as sb:
        chats = await sb.add_users(recipients, username)
        async with botdesk_app(TOML) as app:
            bot = await register_bot(app, "conv", token, sb.base)
            await seed_subscribers(app, bot.id, chats)
            cid = await create_campaign(app, bot, TEXT)
            task = asyncio.create_task(run_campaign(app, cid))
            if rise_at is not None:
                await asyncio.sleep(rise_at)
                await sb.set_bot_rate(CONFIGURED)
            stats = await task
            learned = await stored_rate(app, bot.id, paid=False)
        arrivals = sorted(await sb.arrivals(username))
        refusals = sorted(await sb.refusals())
    return {"sent": stats.sent, "arrivals": arrivals, "refusals": refusals, "learned": learned}


def report(limit: float, run: dict[str, Any], kind: str = "free") -> None:
    arr, ref = run["arrivals"], run["refusals"]
    t0 = arr[0]
    s = settle(arr, ref, limit)
    half = [t for t in arr if t >= (arr[0] + arr[-1]) / 2]
    rate = (len(half) - 1) / (half[-1] - half[0]) if len(half) > 1 else 0.0
    settle_s = "-" if s is None else f"{s - t0:.1f}"
    before = "-" if s is None else str(sum(1 for r in ref if r < s))
    learned = "-" if run["learned"] is None else f"{run['learned']:.2f}"
    print(f"{kind:5s} limit {limit:5.1f}/s  sent {run['sent']:5d}  429s {len(ref):3d}  "
          f"429s_to_settle {before:>3}  settle_s {settle_s:>5}  rate {rate:5.2f}/s "
          f"({rate / limit:.0%} of the limit)  learned {learned}  "
          f"span {arr[-1] - t0:.1f}s", flush=True)  # fmt: skip
    print("  429s at s:", " ".join(f"{r - t0:.1f}" for r in ref), flush=True)


async def chat_kind(group: bool, real: float, seconds: float) -> dict[str, Any]:
    """Three chats (or groups) at botdesk's configured per-chat (per-group) rate through the
    bot's gate, against a sandbox enforcing ``real`` (per second; per minute for groups)."""
    from botdesk.clock import SystemClock
    from botdesk.delivery.pacing import Gate
    from botdesk.delivery.ratelimit import BotRateLimiter, Priority
    from botdesk.telegram.gateway import Outcome, OutgoingMessage, bot_session, send

    username, token = "chat_bot", token_for(2)
    limits = {"group_per_minute": real, "group_burst": 1.0} if group else {"chat_rate": real}
    async with SandboxProcess(bots=[(username, token)], chat_burst=1.0, **limits) as sb:
        if group:
            chats = [await sb.add_group(username, f"group {i}") for i in range(3)]
        else:
            chats = await sb.add_users(3, username)
        clock = SystemClock()
        limiter = BotRateLimiter(clock=clock, group_per_minute=GROUP_CONFIGURED)
        gate = Gate(limiter, clock)
        t0 = clock.monotonic()
        async with bot_session(token, api_base=sb.base) as bot:

            async def writer(chat: int, start: float) -> None:
                await asyncio.sleep(start)
                n = 0
                while clock.monotonic() - t0 < seconds:
                    admitted = await gate.admit(chat, is_group=group, priority=Priority.REPLY)
                    if await gate.depart(admitted) is not None:
                        continue
                    sent_at = clock.monotonic()
                    result = await send(bot, OutgoingMessage(chat, f"message {n}", None))
                    await gate.answered(result, sent_at=sent_at, chat_id=chat, is_group=group)
                    n += result.outcome is Outcome.SENT

            await asyncio.gather(*(writer(c, 1.7 * i) for i, c in enumerate(chats)))
        await limiter.aclose()
        chat_rate, group_rate = limiter.chat_rates()
        arrivals = await sb.chat_arrivals()
        refusals = sorted(await sb.refusals())
    return {
        "chats": chats,
        "arrivals": arrivals,
        "refusals": refusals,
        "learned": group_rate if group else chat_rate,
        "t0": t0,
        "seconds": seconds,
    }


def report_chats(kind: str, real: float, run: dict[str, Any]) -> None:
    """429s, the second half's, and each chat's accepted rate over the second half."""
    half = run["t0"] + run["seconds"] / 2
    ref = run["refusals"]
    per_minute = kind == "group"
    shares: list[float] = []
    for chat in run["chats"]:
        times = sorted(t for t, c in run["arrivals"] if c == chat and t >= half)
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        shares.append(rate * (60.0 if per_minute else 1.0) / real)
    unit = "/min" if per_minute else "/s"
    configured = GROUP_CONFIGURED if per_minute else 1.0
    print(f"{kind:5s} limit {real:5.1f}{unit} (configured {configured:g}{unit})  "
          f"429s {len(ref):3d}  in_second_half {sum(1 for r in ref if r >= half):2d}  "
          f"accepted per chat over the second half {min(shares):.0%}-{max(shares):.0%} of the "
          f"limit  learned {run['learned']:.2f}{unit}  span {run['seconds']:.0f}s",
          flush=True)  # fmt: skip
    print("  429s at s:", " ".join(f"{r - run['t0']:.1f}" for r in ref), flush=True)


async def paid_campaign(limit: float, recipients: int) -> dict[str, Any]:
    from botdesk.runtime.foreground import run_campaign

    username, token = "paid_bot", token_for(3)
    async with SandboxProcess(
        bots=[(username, token)], bot_rate=CONFIGURED, bot_burst=BURST, paid_rate=limit
    ) as sb:
        await sb.set_stars(username, 1e6)
        chats = await sb.add_users(recipients, username)
        async with botdesk_app(TOML) as app:
            bot = await register_bot(app, "paid", token, sb.base)
            await seed_subscribers(app, bot.id, chats)
            cid = await create_campaign(app, bot, TEXT, paid=True)
            stats = await run_campaign(app, cid)
            learned = await stored_rate(app, bot.id, paid=True)
        arrivals = sorted(await sb.arrivals(username))
        refusals = sorted(await sb.refusals())
    return {"sent": stats.sent, "arrivals": arrivals, "refusals": refusals, "learned": learned}


async def edit_campaign(limit: float, recipients: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from botdesk.campaign_actions import ActionSpec, CampaignActions
    from botdesk.runtime.action_run import run_action
    from botdesk.runtime.foreground import run_campaign

    username, token = "edit_bot", token_for(4)
    async with SandboxProcess(bots=[(username, token)], bot_rate=CONFIGURED, bot_burst=BURST) as sb:
        chats = await sb.add_users(recipients, username)
        async with botdesk_app(TOML) as app:
            bot = await register_bot(app, "edit", token, sb.base)
            await seed_subscribers(app, bot.id, chats)
            cid = await create_campaign(app, bot, TEXT)
            await run_campaign(app, cid)
            sent_429s = len(await sb.refusals())
            await sb.set_bot_rate(limit)
            service = CampaignActions(app.db)
            aid = await service.start(
                ActionSpec(campaign_id=cid, kind="edit", text=TEXT + " (ends Sunday)"),
                now=datetime.now(UTC),
            )
            await run_action(app, aid)
            edited = int((await service.status(aid))["edited"])
            learned = await stored_rate(app, bot.id, paid=False)
        arrivals = sorted(await sb.call_arrivals())
        refusals = sorted(await sb.refusals())[sent_429s:]
    return {"sent": edited, "arrivals": arrivals, "refusals": refusals, "learned": learned}


def report_rise(run: dict[str, Any], rise_at: float) -> None:
    arr, ref = run["arrivals"], run["refusals"]
    t0 = arr[0]
    rise = t0 + rise_at  # the campaign's first message left within ms of its start
    reached = next(
        (
            t
            for i, t in enumerate(arr)
            if t > rise and i >= 60 and 60 / (t - arr[i - 60]) >= 0.9 * CONFIGURED
        ),
        None,
    )
    after = "-" if reached is None else f"{reached - rise:.1f}"
    print(f"rise 5 -> 30/s at {rise_at:.0f}s: reached 90% of 30/s {after}s after the rise; "
          f"429s {len(ref)} ({sum(1 for r in ref if r > rise)} after the rise); "
          f"sent {run['sent']} in {arr[-1] - t0:.1f}s", flush=True)  # fmt: skip


async def main_async(args: argparse.Namespace) -> None:
    banner(sys.argv)
    print(f"botdesk configured rate {CONFIGURED}/s; sandbox bot burst {BURST:.0f}, "
          "latency 30-120 ms", flush=True)  # fmt: skip
    if args.rise:
        run = await campaign(5.0, args.rise_recipients, args.rise_at)
        report_rise(run, args.rise_at)
        return
    kinds = args.kinds.split(",")
    if "free" in kinds:
        for limit in floats(args.limits):
            report(limit, await campaign(limit, args.recipients, None))
    for kind in ("chat", "group"):
        if kind in kinds:
            limits = args.chat_limits if kind == "chat" else args.group_limits
            for real in floats(limits):
                run = await chat_kind(kind == "group", real, args.chat_seconds)
                report_chats(kind, real, run)
    if "paid" in kinds:
        print(f"paid: configured {PAID_CONFIGURED:.0f}/s, {args.paid_recipients} recipients, "
              "slow start off (the default)", flush=True)  # fmt: skip
        for limit in floats(args.paid_limits):
            report(limit, await paid_campaign(limit, args.paid_recipients), "paid")
    if "edit" in kinds:
        print(f"edit: {args.recipients} sent at {CONFIGURED:.0f}/s, then the limit falls and "
              "the campaign is edited (editMessageText)", flush=True)  # fmt: skip
        report(args.edit_limit, await edit_campaign(args.edit_limit, args.recipients), "edit")


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="3,5,15,30")
    ap.add_argument("--recipients", type=int, default=150)
    ap.add_argument("--rise", action="store_true")
    ap.add_argument("--rise-at", type=float, default=20.0)
    ap.add_argument("--rise-recipients", type=int, default=2500)
    ap.add_argument("--kinds", default="free,chat,group,paid,edit")
    ap.add_argument("--chat-limits", default="0.5,0.8")
    ap.add_argument("--group-limits", default="60,90")
    ap.add_argument("--chat-seconds", type=float, default=60.0)
    ap.add_argument("--paid-limits", default="300,600")
    ap.add_argument("--paid-recipients", type=int, default=6000)
    ap.add_argument("--edit-limit", type=float, default=5.0)
    asyncio.run(main_async(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
