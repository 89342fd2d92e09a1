"""`botdesk campaign run`: deliver one campaign in the foreground with the serve engine.

It takes the bot's lease like a `serve` worker would (so the bot's rate limit still holds
across processes), renews it while it works, and returns when the campaign is completed,
paused or cancelled. If the lease is lost (not renewed, or taken over) it stops and raises
``DeliveryError``. Killing it at any point is safe: the next run (or any serve worker)
recovers the ledger and continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from botdesk import gc_pause
from botdesk.app import App
from botdesk.bots import BotRecord, BotRegistry
from botdesk.campaigns import Campaigns
from botdesk.clock import Clock, SystemClock
from botdesk.delivery.worker import DeliveryEngine, EngineStats
from botdesk.errors import DeliveryError
from botdesk.runtime.channel import BotChannel, open_channel
from botdesk.runtime.metrics import Metrics
from botdesk.store import leases
from botdesk.store.models import Bot, Campaign


def worker_id() -> str:
    """This process as a lease owner (host:pid). Here, not in ``runtime/service``: a
    foreground command does not import the serve runtime (routers, webhook, polling)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


async def run_campaign(
    app: App,
    campaign_id: int,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[EngineStats], None] | None = None,
    owner: str | None = None,
) -> EngineStats:
    from sqlalchemy import select

    clock = clock or SystemClock()
    owner = owner or worker_id()
    camps = Campaigns(app.db)
    info = await camps.get(campaign_id)
    if info.state in ("draft", "scheduled"):
        info = await camps.start(campaign_id, now=clock.now())
    if info.state not in ("running",):
        raise DeliveryError(f"campaign {campaign_id} is {info.state}: nothing to deliver")
    async with app.db.read() as conn:
        name = (
            await conn.execute(
                select(Bot.name)
                .join(Campaign, Campaign.bot_id == Bot.id)
                .where(Campaign.id == campaign_id)
            )
        ).scalar_one()
    rec = await BotRegistry(app.db, app.secrets).get(name)
    async with _owning(app, rec, owner=owner, clock=clock) as channel:
        if channel is None:
            holder = await leases.holder(app.db, bot_id=rec.id, now=clock.now())
            raise DeliveryError(
                f"bot '{name}' is being served by {holder}; it delivers this campaign "
                "(watch it with `botdesk campaign status ID --watch`)"
            )
        return await _deliver(
            app, channel, campaign_id, owner=owner, clock=clock, on_progress=on_progress
        )


async def _deliver(
    app: App,
    channel: BotChannel,
    campaign_id: int,
    *,
    owner: str,
    clock: Clock,
    on_progress: Callable[[EngineStats], None] | None,
) -> EngineStats:
    """Run the engine on one campaign while renewing the lease we hold."""
    engine = DeliveryEngine(
        channel=channel,
        db=app.db,
        settings=app.settings.delivery,
        clock=clock,
        owner=owner,
        only_campaign=campaign_id,
        on_progress=on_progress,
    )
    await run_leased(
        app,
        channel.record,
        engine,
        owner=owner,
        clock=clock,
        job=f"delivering campaign {campaign_id}",
    )
    return engine.stats


class _Job(Protocol):
    async def run(self, stop: asyncio.Event, *, until_done: bool = False) -> Any: ...


async def run_leased(
    app: App, rec: BotRecord, engine: _Job, *, owner: str, clock: Clock, job: str
) -> None:
    """Run a foreground engine to the end while renewing the bot's lease; if the lease is
    lost, stop and say so (the bot's new owner continues the work)."""
    gc_pause.resume()  # start-up is over (the CLI paused the collector for it)
    stop = asyncio.Event()
    lost: list[str] = []
    beat = asyncio.create_task(
        lease_heartbeat(app, rec, owner=owner, clock=clock, stop=stop, lost=lost)
    )
    try:
        await engine.run(stop, until_done=True)
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
    if lost:
        raise DeliveryError(f"stopped {job}: {lost[0]}; the owner of the bot continues it")


async def lease_heartbeat(
    app: App, rec: BotRecord, *, owner: str, clock: Clock, stop: asyncio.Event, lost: list[str]
) -> None:
    """Renew the bot's lease while a foreground job works; on a loss, say why and stop it."""
    ttl = app.settings.delivery.lease_seconds
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            ok = await leases.acquire(app.db, bot_id=rec.id, owner=owner, ttl=ttl, now=clock.now())
        except Exception as exc:
            # Not renewed means another process may own the bot soon: stop like a loss,
            # or two processes would send the same campaign.
            lost.append(f"the lease could not be renewed: {exc}")
            stop.set()
            return
        if not ok:
            lost.append("another process took the bot's lease over")
            stop.set()
            return


async def deliver_replies(app: App, bot: str, *, clock: Clock | None = None) -> int:
    """Send a bot's queued operator replies now, if no serve process owns the bot.

    Returns how many were sent here; 0 when another process owns the bot (it sends them).
    """
    from botdesk.runtime.outbox import send_pending

    rec = await BotRegistry(app.db, app.secrets).get(bot)
    async with _owning(app, rec, owner=worker_id(), clock=clock or SystemClock()) as channel:
        return 0 if channel is None else await send_pending(channel)


@asynccontextmanager
async def _owning(
    app: App, rec: BotRecord, *, owner: str, clock: Clock
) -> AsyncIterator[BotChannel | None]:
    """The bot's channel while this process holds its lease; None if another process does."""
    ttl = app.settings.delivery.lease_seconds
    if not await leases.acquire(app.db, bot_id=rec.id, owner=owner, ttl=ttl, now=clock.now()):
        yield None
        return
    channel = open_channel(app, rec, clock=clock, metrics=Metrics())
    try:
        channel.restore_rates()
        yield channel
    finally:
        with contextlib.suppress(Exception):
            await channel.remember_rates()
        with contextlib.suppress(Exception):
            await leases.release(app.db, bot_id=rec.id, owner=owner)
        await channel.limiter.aclose()
        await channel.aclose()
