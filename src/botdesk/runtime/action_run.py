"""`botdesk campaign edit | recall | actions --resume`: run a campaign action in the foreground.

Like `campaign run`, it takes the bot's lease (the bot's rate limit holds across processes),
renews it while it works and returns when the action is completed. When a `serve` process
owns the bot, that process performs the action (its worker picks up pending action rows)
and this returns ``None`` at once. Killing it at any point is safe: the next run (or the
serve worker) recovers the action's ledger and continues.
"""

from __future__ import annotations

from collections.abc import Callable

from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.campaign_actions import CampaignActions
from botdesk.clock import Clock, SystemClock
from botdesk.delivery.action_worker import ActionEngine, ActionStats
from botdesk.runtime.foreground import _owning, run_leased, worker_id


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
        engine = ActionEngine(
            channel=channel,
            db=app.db,
            settings=app.settings.delivery,
            clock=clock,
            only_action=action_id,
            on_progress=on_progress,
        )
        await run_leased(
            app, rec, engine, owner=owner, clock=clock, job=f"campaign action {action_id}"
        )
        return engine.stats
