"""Database statements per minute of one bot's delivery engine at idle, with N sequences.

A bot has N sequences of 3 steps (each step is a standing campaign: 3N running campaigns);
``--enrolled`` subscribers are enrolled in each, their next step due in an hour, so nothing
is due. The bot's delivery engine (what `botdesk serve` runs per bot; it also calls the
sequence runner's tick once a second) runs for ``--seconds`` on a SQLite file (or
PostgreSQL), and every statement it sends is counted: through SQLAlchemy (cursor events on
both engines) and on the SQLite lane (``sqlite3`` trace callback). Reported per minute, with
the write transactions, and the share of statements the sequence runner's tick issues.

    .venv/bin/python bench/idle_queries.py --sequences 0 10 50
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/idle_queries.py ...  # before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    DEFAULT_PG_URL,
    Backend,
    banner,
    botdesk_app,
    insert_bot,
    seed_subscribers,
    token_for,
)

SEQ = """name: s{n}
trigger: {{tag: t{n}}}
stop: {{on_reply: true, goal_tag: done}}
steps:
  - text: "one"
  - text: "two"
    delay: 1h
  - text: "three"
    delay: 1h
"""


@dataclass
class Counts:
    total: int = 0
    writes: int = 0  # write transactions (db.write, write_lane, write_asyncpg)
    runner: int = 0  # statements issued while the sequence runner's tick ran
    kinds: Counter[str] = field(default_factory=Counter)


class _FakeChannel:
    """What the engine needs of a channel; nothing is sent at idle."""

    def __init__(self, record: Any, clock: Any) -> None:
        from aiogram import Bot

        from botdesk.delivery.ratelimit import BotRateLimiter

        self.record = record
        self.bot = Bot(token_for(1))
        self.clock = clock
        self.limiter = BotRateLimiter(clock=clock, rate=30.0, paid_rate=1000.0)

    @property
    def name(self) -> str:
        return str(self.record.name)

    def count_delivery(self, state: str) -> None:
        pass

    async def remember_rates(self) -> None:
        pass


async def _setup(app: Any, n: int, enrolled: int) -> Any:
    from botdesk import sequence_runner
    from botdesk.bots import BotRegistry
    from botdesk.sequences import Sequences
    from botdesk.store.models import Delivery, SubscriberTag

    bot_id = await insert_bot(app)
    rec = await BotRegistry(app.db, app.secrets).get("shop")
    chats = list(range(1000, 1000 + enrolled))
    await seed_subscribers(app, bot_id, chats)
    now = datetime.now(UTC) - timedelta(minutes=5)
    tmp = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    for i in range(n):
        f = tmp / f"s{i}.yaml"
        f.write_text(SEQ.format(n=i))
        await Sequences(app.db).create(f, rec, now=now)
    from botdesk.store.models import Subscriber

    async with app.db.write() as conn:
        sids = list((await conn.execute(select(Subscriber.id))).scalars())
        rows = [{"subscriber_id": s, "tag": f"t{i}"} for i in range(n) for s in sids]
        if rows:
            await conn.execute(insert(SubscriberTag), rows)
    # Enrol and issue step 1, play the engine's part (sent), settle: step 2 due in an hour.
    await sequence_runner.tick(app.db, bot_id, now=now)
    async with app.db.write() as conn:
        await conn.execute(update(Delivery).values(state="sent", updated_at=now))
    await sequence_runner.tick(app.db, bot_id, now=now + timedelta(seconds=1))
    return rec


def _count_statements(db: Any, on_sql: Any) -> None:
    """Every statement: SQLAlchemy's cursor events, the SQLite lane's trace callback, and the
    asyncpg connection the PostgreSQL hot path uses (a counting proxy)."""
    for eng in {id(e): e for e in (db.engine, db._read_engine)}.values():
        event.listen(eng.sync_engine, "before_cursor_execute", on_sql)
    lane = db.lane
    if lane is not None:
        original = lane._transaction

        def tracer(sql: str) -> None:
            on_sql(None, None, sql)

        def transaction(fn: Any) -> Any:
            def traced(conn: Any) -> Any:
                conn.set_trace_callback(tracer)  # from its next statement on
                return fn(conn)

            return original(traced)

        lane._transaction = transaction
    if not db.is_sqlite:
        opened = db.write_asyncpg

        class Counting:
            def __init__(self, pg: Any) -> None:
                self._pg = pg

            def __getattr__(self, name: str) -> Any:
                attr = getattr(self._pg, name)
                if name not in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
                    return attr

                def call(sql: str, *a: Any, **k: Any) -> Any:
                    on_sql(None, None, sql)
                    return attr(sql, *a, **k)

                return call

        @contextlib.asynccontextmanager
        async def counted() -> Any:
            async with opened() as pg:
                yield Counting(pg)

        db.write_asyncpg = counted


def _count_writes(db: Any, counts: Counts) -> None:
    """Write transactions, whichever path opens them (statements, lane, asyncpg)."""
    for name in ("write", "write_lane", "write_asyncpg"):
        original = getattr(db, name)

        def wrapped(*a: Any, _original: Any = original, **k: Any) -> Any:
            counts.writes += 1
            return _original(*a, **k)

        setattr(db, name, wrapped)


async def measure(backend: Backend, n: int, enrolled: int, seconds: float) -> Counts:
    from botdesk import sequence_runner
    from botdesk.clock import SystemClock
    from botdesk.delivery.worker import DeliveryEngine

    counts = Counts()
    in_tick = [False]
    async with botdesk_app("[assistant]\nembeddings = false\n", backend=backend) as app:
        rec = await _setup(app, n, enrolled)

        def on_sql(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            counts.total += 1
            head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
            counts.kinds[head] += 1
            if in_tick[0]:
                counts.runner += 1

        _count_statements(app.db, on_sql)
        _count_writes(app.db, counts)

        real_tick = sequence_runner.tick

        async def tick(*a: Any, **k: Any) -> None:
            in_tick[0] = True
            try:
                await real_tick(*a, **k)
            finally:
                in_tick[0] = False

        sequence_runner.tick = tick  # type: ignore[assignment]
        clock = SystemClock()
        engine = DeliveryEngine(
            channel=_FakeChannel(rec, clock),  # type: ignore[arg-type]
            db=app.db,
            settings=app.settings.delivery,
            clock=clock,
            owner="bench",
        )
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        await asyncio.sleep(2.0)  # start-up (recovery, first refresh) is not idle
        start = Counts(counts.total, counts.writes, counts.runner, Counter(counts.kinds))
        await asyncio.sleep(seconds)
        end = Counts(counts.total, counts.writes, counts.runner, Counter(counts.kinds))
        stop.set()
        await task
        sequence_runner.tick = real_tick  # type: ignore[assignment]
        await engine.ch.bot.session.close()
    scale = 60.0 / seconds
    return Counts(
        round((end.total - start.total) * scale),
        round((end.writes - start.writes) * scale),
        round((end.runner - start.runner) * scale),
        Counter({k: round((v - start.kinds[k]) * scale) for k, v in end.kinds.items()}),
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, nargs="+", default=[0, 10, 50])
    ap.add_argument("--enrolled", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--pg-url", default=None)
    args = ap.parse_args()
    banner(sys.argv)
    url = args.pg_url or (DEFAULT_PG_URL if args.backend == "postgresql" else None)
    backend = Backend(args.backend, url)
    print("| sequences | step campaigns | statements/min | write transactions/min | by the tick |")
    print("|---|---|---|---|---|")
    for n in args.sequences:
        c = await measure(backend, n, args.enrolled, args.seconds)
        print(f"| {n} | {3 * n} | {c.total:,} | {c.writes:,} | {c.runner:,} |")
        print("   by kind:", dict(c.kinds.most_common()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
