"""Four processes writing to one SQLite file: BEGIN IMMEDIATE + retry means no lock errors."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from pathlib import Path

from sqlalchemy import func, insert, select, update

from botdesk.store.db import Database
from botdesk.store.models import Bot, Subscriber

SECONDS = 2.5


def _writer(url: str, worker: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> tuple[int, int, dict[str, object]]:
        db = Database.open(url)
        done = errors = 0
        deadline = time.monotonic() + SECONDS
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                # read-then-write: the pattern that breaks with a deferred BEGIN
                async with db.write() as conn:
                    top = (await conn.execute(select(func.max(Subscriber.chat_id)))).scalar() or 0
                    await conn.execute(
                        insert(Subscriber).values(
                            bot_id=1, chat_id=top + 1 + worker * 10_000_000 + n, status="active"
                        )
                    )
                    await conn.execute(update(Bot).where(Bot.id == 1).values(update_offset=n))
                done += 1
            except Exception as exc:  # counted, then asserted on by the parent
                errors += 1
                out.put(("error", repr(exc)))
        stats = db.stats.as_dict()
        await db.close()
        return done, errors, stats

    out.put(("result", asyncio.run(go())))


async def test_four_processes_never_see_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    db = Database.open(url)
    await db.upgrade()
    async with db.write() as conn:
        await conn.execute(
            insert(Bot).values(
                name="b",
                telegram_id=1,
                username="b",
                token_secret="s",
                status="active",
                update_offset=0,
            )
        )
    await db.close()

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, i, q)) for i in range(4)]
    for p in procs:
        p.start()
    results, errors = [], []
    while len(results) < 4:
        kind, payload = await asyncio.to_thread(q.get, True, 60)
        (results if kind == "result" else errors).append(payload)
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert errors == []
    total = sum(r[0] for r in results)
    assert all(r[1] == 0 for r in results)
    assert total > 100  # each process really wrote, concurrently
    assert sum(int(r[2]["busy_errors"]) for r in results) == 0  # type: ignore[call-overload]
    db = Database.open(url)
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(Subscriber))).scalar() == total
    await db.close()
