"""Scale-out: four `botdesk serve` processes on one PostgreSQL database, three bots with a
campaign each; the process that owns a bot is killed with -9 mid-campaign.

Its lease expires (``lease_seconds = 3``), a standby process takes the bot over, turns the
rows the dead process left in ``sending`` into ``uncertain`` and finishes the campaign. The
sandbox (in the pytest process, Telegram's limits) is the witness: nobody gets two copies.

The database is a fresh PostgreSQL DATABASE (a home's URL cannot name a schema), created on
the server of ``BOTDESK_TEST_PG_URL`` and dropped afterwards.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import PG_URL, pg_required
from tests.e2e.campaign_support import copies, create, seed, status
from tests.e2e.support import ServeProcess, eventually, register

from botdesk.app import App, open_app
from botdesk.campaigns import Campaigns
from botdesk.store.models import Bot, BotLease, Campaign, Delivery

BOTS = ("a", "b", "c")
RECIPIENTS = 150
SERVE_BOTS = (
    ("--bot", "a", "--bot", "b"),
    ("--bot", "b", "--bot", "c"),
    ("--bot", "c", "--bot", "a"),
    (),
)
IN_FLIGHT = 8


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh database next to the test one; its SQLAlchemy URL."""
    pg_required()
    import asyncpg

    name = f"botdesk_t_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(_dsn(PG_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def sb() -> AsyncIterator[Any]:
    from botdesk.sandbox.testing import running_sandbox

    async with running_sandbox(seed=41, latency=(0.01, 0.05)) as s:
        yield s


@pytest.fixture
async def pg_app(home: Path, pg_database: str) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(
        f"""
[database]
url = "{pg_database}"

[delivery]
lease_seconds = 3
in_flight = {IN_FLIGHT}

[network]
connect_timeout = 2.0
read_timeout = 5.0
"""
    )
    async with open_app(home, configure_logs=False) as a:  # migrates before any serve starts
        yield a


async def _owners(app: App) -> dict[str, str]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(Bot.name, BotLease.owner).join(BotLease, BotLease.bot_id == Bot.id)
        )
        return {r[0]: r[1] for r in rows}


async def _sending(app: App) -> dict[int, str]:
    """Rows in ``sending`` -> the bot they belong to."""
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(Delivery.id, Bot.name)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .join(Bot, Bot.id == Campaign.bot_id)
            .where(Delivery.state == "sending")
        )
        return {r[0]: r[1] for r in rows}


@pytest.mark.pg
@pytest.mark.slow
async def test_four_serves_one_killed_no_double_claim_no_duplicate(
    pg_app: App, sb: Any, home: Path
) -> None:
    app = pg_app
    users: dict[str, set[int]] = {}
    for name in BOTS:
        await register(app, sb, name, f"{name}_bot")
        users[name] = {u.id for u in await seed(app, sb, name, f"{name}_bot", RECIPIENTS)}
    cids = {name: await create(app, name, f"scale news from {name}") for name in BOTS}

    # Each serve is given overlapping bots (the fourth serves all) and the first is up before
    # the others start, so it owns a and b at first. Fair sharing then hands one over: with
    # four live workers every share is one bot, so the steady state is three owners, each bot
    # with standbys.
    serves = [ServeProcess(home, *args) for args in SERVE_BOTS]
    try:
        await serves[0].start()

        async def first_owns() -> bool:
            return set(await _owners(app)) == {"a", "b"}

        await eventually(first_owns, within=60, every=0.1)
        for s in serves[1:]:
            await s.start()

        async def balanced() -> bool:
            owners = await _owners(app)
            return len(owners) == len(BOTS) and len(set(owners.values())) == len(BOTS)

        await eventually(balanced, within=60, every=0.1)
        camps = Campaigns(app.db)
        for name in BOTS:
            await camps.start(cids[name], now=_now())

        async def progress() -> bool:
            return int((await status(app, cids["a"]))["sent"]) >= 30

        await eventually(progress, within=60, every=0.05)
        owners = await _owners(app)
        pid = int(owners["a"].rsplit(":", 1)[1])
        victim = next(s for s in serves if s.proc is not None and s.proc.pid == pid)
        await victim.kill()
        in_flight = await _sending(app)  # frozen: their owner is dead
        killed_bots = {n for n, o in owners.items() if o == owners["a"]}
        assert (await status(app, cids["a"]))["pending"] > 0, "bot a finished before the kill"

        async def all_done() -> bool:
            states = [(await status(app, cids[n]))["state"] for n in BOTS]
            return all(s == "completed" for s in states)

        await eventually(all_done, within=90, every=0.2)
        after = await _owners(app)
        assert owners["a"] not in after.values()  # survivors took its bots over
        assert set(after) == set(BOTS)
        for s in serves:
            if s is not victim:
                assert await s.signal(signal.SIGTERM, within=30) == 0, s.output
    finally:
        for s in serves:
            await s.close()

    assert all("Traceback" not in s.output for s in serves)
    uncertain_total = 0
    for name in BOTS:
        st = await status(app, cids[name])
        assert st["audience"] == RECIPIENTS and st["pending"] == st["sending"] == 0
        assert st["failed"] == st["suppressed"] == st["cancelled"] == 0
        got = copies(sb, f"{name}_bot", f"scale news from {name}")
        assert max(got.values()) == 1, f"bot {name}: a recipient got two copies"
        async with app.db.read() as conn:
            rows = (
                await conn.execute(
                    select(Delivery.id, Delivery.chat_id, Delivery.state).where(
                        Delivery.campaign_id == cids[name]
                    )
                )
            ).all()
        sent = {r.chat_id for r in rows if r.state == "sent"}
        uncertain = {r.id for r in rows if r.state == "uncertain"}
        # Every sent row arrived once; nothing arrived for a row that is neither.
        assert sent <= set(got) <= sent | {r.chat_id for r in rows if r.state == "uncertain"}
        assert {r.chat_id for r in rows} == users[name]
        # Uncertain only for requests in flight in the killed process, on its own bots.
        assert uncertain <= {rid for rid, bot in in_flight.items() if bot == name}
        if name not in killed_bots:
            assert not uncertain
        uncertain_total += len(uncertain)
    assert uncertain_total <= len(killed_bots) * IN_FLIGHT


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
