"""Paid broadcast rate: a ``paid=True`` campaign against a 1000 msg/s paid limit.

    .venv/bin/python bench/delivery_paid.py [--recipients 20000] [--latency 30-120]
        [--backend sqlite|postgresql] [--pg-url URL] [--profile FILE]

The sandbox runs in its own process with its default limits (30/s free, paid broadcasts up to
``paid_rate`` = 1000/s, 1 msg/s per chat), 30-120 ms latency and enough Stars for every
message. botdesk delivers one paid campaign with its default settings (paid_rate 1000, so a
250-request in-flight window) in this process. The rate is the sandbox's record: accepted
messages / seconds from the first to the last; 429s are the sandbox's limiter refusals.
``--profile FILE`` writes cProfile stats of the delivery (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from _common import (
    DEFAULT_PG_URL,
    Backend,
    SandboxProcess,
    banner,
    botdesk_app,
    cpu_self,
    create_campaign,
    proc_cpu_seconds,
    rate_of,
    register_bot,
    seed_subscribers,
    token_for,
)

PAID_LIMIT = 1000.0
GOAL = 950.0
BOT = "paid_bot"
TEXT = "Flash sale for {first_name}: 30% off for the next hour."


async def main_async(args: argparse.Namespace) -> None:
    from botdesk.runtime.foreground import run_campaign

    lo, _, hi = args.latency.partition("-")
    latency = (float(lo) / 1000, float(hi or lo) / 1000)
    token = token_for(50)
    backend = Backend(args.backend, url=args.pg_url if args.backend == "postgresql" else None)
    stars = args.recipients  # 0.1 Star per paid message: ten times what is needed
    async with SandboxProcess(
        bots=[(BOT, token)], latency=latency, paid_rate=PAID_LIMIT, star_balance=stars, seed=7
    ) as sb:
        chats = await sb.add_users(args.recipients, BOT)
        toml = "[network]\nconnect_timeout = 5.0\nread_timeout = 10.0\n"
        async with botdesk_app(toml, backend=backend) as app:
            bot = await register_bot(app, "paid", token, sb.base)
            await seed_subscribers(app, bot.id, chats)
            cid = await create_campaign(app, bot, TEXT, paid=True)
            print(f"sandbox pid {sb.pid}: paid limit {PAID_LIMIT:g}/s, latency {args.latency} "
                  f"ms; {len(chats)} recipients; backend {args.backend}; delivering...",
                  flush=True)  # fmt: skip
            prof = None
            if args.profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            server0, cpu0, t0 = proc_cpu_seconds(sb.pid), cpu_self(), time.monotonic()
            stats = await run_campaign(app, cid)
            t1, cpu1, server1 = time.monotonic(), cpu_self(), proc_cpu_seconds(sb.pid)
            if prof is not None:
                prof.disable()
                prof.dump_stats(args.profile)
        times = await sb.arrivals(BOT)
        st = await sb.bot_stats(BOT)
    rate = rate_of(times)
    print(f"\nsent (engine) {stats.sent}, failed {stats.failed}, uncertain {stats.uncertain}, "
          f"retried {stats.retried}")  # fmt: skip
    print(f"sandbox: accepted {st['accepted']} (paid {st['paid']}), 429s {st['rate_limited']}, "
          f"other errors {st['errors'] - st['rate_limited']}")  # fmt: skip
    print(f"rate (sandbox record, first to last accepted): {rate:,.1f} msg/s "
          f"({100 * rate / PAID_LIMIT:.1f}% of {PAID_LIMIT:g}/s)")  # fmt: skip
    print(f"campaign wall (run_campaign, incl. snapshot and completion): {t1 - t0:.2f} s "
          f"-> {stats.sent / (t1 - t0):,.1f} msg/s")  # fmt: skip
    print(f"CPU: botdesk process {cpu1 - cpu0:.2f} s "
          f"({1e6 * (cpu1 - cpu0) / max(1, stats.sent):.0f} us/message), "
          f"sandbox process {server1 - server0:.2f} s")  # fmt: skip
    ok = rate >= GOAL and st["rate_limited"] == 0 and stats.sent == len(chats)
    print(f"goal (>= {GOAL:g} msg/s sustained, all delivered, zero 429s): "
          f"{'MET' if ok else 'NOT MET'}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=20000)
    ap.add_argument("--latency", default="30-120", metavar="MIN-MAX (ms)")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("BOTDESK_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--profile", metavar="FILE")
    args = ap.parse_args()
    banner(sys.argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
