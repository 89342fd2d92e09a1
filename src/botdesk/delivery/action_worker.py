"""The engine of campaign actions (edit, recall) for one bot: claim, pace, act, record.

It runs where the bot's campaigns are sent: beside the delivery engine in the process that
holds the bot's lease (``serve``), or in the foreground (``campaign edit``, ``recall``,
``actions --resume``) when no process serves the bot. Each request goes through the bot's
one rate limiter through the same ``pacing.Gate`` as sends (campaign priority: replies go
first; a 429 pauses the bot, or only the chat it explains, and teaches the limiter the real
rate, which is stored on the bot's row), and each row's ``acting`` is
committed before its request leaves, so a ``kill -9`` leaves at most the requests in flight
``uncertain`` (``action_ledger.recover``), never acted on twice. Rows are committed one by
one: an action runs at the bot's rate (30/s), where two short transactions per message are
far below what either backend sustains.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from botdesk import subscribers
from botdesk.campaign_actions import DONE_STATE, CampaignActions
from botdesk.campaigns import TELEGRAM_PARSE_MODE
from botdesk.clock import Clock, first_of
from botdesk.config import DeliverySettings
from botdesk.delivery import action_ledger, action_policy, policy, templates
from botdesk.delivery.action_policy import ActionKind
from botdesk.delivery.pacing import Gate
from botdesk.delivery.ratelimit import Priority
from botdesk.delivery.worker import Channel
from botdesk.errors import InvalidToken
from botdesk.log import get_logger
from botdesk.store.db import Database
from botdesk.store.models import Campaign, CampaignAction
from botdesk.telegram import actions as tg_actions

log = get_logger(__name__)

REFRESH_EVERY_S = 0.25
IDLE_POLL_S = 1.0


@dataclass
class ActionCtx:
    id: int
    kind: ActionKind
    text: str | None
    parse_mode: str | None
    buttons: tuple[tuple[str, str], ...]
    caption: bool
    static_text: str | None = None

    def __post_init__(self) -> None:
        if self.text is not None and not templates.variables(self.text):
            self.static_text = templates.render(self.text, {}, parse_mode=self.parse_mode)

    def text_for(self, values: dict[str, str | None]) -> str:
        if self.static_text is not None:
            return self.static_text
        return templates.render(self.text or "", values, parse_mode=self.parse_mode)


@dataclass
class ActionStats:
    done: int = 0
    failed: int = 0
    suppressed: int = 0
    uncertain: int = 0
    retried: int = 0
    recovered_uncertain: int = 0
    by_action: dict[int, int] = field(default_factory=dict)


class ActionEngine:
    def __init__(
        self,
        *,
        channel: Channel,
        db: Database,
        settings: DeliverySettings,
        clock: Clock,
        only_action: int | None = None,
        on_progress: Callable[[ActionStats], None] | None = None,
    ) -> None:
        self.ch = channel
        self.db = db
        self.clock = clock
        self.only = only_action
        self.on_progress = on_progress
        self.service = CampaignActions(db)
        self.stats = ActionStats()
        self.retry = policy.RetryPolicy(max_attempts_server=max(1, settings.max_server_retries))
        self.rng = random.Random()
        self.window = max(1, settings.in_flight)
        self._slots = asyncio.Semaphore(self.window)
        self.gate = Gate(channel.limiter, clock, remember=channel.remember_rates)
        # Each task's phase: "wait" before its row is committed ``acting`` (cancelled at
        # shutdown), "act" after (left to finish: the request may be on the wire).
        self._tasks: dict[asyncio.Task[None], tuple[str, int]] = {}
        self._changed = asyncio.Event()
        self._fatal: BaseException | None = None

    async def _running(self) -> dict[int, ActionCtx]:
        q = (
            select(
                CampaignAction.id,
                CampaignAction.kind,
                CampaignAction.text,
                CampaignAction.parse_mode,
                CampaignAction.buttons,
                CampaignAction.media_kind,
            )
            .join(Campaign, Campaign.id == CampaignAction.campaign_id)
            .where(Campaign.bot_id == self.ch.record.id, CampaignAction.state == "running")
            .order_by(CampaignAction.id)
        )
        if self.only is not None:
            q = q.where(CampaignAction.id == self.only)
        async with self.db.read() as conn:
            rows = (await conn.execute(q)).all()
        return {
            r.id: ActionCtx(
                id=r.id,
                kind=r.kind,
                text=r.text,
                parse_mode=r.parse_mode,
                buttons=tuple((b[0], b[1]) for b in (r.buttons or [])),
                caption=r.media_kind is not None,
            )
            for r in rows
        }

    async def run(self, stop: asyncio.Event, *, until_done: bool = False) -> None:
        async with self.db.write() as conn:
            n = await action_ledger.recover(conn, bot_id=self.ch.record.id, now=self.clock.now())
        if n:
            self.stats.recovered_uncertain += n
            log.warning(
                "action rows found 'acting' after an interruption marked uncertain",
                bot=self.ch.name,
                rows=n,
            )
        try:
            await self._loop(stop, until_done)
        finally:
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal

    async def _loop(self, stop: asyncio.Event, until_done: bool) -> None:
        while not stop.is_set() and self._fatal is None:
            running = await self._running()
            if until_done and self.only is not None and self.only not in running:
                return  # completed (or never running)
            claimed = 0
            held = {rid for _phase, rid in self._tasks.values()}
            for ctx in running.values():
                room = 2 * self.window - len(self._tasks)
                if room <= 0:
                    break
                now = self.clock.now()
                async with self.db.write() as conn:
                    rows = await action_ledger.claim(
                        conn,
                        action_id=ctx.id,
                        limit=room,
                        now_ts=now.timestamp(),
                        now=now,
                        held=held,
                    )
                for row in rows:
                    task = asyncio.create_task(self._act(ctx, row))
                    self._tasks[task] = ("wait", row.id)
                    task.add_done_callback(self._done)
                claimed += len(rows)
            if self.on_progress is not None:
                self.on_progress(self.stats)
            if not self._tasks:
                for aid in running:
                    if await self.service.complete_if_done(aid, now=self.clock.now()):
                        log.info("campaign action completed", bot=self.ch.name, action=aid)
                        continue
                if claimed == 0:
                    await first_of((stop,), REFRESH_EVERY_S if running else IDLE_POLL_S)
                continue
            self._changed.clear()
            await first_of((stop, self._changed), REFRESH_EVERY_S)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._changed.set()
        if not task.cancelled() and task.exception() is not None and self._fatal is None:
            self._fatal = task.exception()

    async def _shutdown(self) -> None:
        for task, (phase, _rid) in list(self._tasks.items()):
            if phase == "wait":
                task.cancel()
        bound = float(self.ch.bot.session.timeout) + 5  # type: ignore[arg-type]
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=bound)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _act(self, ctx: ActionCtx, row: action_ledger.ActionClaim) -> None:
        me = asyncio.current_task()
        assert me is not None
        async with self._slots:
            gate = self.gate
            admitted_at = await gate.admit(
                row.chat_id, is_group=row.is_group, priority=Priority.CAMPAIGN
            )
            self._tasks[me] = ("act", row.id)  # from here on the row is never cancelled
            async with self.db.write() as conn:
                if not await action_ledger.mark_acting(conn, row.id, now=self.clock.now()):
                    return
            held = await gate.depart(admitted_at)
            if held is not None:
                # A 429 came back while this row's mark committed: not sent, back to pending.
                self.stats.retried += 1
                now = self.clock.now()
                async with self.db.write() as conn:
                    await action_ledger.finish(
                        conn,
                        row.id,
                        state="pending",
                        now=now,
                        not_before=now.timestamp() + held.seconds,
                    )
                return
            sent_at = self.clock.monotonic()
            if ctx.kind == "edit":
                answer = await tg_actions.edit(
                    self.ch.bot,
                    tg_actions.EditRequest(
                        chat_id=row.chat_id,
                        message_id=row.message_id,
                        text=ctx.text_for(row.values),
                        parse_mode=TELEGRAM_PARSE_MODE[ctx.parse_mode or "plain"],
                        caption=ctx.caption,
                        buttons=ctx.buttons,
                    ),
                )
            elif row.message_ids:  # an album: one admission, each of its messages deleted
                answer = await tg_actions.delete_album(self.ch.bot, row.chat_id, row.message_ids)
            else:
                answer = await tg_actions.delete(self.ch.bot, row.chat_id, row.message_id)
            await gate.answered(
                answer.result, sent_at=sent_at, chat_id=row.chat_id, is_group=row.is_group
            )
            decision = action_policy.decide(
                ctx.kind, answer, attempt=row.attempts + 1, retry=self.retry, rng=self.rng
            )
            await self._apply(ctx, row, decision)

    async def _apply(
        self,
        ctx: ActionCtx,
        row: action_ledger.ActionClaim,
        d: action_policy.ActionDecision,
    ) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"now": now}
        unreachable: tuple[str, str] | None = None
        match d:
            case action_policy.Done(note=note):
                self.stats.done += 1
                self.stats.by_action[ctx.id] = self.stats.by_action.get(ctx.id, 0) + 1
                values.update(state=DONE_STATE[ctx.kind], error=note)
            case policy.Retry(delay_s=delay):  # a 429 was fed to the limiter (``gate.answered``)
                self.stats.retried += 1
                values.update(state="pending", not_before=now.timestamp() + delay)
            case policy.Suppress(reason=reason, subscriber_status=status):
                self.stats.suppressed += 1
                values.update(state="suppressed", error=reason)
                unreachable = (status, reason)
            case policy.MarkUncertain(reason=reason):
                self.stats.uncertain += 1
                values.update(state="uncertain", error=reason)
            case policy.MarkFailed(reason=reason):
                self.stats.failed += 1
                values.update(state="failed", error=reason)
            case policy.StopBot(reason=reason):
                values.update(state="pending")  # refused: nothing happened; the row waits
                async with self.db.write() as conn:
                    await action_ledger.finish(conn, row.id, **values)
                raise InvalidToken(f"the token was rejected while acting: {reason}")
        async with self.db.write() as conn:
            await action_ledger.finish(conn, row.id, **values)
            if unreachable is not None:
                await subscribers.mark_unreachable(
                    conn,
                    bot_id=self.ch.record.id,
                    chat_id=row.chat_id,
                    status=unreachable[0],  # type: ignore[arg-type]
                    reason=unreachable[1],
                    now=now,
                )


def make_action_worker(
    *, db: Database, settings: DeliverySettings
) -> Callable[[Channel, asyncio.Event], Any]:
    """The per-bot job `botdesk serve` runs beside deliveries while it holds the bot's lease."""

    async def worker(channel: Channel, stop: asyncio.Event) -> None:
        engine = ActionEngine(channel=channel, db=db, settings=settings, clock=channel.clock)
        await engine.run(stop)

    return worker
