"""kill -9 of `botdesk campaign run` at random points, restarted until the campaign completes.

The delivering process is the real CLI in a child process; the sandbox runs in the pytest
process with Telegram's limits (30 msg/s per bot, 1/s per chat) and some latency, so a few
hundred recipients take long enough to be killed more than ten times. After every kill the
rows left in ``sending`` are exactly the requests that were in flight at that moment: those,
and only those, may end up ``uncertain``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.e2e.campaign_support import accounted, copies, create, seed, status
from tests.e2e.support import register

from botdesk.app import App, open_app
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import BotLease, Delivery

RECIPIENTS = 300
MIN_KILLS = 10
MAX_KILLS = 11
IN_FLIGHT = 8
# Default rate (30/s, the sandbox's limit too). A short lease: a restart after kill -9 (a new
# pid, so a new owner) must wait for the dead owner's lease to expire; the restarted process
# usually spends that long importing, and retries when it does not.
TOML = f"""
[delivery]
lease_seconds = 2
in_flight = {IN_FLIGHT}

[network]
connect_timeout = 2.0
read_timeout = 5.0
"""
NEEDLE = "crash-proof news"


class CampaignRun:
    """`botdesk campaign run ID` as a child process, output in a file."""

    def __init__(self, home: Path, campaign_id: int, n: int, args: list[str] | None = None) -> None:
        self.home = home
        self.campaign_id = campaign_id
        self.args = args or ["campaign", "run", str(campaign_id)]
        self.log = home / f"run-{n}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> CampaignRun:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
        env.update(BOTDESK_KEYRING="off", PYTHONUNBUFFERED="1")
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "botdesk.cli.main",
                "--home",
                str(self.home),
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)

    async def wait(self, within: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), within)

    async def close(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def limited_sandbox() -> AsyncIterator[Any]:
    async with running_sandbox(seed=11, latency=(0.02, 0.08)) as sb:
        yield sb


@pytest.fixture
async def crash_app(home: Path) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(TOML)
    async with open_app(home, configure_logs=False) as a:
        yield a


async def _rows(app: App, cid: int, state: str | None = None) -> list[Any]:
    q = select(Delivery.id, Delivery.chat_id, Delivery.state, Delivery.message_id).where(
        Delivery.campaign_id == cid
    )
    if state is not None:
        q = q.where(Delivery.state == state)
    async with app.db.read() as conn:
        return list((await conn.execute(q)).all())


async def _touched(app: App, cid: int) -> int:
    async with app.db.read() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).where(
                        Delivery.campaign_id == cid, Delivery.state != "pending"
                    )
                )
            ).scalar()
            or 0
        )


async def _lease_free_at(app: App) -> datetime | None:
    async with app.db.read() as conn:
        return (await conn.execute(select(func.max(BotLease.expires_at)))).scalar()


async def _until_lease_expires(app: App, within: float = 10.0) -> None:
    """A killed owner cannot release its lease; its successor must wait for the expiry."""
    expires = await _lease_free_at(app)
    if expires is None:
        return
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    wait = (expires - datetime.now(UTC)).total_seconds() + 0.05
    assert wait < within, f"lease expires in {wait:.1f}s"
    if wait > 0:
        await asyncio.sleep(wait)


async def _wait_for_progress(app: App, cid: int, run: CampaignRun, within: float) -> bool:
    """True once this run moved a row out of pending; False if it exited first."""
    before = await _touched(app, cid)
    deadline = asyncio.get_running_loop().time() + within
    while run.running:
        if await _touched(app, cid) > before:
            return True
        assert asyncio.get_running_loop().time() < deadline, "campaign run made no progress"
        await asyncio.sleep(0.02)
    return False


@pytest.mark.slow
async def test_kill_9_at_random_points_never_sends_twice(
    crash_app: App, limited_sandbox: Any, home: Path
) -> None:
    app, sb = crash_app, limited_sandbox
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", RECIPIENTS)
    cid = await create(app, "shop", f"Hello {{first_name}}, {NEEDLE}")
    rng = random.Random(2026)
    in_flight_at_kill: list[set[int]] = []
    runs: list[CampaignRun] = []
    code: int | None = None
    try:
        while code is None:
            if len(in_flight_at_kill) >= MAX_KILLS:
                # The last run must not race the killed owner's lease: it is not retried.
                await _until_lease_expires(app)
            run = await CampaignRun(home, cid, len(runs)).start()
            runs.append(run)
            if len(in_flight_at_kill) >= MAX_KILLS:
                code = await run.wait(within=90)
                break
            if not await _wait_for_progress(app, cid, run, within=30):
                code = await run.wait(within=5)
                if code == 2 and "is being served by" in run.output:
                    # Started faster than the dead owner's lease expired: try again.
                    code = None
                    await _until_lease_expires(app)
                    continue
                break  # it finished before we could kill it
            await asyncio.sleep(rng.uniform(0.0, 0.7))
            await run.kill()
            # The process is gone: what it left in `sending` was in flight when it died.
            in_flight_at_kill.append({r.id for r in await _rows(app, cid, "sending")})
    finally:
        for r in runs:
            await r.close()

    outputs = "\n".join(r.output for r in runs)
    assert code == 0, runs[-1].output
    assert "Traceback" not in outputs
    kills = len(in_flight_at_kill)
    assert kills >= MIN_KILLS, f"the campaign ended after {kills} kills; too short to test"

    st = await status(app, cid)
    assert st["state"] == "completed"
    assert st["pending"] == st["sending"] == 0
    assert accounted(st) == st["audience"] == RECIPIENTS
    assert st["failed"] == st["suppressed"] == st["cancelled"] == 0

    got = copies(sb, "shop_bot", NEEDLE)
    assert max(got.values()) == 1, "a recipient got two copies"
    assert set(got) <= {u.id for u in users}

    rows = await _rows(app, cid)
    uncertain = {r.id for r in rows if r.state == "uncertain"}
    in_flight = set().union(*in_flight_at_kill)
    # Uncertain only where a send was in flight at a kill, and every such row is uncertain.
    assert uncertain == in_flight
    assert all(len(s) <= IN_FLIGHT for s in in_flight_at_kill)
    assert len(uncertain) <= kills * IN_FLIGHT
    assert any(in_flight_at_kill), "no kill landed while a request was in flight"

    by_chat = {
        m["chat_id"]: m for m in sb.messages(bot="shop_bot") if NEEDLE in (m.get("text") or "")
    }
    for r in rows:
        if r.state == "sent":
            # Sent means the sandbox has exactly this message, once.
            assert got[r.chat_id] == 1 and by_chat[r.chat_id]["message_id"] == r.message_id
        else:
            assert r.state == "uncertain" and got[r.chat_id] <= 1
    # Nothing reached a chat whose row is neither sent nor uncertain.
    delivered_rows = {r.chat_id for r in rows if r.state in ("sent", "uncertain")}
    assert set(got) <= delivered_rows
