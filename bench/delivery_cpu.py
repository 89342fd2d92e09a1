"""CPU per delivered message: botdesk's engine next to a bare aiogram send loop.

    .venv/bin/python bench/delivery_cpu.py [--messages 5000] [--concurrency 16] [--rounds 5]
        [--backend sqlite|postgresql] [--pg-url URL]

The sandbox runs in its own process with every limit lifted and no latency, so every side does
the same N sendMessage calls to the same recipients and only its own work is measured: this
process's CPU time (``resource.getrusage``: user + system, every thread, so SQLite's lane thread
counts against botdesk). All share one event loop; each round runs the sides back to back:

- ``bare``: ``await bot.send_message(chat, text)`` over the recipients from ``concurrency``
  tasks sharing one aiogram ``Bot``, as fast as the sandbox answers (a hand-written broadcast,
  minus any ledger, and minus any rate limit: Telegram would refuse most of it);
- ``botdesk``: ``run_campaign`` with default delivery settings except ``rate = 1000`` (the
  most Telegram allows) and ``in_flight = concurrency``; subscribers are seeded and the
  campaign created beforehand; the snapshot, ledger, limiter, templates, pacing and completion
  are inside the measurement;
- ``paced``: the bare loop with its sends spaced evenly to the rate botdesk reached in the same
  round (one shared next-slot time; each sender sleeps until its slot);
- ``paced on ticks``: the same, its slots rounded up to the 10 ms grid botdesk's limiter uses
  (several sends per wake-up): the cheapest way a loop can keep that rate;
- ``botdesk, no limit``: ``run_campaign`` again with the limiter's rate lifted to 1,000,000/s
  (here only: the product caps it at 1,000), so it too sends as fast as it can;
- ``botdesk, personal``: ``run_campaign`` of a text with ``{first_name}``: each recipient's
  text is rendered and url-encoded into the campaign's request body (built once, as for a
  text without variables); the bare loop sends one text.

Two comparisons are like for like: botdesk against the bare loop paced to the same rate, and
botdesk without a limit against the unpaced bare loop. botdesk at Telegram's rate against the
unpaced loop also compares sending at ~950/s with sending at ~2,000-3,000/s: a loop that is never
idle batches its event-loop work (about 0.2 loop iterations per message here, against 1.5-4.5
for any loop that waits for a rate), and ``paced / bare`` shows what that costs a loop with no
ledger at all. Each ratio is taken per round (its sides ran back to back) and the median is
reported with its range: the 2 shared cores move single figures by 10-40% between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

from _common import (
    DEFAULT_PG_URL,
    Backend,
    SandboxProcess,
    banner,
    botdesk_app,
    cpu_self,
    create_campaign,
    register_bot,
    seed_subscribers,
    token_for,
)

from botdesk.delivery.ratelimit import DEFAULT_TICK

BOT = "cpu_bot"
TEXT = "Spring sale: 20% off everything this week."
GOAL_RATIO = 1.3
TICK = DEFAULT_TICK
UNLIMITED = 1_000_000.0
PERSONAL_TEXT = "Hi {first_name}! " + TEXT
SIDES = ("bare", "botdesk", "paced", "paced on ticks", "botdesk, no limit", "botdesk, personal")


async def send_loop(
    bot: Any, chats: list[int], concurrency: int, rate: float | None = None, tick: float = 0.0
) -> tuple[float, float, int]:
    """The bare loop: ``concurrency`` tasks share the recipients; with ``rate``, each send
    first sleeps until its slot (one shared next-slot time), rounded up to ``tick``."""
    it = iter(chats)
    sent = 0
    next_slot = time.monotonic()

    async def worker() -> None:
        nonlocal sent, next_slot
        for chat in it:
            if rate is not None:
                slot = next_slot
                next_slot = max(slot, time.monotonic()) + 1.0 / rate
                if tick:
                    slot = math.ceil(slot / tick) * tick
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await bot.send_message(chat, TEXT)
            sent += 1

    cpu0, t0 = cpu_self(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return cpu_self() - cpu0, time.perf_counter() - t0, sent


async def botdesk_run(
    app: Any, bot: Any, *, unlimited: bool = False, text: str = TEXT
) -> tuple[float, float, int]:
    from botdesk.runtime.foreground import run_campaign

    cid = await create_campaign(app, bot, text)
    with lifted_limit() if unlimited else contextlib.nullcontext():
        cpu0, t0 = cpu_self(), time.perf_counter()
        stats = await run_campaign(app, cid)
        spent = cpu_self() - cpu0, time.perf_counter() - t0
    return spent[0], spent[1], stats.sent


@contextlib.contextmanager
def lifted_limit() -> Iterator[None]:
    """Channels opened meanwhile get a limiter at 1,000,000/s (config caps ``rate`` at 1,000)."""
    from botdesk.delivery.ratelimit import BotRateLimiter
    from botdesk.runtime import channel

    def unlimited(**kwargs: Any) -> BotRateLimiter:
        return BotRateLimiter(**{**kwargs, "rate": UNLIMITED})

    channel.BotRateLimiter = unlimited  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        channel.BotRateLimiter = BotRateLimiter  # type: ignore[misc]


async def main_async(args: argparse.Namespace) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    token = token_for(60)
    backend = Backend(args.backend, url=args.pg_url if args.backend == "postgresql" else None)
    toml = (f"[delivery]\nrate = 1000.0\nin_flight = {args.concurrency}\n"
            "[network]\nconnect_timeout = 5.0\nread_timeout = 10.0\n")  # fmt: skip
    async with SandboxProcess(bots=[(BOT, token)], latency=(0.0, 0.0), limits=False) as sb:
        chats = await sb.add_users(args.messages, BOT)
        session = AiohttpSession(api=TelegramAPIServer.from_base(sb.base))
        bare_bot = Bot(token, session=session)
        try:
            async with botdesk_app(toml, backend=backend) as app:
                bot = await register_bot(app, "cpu", token, sb.base)
                await seed_subscribers(app, bot.id, chats)
                print(f"sandbox pid {sb.pid} (no limits, no latency); {len(chats)} messages per "
                      f"run, concurrency {args.concurrency}, backend {args.backend}",
                      flush=True)  # fmt: skip
                await send_loop(bare_bot, chats[:300], args.concurrency)  # warm-up
                await botdesk_run(app, bot)  # warm-up: a whole campaign
                await send_loop(bare_bot, chats[:300], args.concurrency, 1000.0)  # warm-up
                runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in SIDES}
                for k in range(args.rounds):
                    runs["bare"].append(await send_loop(bare_bot, chats, args.concurrency))
                    runs["botdesk"].append(await botdesk_run(app, bot))
                    rate = runs["botdesk"][-1][2] / runs["botdesk"][-1][1]
                    runs["paced"].append(await send_loop(bare_bot, chats, args.concurrency, rate))
                    runs["paced on ticks"].append(
                        await send_loop(bare_bot, chats, args.concurrency, rate, TICK)
                    )
                    runs["botdesk, no limit"].append(await botdesk_run(app, bot, unlimited=True))
                    runs["botdesk, personal"].append(
                        await botdesk_run(app, bot, text=PERSONAL_TEXT)
                    )
                    print(f"  round {k + 1}: " + "; ".join(
                        f"{side} {1e6 * r[-1][0] / r[-1][2]:.0f} us ({r[-1][2] / r[-1][1]:,.0f}/s)"
                        for side, r in runs.items()), flush=True)  # fmt: skip
                if args.profile:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                    await botdesk_run(app, bot)
                    prof.disable()
                    prof.dump_stats(args.profile)
        finally:
            await session.close()
    report(runs, args.rounds)
    print(f"load average during the run: {os.getloadavg()[0]:.2f} (2 cores shared)")


def report(runs: dict[str, list[tuple[float, float, int]]], rounds: int) -> None:
    for side, r in runs.items():
        us = statistics.median(1e6 * cpu / sent for cpu, _wall, sent in r)
        rate = statistics.median(sent / wall for _cpu, wall, sent in r)
        print(f"{side:<18}: {us:5.0f} us CPU per message (median of {rounds}; {rate:,.0f} msg/s)")

    def ratio(num: str, den: str, what: str, goal: bool) -> None:
        per_round = [a[0] / a[2] / (b[0] / b[2]) for a, b in zip(runs[num], runs[den], strict=True)]
        mid = statistics.median(per_round)
        verdict = (
            f" (goal <= {GOAL_RATIO}x): {'MET' if mid <= GOAL_RATIO else 'NOT MET'}" if goal else ""
        )
        print(f"{num + ' / ' + den:<30} {mid:.2f}x [{min(per_round):.2f}-{max(per_round):.2f}]"
              f"  {what}{verdict}")  # fmt: skip

    print("ratios, median of the per-round ratios [range]:")
    ratio("botdesk", "paced", "like for like at botdesk's rate", True)
    ratio("botdesk, no limit", "bare", "like for like, both unpaced", True)
    ratio("botdesk", "bare", "botdesk at Telegram's rate vs the unpaced loop", True)
    ratio("botdesk, personal", "bare", "a text with {first_name}: rendered per send", False)
    ratio("paced", "bare", "what pacing alone costs a bare loop", False)
    ratio("paced on ticks", "bare", "the same on botdesk's 10 ms grid", False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", metavar="FILE", help="cProfile one extra botdesk run into FILE")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("BOTDESK_BENCH_PG_URL", DEFAULT_PG_URL))
    args = ap.parse_args()
    banner(sys.argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
