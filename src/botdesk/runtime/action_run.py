"""`botdesk campaign edit | recall | actions --resume`: run a campaign action in the foreground.

Like `campaign run`, it takes the bot's lease (the bot's rate limit holds across processes),
renews it while it works and returns when the action is completed. When a `serve` process
owns the bot, that process performs the action (its worker picks up pending action rows)
and this returns ``None`` at once. Killing it at any point is safe: the next run (or the
serve worker) recovers the action's ledger and continues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.campaign_actions import CampaignActions
from botdesk.clock import Clock, SystemClock
from botdesk.delivery.action_worker import ActionEngine, ActionStats
from botdesk.errors import DeliveryError
from botdesk.runtime.foreground import _owning
from botdesk.runtime.service import worker_id
from botdesk.store import leases


async def run_action(
    app: App,
    action_id: int,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[ActionStats], None] | None = None,
    owner: str | None = None,
) -> ActionStats | None:
    """Perform the action here; None when another process owns the bot (it performs it)."""
    clock = clock or SystemClock()
    owner = owner or worker_id()
    name = await CampaignActions(app.db).bot_of(action_id)
    rec = await BotRegistry(app.db, app.secrets).get(name)
    async with _owning(app, rec, owner=owner, clock=clock) as channel:
        if channel is None:
            return None
        ttl = app.settings.delivery.lease_seconds
        stop = asyncio.Event()
        lost: list[str] = []

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                try:
                    ok = await leases.acquire(
                        app.db, bot_id=rec.id, owner=owner, ttl=ttl, now=clock.now()
                    )
                except Exception as exc:
                    lost.append(f"the lease could not be renewed: {exc}")
                    ok = False
                if not ok:
                    lost.append("another process took the bot's lease over")
                    stop.set()
                    return

        beat = asyncio.create_task(heartbeat())
        engine = ActionEngine(
            channel=channel,
            db=app.db,
            settings=app.settings.delivery,
            clock=clock,
            only_action=action_id,
            on_progress=on_progress,
        )
        try:
            await engine.run(stop, until_done=True)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        if lost:
            raise DeliveryError(
                f"stopped campaign action {action_id}: {lost[0]}; the owner of the bot continues it"
            )
        return engine.stats
