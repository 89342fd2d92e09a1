"""Start and stop everything `botdesk serve` runs: bots, their workers, webhook and metrics.

Each bot runs under a lease (``store/leases.py``): among several `botdesk serve` processes
sharing one database, exactly one polls a bot and sends its campaigns at a time, so the
bot's rate limit holds across processes; when the owner dies its lease expires and another
process takes over. A bot whose token is rejected stops alone, with its reason recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiogram import Dispatcher

from botdesk.app import App
from botdesk.bots import BotRecord, BotRegistry
from botdesk.clock import Clock, SystemClock, first_of, wait_event
from botdesk.errors import BotdeskError, InvalidToken, ValidationError
from botdesk.links import LinkSigner
from botdesk.log import get_logger
from botdesk.runtime.channel import BotChannel, open_channel
from botdesk.runtime.foreground import worker_id
from botdesk.runtime.handlers import build_router
from botdesk.runtime.menus import build_menu_router
from botdesk.runtime.metrics import Metrics, serve_metrics
from botdesk.runtime.polling import poll
from botdesk.runtime.ports import AssistantPort, AutoReply
from botdesk.runtime.redirect import LinkRedirect
from botdesk.runtime.updates import UpdateProcessor
from botdesk.runtime.webhook import WebhookServer, parse_listen
from botdesk.store import leases

log = get_logger(__name__)

BotWorker = Callable[[BotChannel, asyncio.Event], Coroutine[Any, Any, None]]
SHUTDOWN_GRACE = 10.0
# Rounds (of lease_ttl/3) a worker over its fair share leaves a free bot to others.
SHARE_PATIENCE = 4


@dataclass
class BotRun:
    channel: BotChannel
    processor: UpdateProcessor
    state: str = "starting"  # starting | standby | serving | paused | stopped
    reason: str | None = None
    # Set by the heartbeat when this worker holds more than its fair share of bots: the bot
    # is handed over (lease released) so a less busy worker takes it.
    handover: bool = False
    share_waits: int = 0
    forced: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Runtime:
    def __init__(
        self,
        app: App,
        *,
        bot_names: Sequence[str] = (),
        webhook_base: str | None = None,
        listen: str | None = None,
        metrics_listen: str | None = None,
        port: AssistantPort | None = None,
        bot_workers: Sequence[BotWorker] = (),
        clock: Clock | None = None,
        owner: str | None = None,
        poll_timeout: int = 20,
        summary_every: float = 60.0,
        links: LinkSigner | None = None,
    ) -> None:
        if bool(webhook_base) != bool(listen):
            raise ValidationError("--webhook-base and --listen go together")
        self.app = app
        self.bot_names = list(bot_names)
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.owner = owner or worker_id()
        self.port = port or AutoReply.from_settings(app.settings)
        self.bot_workers = list(bot_workers)
        self.poll_timeout = poll_timeout
        self.summary_every = summary_every
        self.webhook = (
            WebhookServer(
                webhook_base=webhook_base,
                listen=listen,
                redirect=LinkRedirect(db=app.db, signer=links, clock=self.clock) if links else None,
            )
            if webhook_base and listen
            else None
        )
        self.metrics_listen = metrics_listen
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(build_menu_router())  # m: presses, before the catch-all
        self.dispatcher.include_router(build_router())
        self.runs: dict[str, BotRun] = {}
        self._metrics_runner: object | None = None
        self._summary: asyncio.Task[None] | None = None
        self._presence_task: asyncio.Task[None] | None = None
        self.lease_ttl = app.settings.delivery.lease_seconds

    # -- building --------------------------------------------------------------------

    async def _records(self) -> list[BotRecord]:
        reg = BotRegistry(self.app.db, self.app.secrets)
        if not self.bot_names:
            return [b for b in await reg.list() if b.status != "removed"]
        return [await reg.get(n) for n in self.bot_names]

    def _channel(self, rec: BotRecord) -> BotChannel:
        return open_channel(self.app, rec, clock=self.clock, metrics=self.metrics)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        records = await self._records()
        if not records:
            raise ValidationError("no bots to serve: register one with `botdesk bot add`")
        if self.metrics_listen:
            host, port = parse_listen(self.metrics_listen)
            self._metrics_runner = await serve_metrics(self.metrics, host, port)
        if self.webhook is not None:
            await self.webhook.start()
        await leases.beat(self.app.db, owner=self.owner, now=self.clock.now())
        self._presence_task = asyncio.create_task(self._presence())
        for rec in records:
            ch = self._channel(rec)
            ch.restore_rates()
            run = BotRun(
                channel=ch,
                processor=UpdateProcessor(channel=ch, dispatcher=self.dispatcher, port=self.port),
            )
            self.runs[rec.name] = run
            if self.webhook is not None:
                try:
                    await self.webhook.register(run.processor)
                except Exception as exc:
                    log.error("setWebhook failed", bot=rec.name, error=str(exc))
            run.task = asyncio.create_task(self._supervise(run), name=f"bot:{rec.name}")
            mode = f"webhook {self.webhook.url_for(rec.name)}" if self.webhook else "polling"
            log.info(
                "bot starting",
                bot=rec.name,
                username="@" + rec.username,
                api=rec.api_base or "api.telegram.org",
                mode=mode,
            )
        self._summary = asyncio.create_task(self._summarise())

    async def _supervise(self, run: BotRun) -> None:
        """Hold the bot's lease; while held, poll and run the bot's workers."""
        ch = run.channel
        name = ch.name
        try:
            while not run.stop.is_set():
                try:
                    if run.handover:
                        run.handover = False
                        await leases.release(self.app.db, bot_id=ch.record.id, owner=self.owner)
                        log.info("bot handed over to a less busy worker", bot=name)
                        run.state = "standby"
                        await wait_event(run.stop, self.lease_ttl / 3)
                        continue
                    if not await self._may_take(ch.record.id):
                        # Over our share; but a bot nobody takes (the others do not serve
                        # it) is taken anyway after a few rounds: sharing must not strand it.
                        free = await leases.holder(
                            self.app.db, bot_id=ch.record.id, now=self.clock.now()
                        )
                        run.share_waits = run.share_waits + 1 if free is None else 0
                        if run.share_waits < SHARE_PATIENCE:
                            run.state = "standby"
                            await wait_event(run.stop, self.lease_ttl / 3)
                            continue
                        run.forced = True  # never handed over again: nobody else took it
                    run.share_waits = 0
                    owned = await leases.acquire(
                        self.app.db,
                        bot_id=ch.record.id,
                        owner=self.owner,
                        ttl=self.lease_ttl,
                        now=self.clock.now(),
                    )
                    if not owned:
                        if run.state != "standby":
                            log.info("bot owned by another worker; standing by", bot=name)
                        run.state = "standby"
                        await wait_event(run.stop, self.lease_ttl / 3)
                        continue
                    run.state = "serving"
                    self.metrics.bot_up.labels(name).set(1)
                    await self._serve_owned(run)
                except InvalidToken:
                    raise
                except BotdeskError as exc:
                    # The database refused (locked past every retry, unreachable): pause and
                    # try again. An unrenewed lease expires, so no two workers serve the bot.
                    self.metrics.bot_up.labels(name).set(0)
                    run.state = "paused"
                    log.error("bot paused; retrying", bot=name, error=str(exc))
                    await wait_event(run.stop, self.lease_ttl / 3)
        except InvalidToken as exc:  # BotStopped from polling, or from the delivery worker
            run.state, run.reason = "stopped", str(exc)
            log.error("bot stopped", bot=name, reason=str(exc))
            with contextlib.suppress(BotdeskError):
                await BotRegistry(self.app.db, self.app.secrets).set_status(
                    name, "unauthorized", str(exc)
                )
        finally:
            self.metrics.bot_up.labels(name).set(0)
            with contextlib.suppress(Exception):
                await leases.release(self.app.db, bot_id=ch.record.id, owner=self.owner)

    async def _serve_owned(self, run: BotRun) -> None:
        """Run while the lease holds; return when it is lost or the bot is stopped."""
        lost = asyncio.Event()
        stop_all = asyncio.Event()
        jobs: list[asyncio.Task[None]] = []
        if self.webhook is None:
            jobs.append(
                asyncio.create_task(poll(run.processor, stop_all, poll_timeout=self.poll_timeout))
            )
        jobs += [asyncio.create_task(w(run.channel, stop_all)) for w in self.bot_workers]
        jobs.append(asyncio.create_task(self._resume_asks(run)))
        heartbeat = asyncio.create_task(self._heartbeat(run, lost))
        ender = asyncio.create_task(first_of((run.stop, lost)))
        error: BaseException | None = None
        try:
            pending: set[asyncio.Task[None]] = {*jobs, ender}
            while pending and error is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if ender in done:
                    break
                for t in done:  # a job that fails (e.g. BotStopped) ends the bot's turn
                    if not t.cancelled() and t.exception() is not None:
                        error = t.exception()
        finally:
            stop_all.set()
            for t in (heartbeat, ender):
                t.cancel()
            rest = [t for t in jobs if not t.done()]
            if rest:
                _done, late = await asyncio.wait(rest, timeout=SHUTDOWN_GRACE)
                for t in late:
                    t.cancel()
            await asyncio.gather(*jobs, heartbeat, ender, return_exceptions=True)
        if error is not None:
            raise error

    async def _resume_asks(self, run: BotRun) -> None:
        """Questions a stopped owner wrote ahead and never answered: asked again now."""
        try:
            await run.processor.resume_asks()
        except Exception as exc:  # retried at the next turn of ownership
            log.error("unanswered questions not resumed", bot=run.channel.name, error=str(exc))

    async def _standing(self) -> tuple[list[int], int]:
        return await leases.standing(
            self.app.db,
            owner=self.owner,
            bots=len(self.runs),
            ttl=self.lease_ttl,
            now=self.clock.now(),
        )

    async def _may_take(self, bot_id: int) -> bool:
        """Take a bot only within this worker's fair share (renewals always pass)."""
        held, fair = await self._standing()
        return bot_id in held or len(held) < fair

    async def _over_share(self, bot_id: int) -> bool:
        """Is this the one bot to hand over? (the highest id, one per round)"""
        held, fair = await self._standing()
        return len(held) > fair and held[-1] == bot_id

    async def _presence(self) -> None:
        while True:
            try:
                await leases.beat(self.app.db, owner=self.owner, now=self.clock.now())
            except BotdeskError as exc:
                log.warning("worker heartbeat failed", error=str(exc))
            await asyncio.sleep(self.lease_ttl / 3)

    async def _heartbeat(self, run: BotRun, lost: asyncio.Event) -> None:
        while not run.stop.is_set():
            await wait_event(run.stop, self.lease_ttl / 3)
            if run.stop.is_set():
                return
            try:
                ok = await leases.acquire(
                    self.app.db,
                    bot_id=run.channel.record.id,
                    owner=self.owner,
                    ttl=self.lease_ttl,
                    now=self.clock.now(),
                )
            except BotdeskError as exc:
                log.warning("lease renewal failed", bot=run.channel.name, error=str(exc))
                ok = False
            if not ok:
                log.warning("lease lost; handing the bot over", bot=run.channel.name)
                lost.set()
                return
            try:
                if not run.forced and await self._over_share(run.channel.record.id):
                    run.handover = True
                    lost.set()
                    return
            except BotdeskError as exc:
                log.warning("share check failed", bot=run.channel.name, error=str(exc))

    async def _summarise(self) -> None:
        while True:
            await asyncio.sleep(self.summary_every)
            for name, run in self.runs.items():
                p = run.processor
                log.info(
                    "summary",
                    bot=name,
                    state=run.state,
                    updates=p.handled,
                    duplicates=p.duplicates,
                    replies=run.channel.stats.sent,
                    errors=p.errors,
                )

    async def stop(self) -> None:
        for run in self.runs.values():
            run.stop.set()
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE + 2)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for run in self.runs.values():
            await run.processor.drain(grace=5)
        for side in (self._summary, self._presence_task):
            if side is not None:
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)
        with contextlib.suppress(Exception):
            await leases.leave(self.app.db, owner=self.owner)
        if self.webhook is not None:
            await self.webhook.stop()
        for run in self.runs.values():
            with contextlib.suppress(Exception):
                await run.channel.remember_rates()  # what probing learned since the last 429
            await run.channel.limiter.aclose()
            await run.channel.aclose()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()  # type: ignore[attr-defined]
        await self.port.aclose()
