"""A campaign's life against the sandbox: pause and resume, cancel, scheduled start (also when
serve comes back after the time has passed), a subscriber who /stops mid-campaign, and a
foreground run whose lease is taken over.

The sandbox keeps Telegram's limits (30 msg/s per bot) where a campaign must still be running
when the test acts on it; elsewhere the limits are lifted to keep the tests short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from tests.e2e.campaign_support import accounted, copies, create, seed, status
from tests.e2e.support import eventually, register, running

from botdesk.app import App, open_app
from botdesk.campaigns import Campaigns
from botdesk.errors import DeliveryError
from botdesk.runtime.foreground import run_campaign
from botdesk.sandbox.testing import running_sandbox
from botdesk.store.models import BotLease, Campaign, Delivery, Subscriber

IN_FLIGHT = 8
TOML = f"""
[delivery]
in_flight = {IN_FLIGHT}
lease_seconds = 2

[bots.shop]
auto_reply = ""
"""


@pytest.fixture
async def lc_app(home: Path) -> AsyncIterator[App]:
    (home / "botdesk.toml").write_text(TOML)
    async with open_app(home, configure_logs=False) as a:
        yield a


@pytest.fixture
async def limited() -> AsyncIterator[Any]:
    async with running_sandbox(seed=21) as sb:
        yield sb


@pytest.fixture
async def unlimited() -> AsyncIterator[Any]:
    async with running_sandbox(seed=22, limits=False) as sb:
        yield sb


def _now() -> datetime:
    return datetime.now(UTC)


async def _at_least_sent(app: App, cid: int, n: int) -> bool:
    return int((await status(app, cid))["sent"]) >= n


async def _rows(app: App, cid: int) -> dict[int, tuple[str, str | None]]:
    """chat_id -> (state, error)"""
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(Delivery.chat_id, Delivery.state, Delivery.error).where(
                Delivery.campaign_id == cid
            )
        )
        return {r[0]: (r[1], r[2]) for r in rows}


async def test_pause_stops_sending_and_resume_finishes_once(lc_app: App, limited: Any) -> None:
    app, sb = lc_app, limited
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", 150)
    cid = await create(app, "shop", "paused news")
    camps = Campaigns(app.db)
    task = asyncio.create_task(run_campaign(app, cid))
    try:
        await eventually(lambda: _at_least_sent(app, cid, 20), within=30)
        assert (await camps.pause(cid, now=_now())).state == "paused"
        await asyncio.wait_for(task, 20)  # the foreground run returns once paused
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    st = await status(app, cid)
    at_pause = len(sb.messages(bot="shop_bot"))
    assert st["state"] == "paused" and st["sending"] == 0 and st["pending"] > 0
    assert st["sent"] == at_pause and accounted(st) == 150
    await asyncio.sleep(1.0)
    assert len(sb.messages(bot="shop_bot")) == at_pause  # nothing leaves while paused
    with pytest.raises(DeliveryError, match="paused"):
        await run_campaign(app, cid)
    assert (await camps.resume(cid, now=_now())).state == "running"
    await asyncio.wait_for(run_campaign(app, cid), 30)
    st = await status(app, cid)
    assert st["state"] == "completed" and st["sent"] == 150
    got = copies(sb, "shop_bot", "paused news")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}


async def test_cancel_marks_the_pending_rows_and_nothing_is_sent_after(
    lc_app: App, limited: Any
) -> None:
    app, sb = lc_app, limited
    await register(app, sb, "shop", "shop_bot")
    await seed(app, sb, "shop", "shop_bot", 150)
    cid = await create(app, "shop", "cancelled news")
    camps = Campaigns(app.db)
    task = asyncio.create_task(run_campaign(app, cid))
    try:
        await eventually(lambda: _at_least_sent(app, cid, 20), within=30)
        info = await camps.cancel(cid, now=_now())
        at_cancel = len(sb.messages(bot="shop_bot"))
        await asyncio.wait_for(task, 20)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert info.state == "cancelled"
    await asyncio.sleep(0.5)
    st = await status(app, cid)
    assert st["state"] == "cancelled" and st["pending"] == st["sending"] == 0
    assert accounted(st) == 150 and st["cancelled"] > 0
    got = copies(sb, "shop_bot", "cancelled news")
    rows = await _rows(app, cid)
    cancelled = {chat for chat, (state, _e) in rows.items() if state == "cancelled"}
    assert not cancelled & set(got)  # no cancelled recipient received anything
    assert {chat for chat, (state, _e) in rows.items() if state == "sent"} == set(got)
    # After the cancel, only requests already in flight could still land.
    assert len(sb.messages(bot="shop_bot")) - at_cancel <= IN_FLIGHT
    with pytest.raises(DeliveryError, match="cancelled"):
        await camps.resume(cid, now=_now())
    with pytest.raises(DeliveryError, match="cancelled"):
        await run_campaign(app, cid)


async def test_scheduled_campaign_starts_by_itself_in_serve(lc_app: App, unlimited: Any) -> None:
    app, sb = lc_app, unlimited
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", 25)
    at = _now() + timedelta(seconds=2)
    cid = await create(app, "shop", "scheduled news", at=at)
    assert (await status(app, cid))["state"] == "scheduled"
    async with running(app):
        await asyncio.sleep(1.0)
        assert (await status(app, cid))["state"] == "scheduled"  # not before its time
        assert copies(sb, "shop_bot", "scheduled news") == {}
        await eventually(lambda: _state_is(app, cid, "completed"), within=20, every=0.1)
    info = await Campaigns(app.db).get(cid)
    assert info.started_at is not None and _aware(info.started_at) >= at
    got = copies(sb, "shop_bot", "scheduled news")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}


async def test_scheduled_time_passed_while_serve_was_down(lc_app: App, unlimited: Any) -> None:
    app, sb = lc_app, unlimited
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", 25)
    async with running(app):
        await asyncio.sleep(0.3)
    # serve is down when the time comes
    at = _now() + timedelta(seconds=1)
    cid = await create(app, "shop", "late news", at=at)
    await asyncio.sleep(1.5)
    assert (await status(app, cid))["state"] == "scheduled"
    async with running(app):
        await eventually(lambda: _state_is(app, cid, "completed"), within=20, every=0.1)
    got = copies(sb, "shop_bot", "late news")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}


async def test_a_subscriber_who_stops_mid_campaign_is_skipped(lc_app: App, limited: Any) -> None:
    app, sb = lc_app, limited
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", 120)
    cid = await create(app, "shop", "stop-test news")
    await Campaigns(app.db).start(cid, now=_now())
    async with app.db.read() as conn:
        last = (
            await conn.execute(
                select(Delivery.chat_id)
                .where(Delivery.campaign_id == cid)
                .order_by(Delivery.id.desc())
                .limit(1)
            )
        ).scalar_one()
    async with running(app):
        await eventually(lambda: _at_least_sent(app, cid, 10), within=30)
        assert (await _rows(app, cid))[last][0] == "pending"
        await sb.user_send(last, "shop_bot", "/stop")
        await eventually(lambda: _state_is(app, cid, "completed"), within=30, every=0.1)
    rows = await _rows(app, cid)
    assert rows[last] == ("suppressed", "subscriber unsubscribed before delivery")
    assert {c for c, (s, _e) in rows.items() if s == "sent"} == {u.id for u in users} - {last}
    got = copies(sb, "shop_bot", "stop-test news")
    assert last not in got and set(got.values()) == {1}
    async with app.db.read() as conn:
        st = (
            await conn.execute(select(Subscriber.status).where(Subscriber.chat_id == last))
        ).scalar_one()
    assert st == "unsubscribed"
    # The next campaign does not include them.
    cid2 = await create(app, "shop", "after stop")
    assert (await Campaigns(app.db).start(cid2, now=_now())).audience == 119


async def test_foreground_run_stops_when_its_lease_is_taken(lc_app: App, limited: Any) -> None:
    app, sb = lc_app, limited
    await register(app, sb, "shop", "shop_bot")
    users = await seed(app, sb, "shop", "shop_bot", 100)
    cid = await create(app, "shop", "lease news")
    task = asyncio.create_task(run_campaign(app, cid))
    try:
        await eventually(lambda: _at_least_sent(app, cid, 10), within=30)
        async with app.db.write() as conn:  # another process takes the bot over
            await conn.execute(
                update(BotLease).values(
                    owner="elsewhere:1", expires_at=_now() + timedelta(seconds=60)
                )
            )
        with pytest.raises(DeliveryError, match="another process took the bot's lease over"):
            await asyncio.wait_for(task, 20)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    st = await status(app, cid)
    # It stopped cleanly: what it had sent is recorded, the rest waits for the new owner.
    assert st["state"] == "running" and st["sending"] == 0 and st["pending"] > 0
    assert st["sent"] == len(sb.messages(bot="shop_bot"))
    async with app.db.write() as conn:
        await conn.execute(delete(BotLease))
    await asyncio.wait_for(run_campaign(app, cid), 30)
    got = copies(sb, "shop_bot", "lease news")
    assert set(got) == {u.id for u in users} and set(got.values()) == {1}


async def _state_is(app: App, cid: int, state: str) -> bool:
    async with app.db.read() as conn:
        got = (await conn.execute(select(Campaign.state).where(Campaign.id == cid))).scalar_one()
    return bool(got == state)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
