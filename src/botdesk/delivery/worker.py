"""The delivery engine of one bot: claims ledger rows, sends at the allowed rate, records.

Per bot, one engine runs in the process that holds the bot's lease. A feeder claims pending
rows of the bot's running campaigns in small batches; a pool of senders takes them one by
one: wait for the bot's rate limiter, commit ``sending`` (group-committed with other senders'
rows by ``LedgerWriter``), send, map the outcome to a decision with the pure
``policy.decide``, and hand the result back to the writer. The in-flight window (senders
between limiter and answer) hides network latency; batching keeps the database off the
critical path.

Crash safety: ``sending`` is durable before a request leaves; on takeover, rows found in
``sending`` become ``uncertain`` (``ledger.recover``) and are never resent automatically.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiogram import Bot
from sqlalchemy import select, update

from botdesk import clicks
from botdesk.bots import BotRecord
from botdesk.campaigns import TELEGRAM_PARSE_MODE, Campaigns, SendOptions
from botdesk.clock import Clock, first_of, wait_event
from botdesk.config import DeliverySettings
from botdesk.delivery import content, ledger, policy, templates
from botdesk.delivery.pacing import Gate
from botdesk.delivery.ratelimit import BotRateLimiter, Priority
from botdesk.errors import InvalidToken
from botdesk.links import LinkSigner
from botdesk.log import get_logger
from botdesk.store.db import Database
from botdesk.store.models import Campaign, SequenceStep
from botdesk.telegram.gateway import FILE_METHODS, Broadcast, OutgoingMessage, send

log = get_logger(__name__)

CLAIM_EVERY_S = 0.05
# Campaign states (pause, cancel) are re-read at least this often while sending, and a
# campaign with nothing due is asked again after this long: each is a database round trip.
REFRESH_EVERY_S = 0.25
IDLE_POLL_S = 1.0
CLAIM_AHEAD_S = 0.1
PAID_WINDOW_SECONDS = 0.5  # in-flight window for paid broadcasts: rate x latency
FLUSH_INTERVAL_S = 0.005
# A batch of marks is committed once it holds ``batch_target`` rows or its first row has
# waited this long. A commit costs far more than a row in it; the wait is invisible to the
# wire because ``WirePacer`` re-spaces what one commit releases, and the in-flight window
# is sized to cover it.
MAX_COLLECT_S = 0.1
# Commits in flight at once: the next batch is prepared (connection, BEGIN) while the previous
# one is written. Safe because a row's finish is only queued after its mark has committed.
MAX_CONCURRENT_COMMITS = 2
# Finished rows are not urgent (a lost finish only turns a sent row uncertain after a crash):
# they ride along with the next batch of marks, or go on their own after this delay.
FINISH_DELAY_S = 0.1
MAX_FLUSH_BATCH = 1000


class Channel(Protocol):
    """What the engine needs of a bot's channel (the runtime's Channel provides it)."""

    record: BotRecord
    bot: Bot
    limiter: BotRateLimiter
    clock: Clock

    @property
    def name(self) -> str: ...

    def count_delivery(self, state: str) -> None: ...

    async def remember_rates(self) -> None: ...


@dataclass
class CampaignCtx:
    id: int
    state: str
    text: str
    parse_mode: str
    media_kind: str | None
    media_path: str | None
    file_id: str | None
    buttons: tuple[tuple[str, str], ...]
    paid: bool
    # Buttons sent as per-recipient tracked links (their indexes): no shared broadcast body.
    tracked: tuple[int, ...] = ()
    options: SendOptions = field(default_factory=SendOptions)
    # The campaign's own rate cap (options.max_rate): when its next send may leave (monotonic).
    cap_next: float = -math.inf
    upload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # A sequence's step (sequences.py): it runs as long as its sequence, never "completes".
    standing: bool = False
    # The text every recipient gets when the template has no variables: rendered once.
    static_text: str | None = None
    # The request, built once (after a file's upload, if any); each send writes its chat and,
    # for a personalized text, its text into it.
    broadcast: Broadcast | None = None
    # An album's items [{"kind", "path", "file_id"}]; a copy's source {"chat", "message_id"}.
    items: list[dict[str, Any]] | None = None
    copy_from: dict[str, Any] | None = None
    # A copy is proven by its first delivered message; until then one send at a time probes.
    proven: bool = False
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        if not templates.variables(self.text):
            self.static_text = templates.render(self.text, {}, parse_mode=self.parse_mode)

    def cap_wait(self, now: float) -> float:
        """Take this campaign's next send slot under its rate cap; seconds to wait for it."""
        if self.options.max_rate is None:
            return 0.0
        slot = max(self.cap_next, now)
        self.cap_next = slot + 1.0 / self.options.max_rate
        return slot - now

    def text_for(self, values: dict[str, str | None]) -> str:
        """The text one recipient gets."""
        if self.static_text is not None:
            return self.static_text
        return templates.render(self.text, values, parse_mode=self.parse_mode)


@dataclass
class EngineStats:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    uncertain: int = 0
    retried: int = 0
    recovered_uncertain: int = 0
    by_campaign_sent: dict[int, int] = field(default_factory=dict)


class LedgerWriter:
    """Group commit for the ledger: many senders' updates in one short transaction."""

    def __init__(self, db: Database, clock: Clock, *, bot_id: int) -> None:
        self.db = db
        self.clock = clock
        self.bot_id = bot_id
        self._marks: list[tuple[int, asyncio.Future[bool]]] = []
        self._finishes: list[dict[str, Any]] = []
        self._unreachable: list[tuple[int, str, str]] = []
        self._wake = asyncio.Event()
        self._full = False  # the batch being collected reached its target (or a flush)
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._finish_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_COMMITS)
        self._inflight: set[asyncio.Task[None]] = set()
        self._committing = 0
        self.transactions = 0
        self.batch_target = 1  # the engine raises it with its in-flight window
        self._full_waiter: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ledger-writer:{self.bot_id}")

    async def mark_sending(self, row_id: int) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.append((row_id, fut))
        if len(self._marks) >= self.batch_target:
            self._set_full()
        self._kick()
        return await fut

    def _set_full(self) -> None:
        self._full = True
        if self._full_waiter is not None and not self._full_waiter.done():
            self._full_waiter.set_result(None)

    async def _wait_full(self, seconds: float) -> None:
        """Until the batch is full or ``seconds`` passed: a future and a timer, not the task
        and timer per batch that ``wait_for`` costs."""
        if self._full:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._full_waiter = fut
        timer = loop.call_later(seconds, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._full_waiter = None

    def finish(
        self, row: dict[str, Any], *, unreachable: tuple[int, str, str] | None = None
    ) -> None:
        self._finishes.append(row)
        if unreachable is not None:
            self._unreachable.append(unreachable)
        self._idle.clear()
        if len(self._finishes) >= MAX_FLUSH_BATCH:
            self._kick()
        else:
            self._arm_finish()

    def _arm_finish(self) -> None:
        if self._finish_timer is None:
            self._finish_timer = asyncio.get_running_loop().call_later(FINISH_DELAY_S, self._kick)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        while self._marks or self._finishes or not self._idle.is_set():
            self._set_full()
            self._wake.set()
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._marks:  # woken for finishes: let concurrent ones join
                await asyncio.sleep(FLUSH_INTERVAL_S)
            if self._marks:  # senders join until the batch is full
                await self._wait_full(MAX_COLLECT_S)
            self._full = False
            await self._slots.acquire()  # rows keep joining this batch meanwhile
            marks, self._marks = self._marks[:MAX_FLUSH_BATCH], self._marks[MAX_FLUSH_BATCH:]
            finishes, self._finishes = self._finishes, []
            if self._finish_timer is not None:
                self._finish_timer.cancel()
                self._finish_timer = None
            unreachable, self._unreachable = self._unreachable, []
            if marks or finishes:
                self._committing += 1
                task = asyncio.create_task(self._commit_then_settle(marks, finishes, unreachable))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            else:
                self._slots.release()
            self._settle()
            if self._closed and self._idle.is_set():
                return

    async def _commit_then_settle(
        self,
        marks: list[tuple[int, asyncio.Future[bool]]],
        finishes: list[dict[str, Any]],
        unreachable: list[tuple[int, str, str]],
    ) -> None:
        try:
            await self._commit(marks, finishes, unreachable)
        finally:
            self._committing -= 1
            self._slots.release()
            self._settle()

    def _settle(self) -> None:
        """Schedule what is left, or declare the writer idle."""
        if self._marks:
            if len(self._marks) >= self.batch_target:
                self._set_full()
            self._wake.set()
        elif self._finishes:
            self._arm_finish()
        elif self._committing == 0:
            self._idle.set()

    async def _commit(
        self,
        marks: list[tuple[int, asyncio.Future[bool]]],
        finishes: list[dict[str, Any]],
        unreachable: list[tuple[int, str, str]],
    ) -> None:
        now = self.clock.now()
        for attempt in range(5):
            try:
                ok = await ledger.commit_batch(
                    self.db,
                    bot_id=self.bot_id,
                    finishes=finishes,
                    marks=[m[0] for m in marks],
                    unreachable=unreachable,
                    now=now,
                )
                self.transactions += 1
                break
            except Exception as exc:
                if attempt == 4:
                    for _rid, fut in marks:
                        if not fut.done():
                            fut.set_exception(exc)
                    log.error("ledger write failed", error=str(exc))
                    return
                await asyncio.sleep(0.1 * 2**attempt)
        for rid, fut in marks:
            if not fut.done():
                fut.set_result(rid in ok)

    async def aclose(self) -> None:
        await self.flush()
        self._closed = True
        if self._finish_timer is not None:
            self._finish_timer.cancel()
            self._finish_timer = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class DeliveryEngine:
    def __init__(
        self,
        *,
        channel: Channel,
        db: Database,
        settings: DeliverySettings,
        clock: Clock,
        owner: str,
        only_campaign: int | None = None,
        on_progress: Callable[[EngineStats], None] | None = None,
        links: LinkSigner | None = None,
    ) -> None:
        self.ch = channel
        self.links = links
        self.db = db
        self.settings = settings
        self.clock = clock
        self.owner = owner
        self.only = only_campaign
        self.on_progress = on_progress
        self.campaigns = Campaigns(db)
        self.stats = EngineStats()
        self.retry_policy = policy.RetryPolicy(
            max_attempts_server=max(1, settings.max_server_retries)
        )
        self.rng = random.Random()
        self.writer = LedgerWriter(db, clock, bot_id=channel.record.id)
        self.gate = Gate(channel.limiter, clock, remember=channel.remember_rates)
        self.ctx: dict[int, CampaignCtx] = {}
        self.queue: asyncio.Queue[tuple[CampaignCtx, ledger.Claimed]] = asyncio.Queue()
        # The paid window is also the sender pool's size: the largest window there is.
        self._paid_window_size = max(
            settings.in_flight, math.ceil(settings.paid_rate * PAID_WINDOW_SECONDS)
        )
        self.free_window = asyncio.Semaphore(settings.in_flight)
        self.paid_window = asyncio.Semaphore(self._paid_window_size)
        self._fatal: BaseException | None = None
        # What each sender holds: ("wait", row) before its request is committed to, then
        # ("send", row). Shutdown cancels waiters and lets senders finish.
        self._phase: dict[asyncio.Task[None] | None, tuple[str, int]] = {}
        # Set by a sender when the rows held fall to ``_low_mark`` (one window): time to claim.
        self._low = asyncio.Event()
        self._low_mark = settings.in_flight
        self._turn = 0  # which running campaign claims first next time (round-robin)

    # -- campaign contexts -------------------------------------------------------------

    async def _refresh(self) -> list[CampaignCtx]:
        q = select(
            Campaign.id,
            Campaign.state,
            Campaign.text,
            Campaign.parse_mode,
            Campaign.media_kind,
            Campaign.media_path,
            Campaign.media_file_id,
            Campaign.buttons,
            Campaign.paid,
            Campaign.options,
            Campaign.media_items,
            Campaign.copy_from,
            SequenceStep.number.label("step"),
        ).outerjoin(SequenceStep, SequenceStep.campaign_id == Campaign.id)
        q = q.where(Campaign.bot_id == self.ch.record.id)
        if self.only is not None:
            q = q.where(Campaign.id == self.only)
        else:
            q = q.where(Campaign.state.in_(("running", "paused")))
        async with self.db.read() as conn:
            rows = (await conn.execute(q.order_by(Campaign.id))).all()
        seen = set()
        for r in rows:
            seen.add(r.id)
            c = self.ctx.get(r.id)
            if c is None:
                self.ctx[r.id] = CampaignCtx(
                    id=r.id,
                    state=r.state,
                    text=r.text,
                    parse_mode=r.parse_mode,
                    media_kind=r.media_kind,
                    media_path=r.media_path,
                    file_id=r.media_file_id,
                    buttons=clicks.wire_buttons(r.id, r.buttons),
                    paid=bool(r.paid),
                    tracked=clicks.trackable(r.buttons) if self.links else (),
                    options=SendOptions.from_json(r.options),
                    items=[dict(i) for i in r.media_items] if r.media_items else None,
                    copy_from=r.copy_from,
                    standing=r.step is not None,
                )
                if any(not clicks.is_callback(b[1]) for b in r.buttons or []):
                    await clicks.note_tracking(self.db, r.id, tracked=self.links is not None)
            else:
                c.state = r.state
        for cid in list(self.ctx):
            if cid not in seen:
                self.ctx[cid].state = "gone"
                del self.ctx[cid]
        return [c for c in self.ctx.values() if c.state == "running"]

    # -- main loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, until_done: bool = False) -> None:
        async with self.db.write() as conn:
            n = await ledger.recover(conn, bot_id=self.ch.record.id, now=self.clock.now())
        if n:
            self.stats.recovered_uncertain += n
            log.warning(
                "rows found in 'sending' after an interruption marked uncertain",
                bot=self.ch.name,
                rows=n,
            )
        self.writer.start()
        senders = [asyncio.create_task(self._sender()) for _ in range(self._paid_window_size)]
        try:
            await self._feed(stop, until_done)
        finally:
            await self._shutdown(senders)
        if self._fatal is not None:
            raise self._fatal

    async def _shutdown(self, senders: list[asyncio.Task[None]]) -> None:
        """Give back what was not sent; let requests already committed to finish."""
        waiting = [t for t, (phase, _rid) in self._phase.items() if phase == "wait" and t]
        released = [rid for t, (phase, rid) in self._phase.items() if phase == "wait" and t]
        for t in waiting:
            t.cancel()
        bound = self.ch.bot.session.timeout + 5  # type: ignore[operator]
        deadline = self.clock.monotonic() + float(bound)
        while any(p == "send" for p, _ in self._phase.values()):
            if self.clock.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        for t in senders:
            t.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await self.writer.aclose()
        await self._return_queued(extra=released)

    async def _return_queued(self, extra: list[int] | None = None) -> None:
        ids: list[int] = list(extra or [])
        while not self.queue.empty():
            _c, row = self.queue.get_nowait()
            ids.append(row.id)
        await ledger.release_batch(self.db, ids, not_before=None)

    async def _feed(self, stop: asyncio.Event, until_done: bool) -> None:
        last_due = last_refresh = drained_at = -1e9
        running: list[CampaignCtx] = []
        while not stop.is_set() and self._fatal is None:
            mono = self.clock.monotonic()
            if self.only is None and mono - last_due >= 1.0:
                last_due = mono
                started = await self.campaigns.start_due(self.ch.record.id, now=self.clock.now())
                for cid in started:
                    log.info("scheduled campaign started", bot=self.ch.name, campaign=cid)
                if started:
                    last_refresh = -1e9
            # Keep a window plus a batch of work queued: enough to never starve the senders,
            # little enough that pause, cancel and a /stop take effect quickly. Rows a sender
            # already took (waiting for the window or in flight) count too: there are far
            # more senders than a free window, and they would otherwise drain the queue
            # into themselves and claim much of the campaign ahead of time. Claims wait until
            # the rows held fall to one window, then top up: a claim is a write transaction,
            # so it brings a batch of at least a window, or CLAIM_AHEAD_S of sending at the
            # current rate when that is more, not a row or two every iteration.
            held = self.queue.qsize() + len(self._phase)
            want = held <= self._window_size(running) and mono - drained_at >= REFRESH_EVERY_S
            if not running or mono - last_refresh >= REFRESH_EVERY_S:
                running = await self._refresh()
                last_refresh = mono
                if self.only is not None and self.only not in self.ctx:
                    return
            claimed = 0
            window = self._window_size(running)
            self._low_mark = window
            # Half the window per commit: the other half is on the wire meanwhile. A quarter
            # cost about 15% more CPU per message at 930/s (a commit per four rows).
            self.writer.batch_target = max(1, window // 2)
            batch = max(window, math.ceil(self._rate(running) * CLAIM_AHEAD_S))
            room = window + batch - held if want else 0
            idle_s: float | None = None
            if running and room > 0:
                drained_at = mono  # until a claim below finds rows
                claimed, idle_s = await self._claim_fairly(running, room)
                if claimed:
                    drained_at = -1e9
            if self.on_progress is not None:
                self.on_progress(self.stats)
            if claimed:
                # The next claim is due when the senders have worked the rows held down to one
                # window (they set ``_low``), not on a timer: a timer would cap the rate at two
                # windows per period. REFRESH_EVERY_S bounds the wait so pause and cancel are
                # still seen while every row is slow (a 429 pause, a slow network).
                self._low.clear()
                if self.queue.qsize() + len(self._phase) > window:
                    await first_of((stop, self._low), REFRESH_EVERY_S)
                continue
            if self.queue.empty() and not self._phase:
                await self.writer.flush()
                for c in running:
                    if c.standing:
                        continue
                    if await self.campaigns.complete_if_done(c.id, now=self.clock.now()):
                        log.info("campaign completed", bot=self.ch.name, campaign=c.id)
                if until_done and self.only is not None:
                    ctx = self.ctx.get(self.only)
                    if ctx is not None:
                        await self._refresh()
                        ctx = self.ctx.get(self.only)
                    if ctx is None or ctx.state in ("completed", "cancelled", "paused"):
                        return
            pause = CLAIM_EVERY_S if running else IDLE_POLL_S
            if idle_s is not None and self.queue.empty() and not self._phase:
                # Nothing due and nothing held: sleep until a row falls due or the next
                # scheduled-campaign and sequence round, not a claim per campaign every
                # REFRESH_EVERY_S (a bot's sequences keep dozens of step campaigns running).
                until_round = (
                    last_due + 1.0 - self.clock.monotonic() if self.only is None else pause
                )
                pause = max(CLAIM_EVERY_S, min(IDLE_POLL_S, idle_s, until_round))
            await wait_event(stop, pause)

    async def _claim_fairly(
        self, running: list[CampaignCtx], room: int
    ) -> tuple[int, float | None]:
        """Claim up to ``room`` rows, shared evenly among the running campaigns that have rows
        due now, the first of them taken in turn, and queue them interleaved: a campaign
        started during a big one goes at an even share of the rate at once instead of after
        it (replies still go first: they have the limiter's priority). One read finds the
        campaigns with rows due; only those are claimed from. Returns the rows claimed and,
        when no campaign had any, the seconds until one will (``IDLE_POLL_S`` if unknown)."""
        now_ts = self.clock.now().timestamp()
        due, later = await ledger.due_campaigns(self.db, [c.id for c in running], now_ts=now_ts)
        if not due:
            return 0, IDLE_POLL_S if later is None else max(0.0, later - now_ts)
        picked = [c for c in running if c.id in due]
        turn = self._turn % len(picked)
        self._turn += 1
        picked = picked[turn:] + picked[:turn]
        lots: list[tuple[CampaignCtx, list[ledger.Claimed]]] = []
        for i, c in enumerate(picked):
            if room <= 0:
                break
            share = math.ceil(room / (len(picked) - i))  # what one leaves, the next may take
            rows = await ledger.claim_batch(
                self.db,
                campaign_id=c.id,
                owner=self.owner,
                limit=min(share, self.settings.batch_size),
                now_ts=now_ts,
            )
            lots.append((c, rows))
            room -= len(rows)
        for k in range(max((len(rows) for _c, rows in lots), default=0)):
            for c, rows in lots:
                if k < len(rows):
                    self.queue.put_nowait((c, rows[k]))
        return sum(len(rows) for _c, rows in lots), None

    def _rate(self, running: list[CampaignCtx]) -> float:
        return self.ch.limiter.effective_rate(paid=_any_paid(running))

    def _window_size(self, running: list[CampaignCtx]) -> int:
        return self._paid_window_size if _any_paid(running) else self.settings.in_flight

    # -- sending -----------------------------------------------------------------------

    async def _sender(self) -> None:
        me = asyncio.current_task()
        while True:
            c, row = await self.queue.get()
            self._phase[me] = ("wait", row.id)
            try:
                # The campaign's own cap, before the window: a capped campaign waiting for its
                # slot holds no place in flight that another campaign could use.
                wait = c.cap_wait(self.clock.monotonic())
                if wait > 0:
                    await self.clock.sleep(wait)
                window = self.paid_window if c.paid else self.free_window
                async with window:
                    await self._deliver(c, row, me)
            except InvalidToken as exc:
                self._fatal = exc
            except Exception as exc:
                log.error("delivery step failed", bot=self.ch.name, row=row.id, error=str(exc))
                self._fatal = exc
            finally:
                self._phase.pop(me, None)
                if self.queue.qsize() + len(self._phase) <= self._low_mark:
                    self._low.set()

    async def _deliver(
        self, c: CampaignCtx, row: ledger.Claimed, me: asyncio.Task[None] | None
    ) -> None:
        if c.state != "running":  # paused or cancelled since the claim
            await ledger.release_batch(self.db, [row.id], not_before=None)
            return
        if c.copy_from is not None and not c.proven:
            # copyMessage has no dry run: the first copy is the test that the source exists
            # and may be copied, so until one is delivered the campaign sends one at a time,
            # and a source Telegram refuses stops it after one failed row (content.py).
            async with c.probe_lock:
                if not c.proven:
                    if c.state == "running" and await content.source_ok(self, c):
                        await self._deliver_one(c, row, me)
                    else:
                        await ledger.release_batch(self.db, [row.id], not_before=None)
                    return
            if c.state != "running":
                await ledger.release_batch(self.db, [row.id], not_before=None)
                return
        await self._deliver_one(c, row, me)

    async def _deliver_one(
        self, c: CampaignCtx, row: ledger.Claimed, me: asyncio.Task[None] | None
    ) -> None:
        gate = self.gate
        cost = len(c.items) if c.items else 1  # an album is one message per item for Telegram
        admitted_at = await gate.admit(
            row.chat_id, is_group=row.is_group, paid=c.paid, cost=cost, priority=Priority.CAMPAIGN
        )
        self._phase[me] = ("send", row.id)  # from here on the row is never cancelled
        if not await self.writer.mark_sending(row.id):
            return  # cancelled, or its subscriber left (suppressed): nothing was sent
        held = await gate.depart(admitted_at, paid=c.paid, cost=cost)
        if held is not None:
            # A 429 came back while this one waited for its mark or the pacer: the bucket is
            # empty, so it would draw another. Not sent; back to pending after the pause.
            self.stats.retried += 1
            self.writer.finish(
                {
                    "rid": row.id,
                    "updated_at": self.clock.now(),
                    "state": "pending",
                    "not_before": self.clock.now().timestamp() + held.seconds,
                }
            )
            return
        sent_at = self.clock.monotonic()
        if c.copy_from is not None or c.items is not None:
            result = await content.send(self, c, row)
        elif c.media_path and not c.file_id:
            async with c.upload_lock:  # upload once, then reuse Telegram's file_id
                result = await send(self.ch.bot, self._message(c, row))
                if result.file_id and not c.file_id:
                    c.file_id = result.file_id
                    await self._store_file_id(c)
        elif c.tracked:  # each recipient's own links: the request is built for them
            result = await send(self.ch.bot, self._message(c, row))
        else:
            if c.broadcast is None:
                c.broadcast = Broadcast(self._message(c, row))
            # A static text is the broadcast's own, already encoded.
            text = None if c.static_text is not None else c.text_for(row.values)
            result = await c.broadcast.send(self.ch.bot, row.chat_id, text)
        await gate.answered(
            result,
            sent_at=sent_at,
            chat_id=row.chat_id,
            is_group=row.is_group,
            paid=c.paid,
            cost=cost,
        )
        attempt = row.attempts + 1
        decision = policy.decide(result, attempt=attempt, policy=self.retry_policy, rng=self.rng)
        await self._apply(c, row, decision)
        if c.copy_from is not None and not c.proven:
            await content.after_probe(self, c, result)

    def _message(self, c: CampaignCtx, row: ledger.Claimed) -> OutgoingMessage:
        text = c.text_for(row.values)
        media: str | Path | None = None
        if c.media_path:
            media = c.file_id or Path(c.media_path)
        files = {c.media_kind: media} if media is not None and c.media_kind in FILE_METHODS else {}
        return OutgoingMessage(
            chat_id=row.chat_id,
            text=text,
            parse_mode=TELEGRAM_PARSE_MODE[c.parse_mode],
            **files,  # type: ignore[arg-type]
            buttons=clicks.personal_buttons(
                c.buttons, c.tracked, self.links, row.id, now=self.clock.now()
            )
            if c.tracked and self.links
            else c.buttons,
            allow_paid_broadcast=c.paid,
            disable_notification=c.options.silent,
            protect_content=c.options.protect,
            link_preview_disabled=not c.options.link_preview,
        )

    async def _store_file_id(self, c: CampaignCtx) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(Campaign).where(Campaign.id == c.id).values(media_file_id=c.file_id)
            )

    async def _apply(self, c: CampaignCtx, row: ledger.Claimed, d: policy.Decision) -> None:
        now = self.clock.now()
        base: dict[str, Any] = {"rid": row.id, "updated_at": now}
        match d:
            case policy.MarkSent(message_id=mid, message_ids=mids):
                self.stats.sent += 1
                self.stats.by_campaign_sent[c.id] = self.stats.by_campaign_sent.get(c.id, 0) + 1
                album = {"message_ids": list(mids)} if mids else {}
                self.writer.finish({**base, "state": "sent", "message_id": mid, **album})
                self.ch.count_delivery("sent")
            case policy.Retry(delay_s=delay):  # a 429 was fed to the limiter (``gate.answered``)
                self.stats.retried += 1
                row.attempts += 1
                self.writer.finish(
                    {**base, "state": "pending", "not_before": now.timestamp() + delay}
                )
            case policy.Suppress(reason=reason, subscriber_status=status):
                self.stats.suppressed += 1
                self.writer.finish(
                    {**base, "state": "suppressed", "error": reason},
                    unreachable=(row.chat_id, status, reason),
                )
                self.ch.count_delivery("suppressed")
            case policy.MarkUncertain(reason=reason):
                self.stats.uncertain += 1
                self.writer.finish({**base, "state": "uncertain", "error": reason})
                self.ch.count_delivery("uncertain")
            case policy.MarkFailed(reason=reason):
                self.stats.failed += 1
                self.writer.finish({**base, "state": "failed", "error": reason})
                self.ch.count_delivery("failed")
            case policy.StopBot(reason=reason):
                # 401: the request was refused, nothing was delivered; the row waits.
                self.writer.finish({**base, "state": "pending"})
                raise InvalidToken(f"the token was rejected while sending: {reason}")


def _any_paid(running: list[CampaignCtx]) -> bool:
    return any(c.paid for c in running)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def make_bot_worker(
    *, db: Database, settings: DeliverySettings, owner: str, links: LinkSigner | None = None
) -> Callable[[Channel, asyncio.Event], Any]:
    """The per-bot job `botdesk serve` runs while it holds the bot's lease."""

    async def worker(channel: Channel, stop: asyncio.Event) -> None:
        engine = DeliveryEngine(
            channel=channel,
            db=db,
            settings=settings,
            clock=channel.clock,
            owner=owner,
            links=links,
        )
        await engine.run(stop)

    return worker
