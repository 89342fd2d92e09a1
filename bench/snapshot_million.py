"""One million subscribers: campaign creation (validation) and the audience snapshot at start.

    .venv/bin/python bench/snapshot_million.py [--subscribers 1000000]
        [--backend sqlite|postgresql|both] [--pg-url URL] [--skip-exact]

Per backend (SQLite file in /tmp; PostgreSQL in a fresh schema of ``--pg-url``, dropped
afterwards) the subscribers are inserted inside the database (a recursive CTE on SQLite,
``generate_series`` on PostgreSQL), then timed, each with this process's peak RSS:

- ``create`` with a plain text: validation counts the audience;
- ``create`` with ``{first_name}``: validation proves every recipient's text fits from the
  longest values (one aggregate query);
- ``create`` with a custom field (``{city}``, every subscriber has one in ``fields``): the
  bound does not cover JSON fields, so validation renders and measures the text for every
  recipient (``--skip-exact`` leaves it out);
- ``Campaigns(db).start(id)``: the snapshot, one ``INSERT ... SELECT``.

Peak RSS is the kernel's high-water mark (VmHWM), reset before each step by writing 5 to
/proc/self/clear_refs, so each figure is that step's own peak (the whole process, including
the interpreter and libraries; the PostgreSQL server's memory is not in it). Goals: the
snapshot within 10 s and at most 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from _common import DEFAULT_PG_URL, Backend, banner, botdesk_app

SNAPSHOT_GOAL_S = 10.0
RSS_GOAL_MB = 250.0
T = TypeVar("T")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measured(step: Callable[[], Awaitable[T]]) -> tuple[T, float, float]:
    """(result, seconds, peak RSS MB of this step)."""
    reset_peak()
    t0 = time.perf_counter()
    result = await step()
    return result, time.perf_counter() - t0, rss_mb("VmHWM")


async def seed(app: Any, n: int) -> int:
    from sqlalchemy import insert, text

    from botdesk.store.models import Bot

    now = datetime.now(UTC)
    async with app.db.write() as conn:
        bot_id = int(
            (
                await conn.execute(
                    insert(Bot)
                    .values(
                        name="big",
                        telegram_id=7000000099,
                        username="big_bot",
                        api_base="http://127.0.0.1:9",
                        token_secret="bot.big.token",
                        created_at=now,
                    )
                    .returning(Bot.id)
                )
            ).scalar_one()
        )
        cols = (
            "bot_id, chat_id, status, first_name, username, language, is_group, fields, "
            "joined_at, updated_at"
        )
        values = (f"{bot_id}, 100000000 + x, 'active', 'User' || x, 'user' || x, "
                  "CASE x % 3 WHEN 0 THEN 'en' WHEN 1 THEN 'de' ELSE 'es' END, false, "
                  "'{\"city\": \"Berlin\"}'")  # fmt: skip
        if app.db.is_sqlite:
            stamp = now.replace(tzinfo=None).isoformat(sep=" ")
            sql = (f"INSERT INTO subscribers ({cols}) WITH RECURSIVE c(x) AS "
                   f"(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                   f"SELECT {values}, '{stamp}', '{stamp}' FROM c")  # fmt: skip
        else:
            sql = (f"INSERT INTO subscribers ({cols}) "
                   f"SELECT {values}, now(), now() FROM generate_series(1, {n}) AS x")  # fmt: skip
        await conn.execute(text(sql))
    if not app.db.is_sqlite:
        async with app.db.write() as conn:
            await conn.execute(text("ANALYZE subscribers"))
    return bot_id


async def run_backend(backend: Backend, args: argparse.Namespace) -> list[tuple[str, ...]]:
    from botdesk.bots import BotRegistry
    from botdesk.campaigns import Campaigns, CampaignSpec

    rows: list[tuple[str, ...]] = []
    async with botdesk_app("", backend=backend) as app:
        t0 = time.perf_counter()
        await seed(app, args.subscribers)
        print(f"  [{backend.name}] {args.subscribers:,} subscribers inserted in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        rec = await BotRegistry(app.db, app.secrets).get("big")
        camps = Campaigns(app.db)

        def create(text: str) -> Callable[[], Awaitable[Any]]:
            return lambda: camps.create(
                CampaignSpec(bot="big", text=text), rec, now=datetime.now(UTC)
            )

        info, secs, peak = await measured(create("Spring sale: 20% off everything."))
        rows.append((backend.name, "create (plain text: count)", f"{secs:.2f}", f"{peak:.0f}", ""))
        print(f"  [{backend.name}] create plain: {secs:.2f} s, peak {peak:.0f} MB", flush=True)
        personal = [("create ({first_name}: length bound)", "Hi {first_name}, spring sale!")]
        if not args.skip_exact:
            # A custom field lives in JSON, which the length bound does not cover: every
            # recipient's text is rendered and measured (the slow, exact path).
            personal.append(("create ({city}: render each)", "Hi {first_name} from {city}!"))
        for label, text in personal:
            _i, secs, peak = await measured(create(text))
            rows.append((backend.name, label, f"{secs:.2f}", f"{peak:.0f}", ""))
            print(f"  [{backend.name}] {label}: {secs:.2f} s, peak {peak:.0f} MB", flush=True)
        started, secs, peak = await measured(lambda: camps.start(info.id, now=datetime.now(UTC)))
        ok = secs <= SNAPSHOT_GOAL_S and peak <= RSS_GOAL_MB
        rows.append((backend.name, f"start: snapshot of {started.audience:,}", f"{secs:.2f}",
                     f"{peak:.0f}", "MET" if ok else "NOT MET"))  # fmt: skip
        print(f"  [{backend.name}] start: {secs:.2f} s, peak {peak:.0f} MB, "
              f"audience {started.audience:,}", flush=True)  # fmt: skip
    return rows


async def main_async(args: argparse.Namespace) -> None:
    names = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows: list[tuple[str, ...]] = []
    print(f"process RSS after imports: {rss_mb('VmRSS'):.0f} MB", flush=True)
    for name in names:
        backend = Backend(name, url=args.pg_url if name == "postgresql" else None)
        rows.extend(await run_backend(backend, args))
    print(f"\n{'backend':<11} {'step':<36} {'seconds':>8} {'peak RSS MB':>11}  goal "
          f"(snapshot <= {SNAPSHOT_GOAL_S:g} s, <= {RSS_GOAL_MB:g} MB)")  # fmt: skip
    for r in rows:
        print(f"{r[0]:<11} {r[1]:<36} {r[2]:>8} {r[3]:>11}  {r[4]}")
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores shared)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", default=os.environ.get("BOTDESK_BENCH_PG_URL", DEFAULT_PG_URL))
    ap.add_argument("--skip-exact", action="store_true",
                    help="skip the create that renders every recipient")  # fmt: skip
    args = ap.parse_args()
    banner(sys.argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
