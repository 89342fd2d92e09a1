"""Campaign delivery rate at Telegram-like limits: botdesk next to two common client loops.

    .venv/bin/python bench/delivery_rate.py [--recipients 3000] [--loop-recipients 1000]
        [--latency 30-120] [--sequential] [--only botdesk,aiogram_loop,ptb_gather]

One sandbox process (default limits: 30 msg/s per bot, burst 10; 1 msg/s per chat; latency
30-120 ms) serves three bots, one per contender, so their limits are independent and the
contenders run side by side (``--sequential`` runs them one after the other). Each contender
is its own process:

- ``botdesk``: a campaign delivered by the engine (``run_campaign``), SQLite ledger, default
  delivery settings (rate 30/s).
- ``aiogram_loop``: the classic loop -- ``await bot.send_message(...)``, then
  ``await asyncio.sleep(0.05)``; a 429 is waited out and the message resent.
- ``ptb_gather``: python-telegram-bot 22 ``ExtBot`` with ``AIORateLimiter()`` (its defaults:
  30/s overall, no retries) and ``asyncio.gather`` over every recipient.

The rate is the sandbox's own record: accepted messages / seconds from the first accepted
message to the last (``/bench/arrivals``, see ``_common.py``); 429s are the sandbox's per-bot
counter of limiter refusals. The classic loop is slow by construction, so by default it gets
fewer recipients (its rate does not depend on the count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    SandboxProcess,
    banner,
    botdesk_app,
    cpu_self,
    create_campaign,
    rate_of,
    register_bot,
    seed_subscribers,
    token_for,
)

CONTENDERS = ("botdesk", "aiogram_loop", "ptb_gather")
TEXT = "Spring sale: 20% off everything this week."
LIMIT = 30.0
GOAL_SHARE = 0.99


# -- contenders (each runs in its own process) ---------------------------------------------


async def run_botdesk(base: str, token: str, chats: list[int]) -> dict[str, Any]:
    from botdesk.runtime.foreground import run_campaign

    toml = "[network]\nconnect_timeout = 5.0\nread_timeout = 10.0\n"
    async with botdesk_app(toml) as app:
        bot = await register_bot(app, "rate", token, base)
        await seed_subscribers(app, bot.id, chats)
        cid = await create_campaign(app, bot, TEXT)
        cpu0, t0 = cpu_self(), time.monotonic()
        stats = await run_campaign(app, cid)
        t1, cpu1 = time.monotonic(), cpu_self()
    return {"sent": stats.sent, "failed": stats.failed + stats.uncertain, "retried": stats.retried,
            "t0": t0, "t1": t1, "cpu": cpu1 - cpu0}  # fmt: skip


async def run_aiogram_loop(base: str, token: str, chats: list[int]) -> dict[str, Any]:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter

    session = AiohttpSession(api=TelegramAPIServer.from_base(base))
    bot = Bot(token, session=session)
    sent = failed = retried = 0
    cpu0, t0 = cpu_self(), time.monotonic()
    try:
        for chat in chats:
            while True:
                try:
                    await bot.send_message(chat, TEXT)
                    sent += 1
                except TelegramRetryAfter as exc:
                    retried += 1
                    await asyncio.sleep(exc.retry_after)
                    continue
                except TelegramAPIError:
                    failed += 1
                break
            await asyncio.sleep(0.05)
    finally:
        t1, cpu1 = time.monotonic(), cpu_self()
        await session.close()
    return {"sent": sent, "failed": failed, "retried": retried, "t0": t0, "t1": t1,
            "cpu": cpu1 - cpu0}  # fmt: skip


async def run_ptb_gather(base: str, token: str, chats: list[int]) -> dict[str, Any]:
    from telegram.ext import AIORateLimiter, ExtBot

    async with ExtBot(token, base_url=f"{base}/bot", rate_limiter=AIORateLimiter()) as bot:
        cpu0, t0 = cpu_self(), time.monotonic()
        results = await asyncio.gather(
            *(bot.send_message(c, TEXT) for c in chats), return_exceptions=True
        )
        t1, cpu1 = time.monotonic(), cpu_self()
    errors = [r for r in results if isinstance(r, BaseException)]
    kinds: dict[str, int] = {}
    for e in errors:
        kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
    return {"sent": len(results) - len(errors), "failed": len(errors), "errors": kinds,
            "t0": t0, "t1": t1, "cpu": cpu1 - cpu0}  # fmt: skip


RUNNERS = {"botdesk": run_botdesk, "aiogram_loop": run_aiogram_loop, "ptb_gather": run_ptb_gather}


def contender_main(args: argparse.Namespace) -> int:
    chats = json.loads(Path(args.chats_file).read_text())
    result = asyncio.run(RUNNERS[args.contender](args.base, args.token, chats))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# -- orchestration -------------------------------------------------------------------------


async def run_contender(
    name: str, base: str, token: str, chats: list[int], workdir: Path
) -> dict[str, Any]:
    chats_file = workdir / f"{name}.json"
    chats_file.write_text(json.dumps(chats))
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--contender", name, "--base", base, "--token", token,
            "--chats-file", str(chats_file), stdout=asyncio.subprocess.PIPE, stderr=out,
        )  # fmt: skip
        stdout, _ = await proc.communicate()
    for line in stdout.decode().splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise SystemExit(f"{name} produced no result (exit {proc.returncode}); see {log}")


async def main_async(args: argparse.Namespace) -> None:
    import tempfile

    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in CONTENDERS:
            raise SystemExit(f"unknown contender {n!r}; known: {', '.join(CONTENDERS)}")
    lo, _, hi = args.latency.partition("-")
    latency = (float(lo) / 1000, float(hi or lo) / 1000)
    bots = [(f"{n}_bot", token_for(i + 1)) for i, n in enumerate(names)]
    workdir = Path(tempfile.mkdtemp(prefix="bench-rate-", dir="/tmp"))
    async with SandboxProcess(bots=bots, latency=latency, seed=5) as sb:
        chats: dict[str, list[int]] = {}
        for n, (username, _t) in zip(names, bots, strict=True):
            count = args.loop_recipients if n == "aiogram_loop" else args.recipients
            chats[n] = await sb.add_users(count, username)
        print(f"sandbox pid {sb.pid}: limit {LIMIT:g}/s per bot, latency {args.latency} ms; "
              f"recipients {', '.join(f'{n}={len(c)}' for n, c in chats.items())}; "
              f"{'sequential' if args.sequential else 'side by side'}", flush=True)  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        jobs = [(n, sb.base, t, chats[n], workdir) for n, (_u, t) in zip(names, bots, strict=True)]
        if args.sequential:
            for job in jobs:
                results[job[0]] = await run_contender(*job)
        else:
            done = await asyncio.gather(*(run_contender(*job) for job in jobs))
            results = dict(zip(names, done, strict=True))
        print(f"\n{'contender':<13} {'recipients':>10} {'accepted':>8} {'429s':>5} "
              f"{'other err':>9} {'rate/s':>7} {'% of limit':>10} {'client s':>8} "
              f"{'client CPU s':>12}")  # fmt: skip
        for n, (username, _t) in zip(names, bots, strict=True):
            times = await sb.arrivals(username)
            st = await sb.bot_stats(username)
            r = results[n]
            rate = rate_of(times)
            other = st["errors"] - st["rate_limited"]
            print(f"{n:<13} {len(chats[n]):>10} {st['accepted']:>8} {st['rate_limited']:>5} "
                  f"{other:>9} {rate:>7.2f} {100 * rate / LIMIT:>9.1f}% "
                  f"{r['t1'] - r['t0']:>8.1f} {r['cpu']:>12.2f}")  # fmt: skip
            if n == "botdesk":
                ok = rate >= GOAL_SHARE * LIMIT and st["rate_limited"] == 0
                print(f"  goal (>= {GOAL_SHARE:.0%} of {LIMIT:g}/s, zero 429s): "
                      f"{'MET' if ok else 'NOT MET'}", flush=True)  # fmt: skip
            if r.get("errors"):
                print(f"  {n} client-side errors: {r['errors']}")
    print(f"\nlogs: {workdir}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=3000)
    ap.add_argument("--loop-recipients", type=int, default=1000)
    ap.add_argument("--latency", default="30-120", metavar="MIN-MAX (ms)")
    ap.add_argument("--sequential", action="store_true")
    ap.add_argument("--only", default=",".join(CONTENDERS))
    ap.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--chats-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.contender:
        return contender_main(args)
    banner(sys.argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
