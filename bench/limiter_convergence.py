"""How fast botdesk's limiter finds the limit Telegram actually enforces, and what it costs.

    .venv/bin/python bench/limiter_convergence.py [--limits 3,5,15,30] [--recipients 150]
    .venv/bin/python bench/limiter_convergence.py --rise [--rise-at 20] [--rise-recipients 2500]

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


async def campaign(limit: float, recipients: int, rise_at: float | None) -> dict[str, Any]:
    from sqlalchemy import select

    from botdesk.runtime.foreground import run_campaign
    from botdesk.store.models import Bot

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
            async with app.db.read() as conn:
                learned = (
                    await conn.execute(select(Bot.learned_rate).where(Bot.id == bot.id))
                ).scalar()
        arrivals = sorted(await sb.arrivals(username))
        refusals = sorted(await sb.refusals())
    return {"sent": stats.sent, "arrivals": arrivals, "refusals": refusals, "learned": learned}


def report(limit: float, run: dict[str, Any]) -> None:
    arr, ref = run["arrivals"], run["refusals"]
    t0 = arr[0]
    s = settle(arr, ref, limit)
    half = [t for t in arr if t >= (arr[0] + arr[-1]) / 2]
    rate = (len(half) - 1) / (half[-1] - half[0]) if len(half) > 1 else 0.0
    settle_s = "-" if s is None else f"{s - t0:.1f}"
    before = "-" if s is None else str(sum(1 for r in ref if r < s))
    learned = "-" if run["learned"] is None else f"{run['learned']:.2f}"
    print(f"limit {limit:5.1f}/s  sent {run['sent']:5d}  429s {len(ref):3d}  "
          f"429s_to_settle {before:>3}  settle_s {settle_s:>5}  rate {rate:5.2f}/s "
          f"({rate / limit:.0%} of the limit)  learned {learned}  "
          f"span {arr[-1] - t0:.1f}s", flush=True)  # fmt: skip
    print("  429s at s:", " ".join(f"{r - t0:.1f}" for r in ref), flush=True)


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
    for limit in (float(x) for x in args.limits.split(",")):
        report(limit, await campaign(limit, args.recipients, None))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="3,5,15,30")
    ap.add_argument("--recipients", type=int, default=150)
    ap.add_argument("--rise", action="store_true")
    ap.add_argument("--rise-at", type=float, default=20.0)
    ap.add_argument("--rise-recipients", type=int, default=2500)
    asyncio.run(main_async(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
