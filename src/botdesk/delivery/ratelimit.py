"""The per-bot rate limiter shared by campaigns and conversational replies.

One ``BotRateLimiter`` per bot admits a send only when ALL of these allow it:

- the bot's global bucket (``rate``/s, or ``paid_rate``/s for paid broadcasts), scaled by
  ``safety`` (stay just under the limit); after a 429 the rate is the one learned from
  Telegram's answers (``ratecontrol.RateController``, one for free and one for paid sends);
- the chat's own bucket (``chat_rate``/s);
- for groups, the group bucket (``group_per_minute``/min);
  both learned too: a 429 one chat's own limit explains lowers the rate of every chat of its
  kind (``ratecontrol.ChatRateController``; in memory only, one figure per kind);
- no bot-wide pause is active (a 429 pauses every sender of the bot).

Buckets are kept as GCRA "theoretical arrival times" (one float each), so a full bucket is
just an entry we can forget: per-chat state is swept once buckets refill, which keeps memory
bounded for a million recipients.

Waiters queue per priority (REPLY before CAMPAIGN), FIFO for the global bucket. A waiter held
back only by its own chat does not block others (the worker should ask ``chat_ready_at`` and
pick another recipient meanwhile). One timer sleeps until the next admission is possible: no
polling. At high rates that timer lands on a ``tick`` grid (10 ms) so that one wake-up admits
a tick's worth of sends (10 at 1,000/s) instead of one: each wake-up of the event loop costs
more CPU than the send it releases. Admission is still checked against the buckets at the
moment it happens, so a later wake-up never lets more through than the bucket allows; the grid
applies only where a tick holds at least two sends and the bucket's burst can hold a tick's
worth (otherwise waiting for the grid would waste tokens). At the free 30/s every send keeps
its exact slot. A waiter cancelled after being admitted gives its tokens back.

Paid broadcasts draw from a separate bucket (Telegram lets them exceed the free limit). Like
Telegram (and the sandbox), a paid send uses up a free token whenever one is available (that
message is then not billed), so during a paid campaign the free bucket is drained. To keep
replies first, a free reply waiting for a free token holds paid admissions back until it got
it; free campaign sends simply wait for the paid campaign. Free sends are also charged to the
paid bucket, so the bot's total stays within ``paid_rate``.

A send may be worth several messages (``cost``: an album of N items is N for Telegram's
limits): it is admitted like one, and the bot's buckets are charged ``cost`` tokens, so the
next sends wait for the refill of all of them. The chat's and group's buckets count it once
(one request, delivered as a unit).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from botdesk.clock import Clock, Timer
from botdesk.delivery.ratecontrol import (
    DEFAULT_FLOOR_SHARE,
    DEFAULT_GROWTH,
    ChatRateController,
    RateController,
)

DEFAULT_RATE = 30.0
DEFAULT_BURST_SECONDS = 0.1  # default global burst = max(1, rate * this)
DEFAULT_CHAT_RATE = 1.0
DEFAULT_CHAT_BURST = 1.0
DEFAULT_GROUP_PER_MINUTE = 20.0
DEFAULT_GROUP_BURST = 1.0
DEFAULT_PAID_RATE = 1000.0
DEFAULT_SAFETY = 0.995
DEFAULT_TICK = 0.01
DEFAULT_QUIET_PERIOD = 10.0  # seconds without a 429 before the learned rate probes upward
# Wake a microsecond after the exact refill time: float rounding (ours or the server's bucket)
# must never turn "exactly one token" into 0.9999999.
_MARGIN = 1e-6
_SWEEP_MIN = 4096
# A 429 on a chat that had another send admitted this recently is blamed on that chat's own
# limit (Telegram: about 1/s per chat with short bursts): only that chat waits, the bot goes on.
# The window is at least this many of the chat's own (learned) intervals: a limit of 10 per
# minute in a group spaces its sends 6 s apart.
CHAT_BLAME_INTERVALS = 2.5
CHAT_BLAME_WINDOW = 3.0


class Priority(IntEnum):
    REPLY = 0
    CAMPAIGN = 1


@dataclass(frozen=True)
class LimiterStats:
    admitted: int
    waited_s: float
    effective_rate: float
    effective_paid_rate: float
    paused_until: float
    rate_limited: int
    waiting: int
    tracked_chats: int
    chat_rate: float = DEFAULT_CHAT_RATE
    group_per_minute: float = DEFAULT_GROUP_PER_MINUTE
    chat_limited: int = 0


class _Waiter:
    __slots__ = (
        "chat_id",
        "cost",
        "enqueued",
        "fut",
        "is_group",
        "paid",
        "prev_chat",
        "prev_group",
        "took_free",
    )

    def __init__(
        self,
        chat_id: int,
        is_group: bool,
        paid: bool,
        enqueued: float,
        fut: asyncio.Future[None],
        cost: int = 1,
    ) -> None:
        self.chat_id = chat_id
        self.cost = cost
        self.is_group = is_group
        self.paid = paid
        self.enqueued = enqueued
        self.fut = fut
        self.took_free = False
        # The chat's (and group's) bucket state before this waiter was admitted, restored
        # exactly if it is cancelled before it could send (subtracting floats would not be).
        self.prev_chat: float | None = None
        self.prev_group: float | None = None


class BotRateLimiter:
    def __init__(
        self,
        *,
        clock: Clock,
        rate: float = DEFAULT_RATE,
        burst: float | None = None,
        chat_rate: float = DEFAULT_CHAT_RATE,
        chat_burst: float = DEFAULT_CHAT_BURST,
        group_per_minute: float = DEFAULT_GROUP_PER_MINUTE,
        group_burst: float = DEFAULT_GROUP_BURST,
        paid_rate: float = DEFAULT_PAID_RATE,
        paid_burst: float | None = None,
        safety: float = DEFAULT_SAFETY,
        floor_share: float = DEFAULT_FLOOR_SHARE,
        quiet_period: float = DEFAULT_QUIET_PERIOD,
        growth: float = DEFAULT_GROWTH,
        tick: float = DEFAULT_TICK,
        paid_slow_start: bool = False,
    ) -> None:
        for name, value in (
            ("rate", rate),
            ("chat_rate", chat_rate),
            ("group_per_minute", group_per_minute),
            ("paid_rate", paid_rate),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 < safety <= 1:
            raise ValueError("safety must be in (0, 1]")
        self._clock = clock
        self.rate = rate
        self.paid_rate = paid_rate
        self.burst = burst if burst is not None else max(1.0, rate * DEFAULT_BURST_SECONDS)
        self.paid_burst = (
            paid_burst if paid_burst is not None else max(1.0, paid_rate * DEFAULT_BURST_SECONDS)
        )
        if min(self.burst, self.paid_burst, chat_burst, group_burst) < 1:
            raise ValueError("bursts must be at least 1")
        if tick < 0:
            raise ValueError("tick must not be negative")
        # Grid step per kind (paid?); 0 keeps exact timing.
        self._tick = {
            False: tick if _groups_well(rate, self.burst, tick) else 0.0,
            True: tick if _groups_well(paid_rate, self.paid_burst, tick) else 0.0,
        }
        self.safety = safety
        self.chat_burst = chat_burst
        self.group_burst = group_burst
        # The chat's and group's limits, learned from the 429s a chat's own limit explains
        # (per second; ``group_per_minute`` / 60 for groups). Cached as intervals, refreshed
        # when a controller may have moved (a cut, or a probe upward: ``_chat_fresh_until``).
        self._chat_ctl = {
            group: ChatRateController(
                base, floor_share=floor_share, quiet=quiet_period, growth=growth
            )
            for group, base in ((False, chat_rate), (True, group_per_minute / 60.0))
        }
        self._chat_t = 1.0 / chat_rate
        self._chat_tau = (chat_burst - 1.0) * self._chat_t
        self._group_t = 60.0 / group_per_minute
        self._group_tau = (group_burst - 1.0) * self._group_t
        self._chat_fresh_until = math.inf  # nothing learned: the configured rates hold
        # What Telegram actually enforces, learned from 429s: free and paid sends apart.
        # ``paid_slow_start``: paid sends start at the free rate and ramp up
        # (``RateController``'s slow start). Off by default: Telegram documents 1,000/s for
        # paid broadcasts, and the ramp costs a 10,000-message broadcast about 5 s; it is for a
        # bot whose paid limit is known to be lower and not yet learned.
        self._ctl = {
            paid: RateController(
                base,
                floor_share=floor_share,
                quiet=quiet_period,
                growth=growth,
                ramp_from=rate if paid and paid_slow_start else None,
            )
            for paid, base in ((False, rate), (True, paid_rate))
        }
        now = clock.monotonic()
        self._tat_free = now
        self._tat_paid = now
        self._chats: dict[int, float] = {}
        # chat -> (last admission, the one before): which 429s a chat's own limit explains
        self._recent: dict[int, tuple[float, float]] = {}
        self._groups: dict[int, float] = {}
        self._sweep_at = _SWEEP_MIN
        self._paused_until = -math.inf
        self._last_429_at = -math.inf
        self._queues: tuple[deque[_Waiter], deque[_Waiter]] = (deque(), deque())
        # Waiters per queue and kind ([priority][paid]): the dispatch walk stops once every kind
        # still waiting in a queue is blocked, instead of walking a paid window of hundreds.
        self._kinds = [[0, 0], [0, 0]]
        self._timer: Timer | None = None
        self._timer_when = math.inf
        self._admitted = 0
        self._waited = 0.0
        self._rate_limited = 0
        self._chat_limited = 0  # of those, blamed on one chat's own limit

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- rates -------------------------------------------------------------------------------

    def _rate(self, paid: bool, now: float) -> float:
        return self._ctl[paid].rate(now) * self.safety

    def effective_rate(self, *, paid: bool = False) -> float:
        return self._rate(paid, self._clock.monotonic())

    def _paid_burst(self, now: float) -> float:
        """The paid bucket's burst, scaled with the paid rate in force: 100 sends at once
        are a tenth of a second at 1,000/s, but two thirds of one at a learned 150/s."""
        ctl = self._ctl[True]
        return max(1.0, self.paid_burst * min(1.0, ctl.rate(now) / ctl.configured))

    def burst_for(self, *, paid: bool = False) -> float:
        """The burst (sends) the bucket of this kind allows now."""
        return self._paid_burst(self._clock.monotonic()) if paid else self.burst

    def tick(self, *, paid: bool = False) -> float:
        """The grid this kind's wake-ups land on (0: exact times); see the module docstring."""
        return self._tick_now(paid, self._clock.monotonic())

    def _tick_now(self, paid: bool, now: float) -> float:
        tick = self._tick[paid]
        if tick and paid and self._ctl[True].rate(now) < self.paid_rate:
            # Ramping up or learned lower: the grid only where it still batches well.
            if not _groups_well(self._rate(True, now), self._paid_burst(now), tick):
                return 0.0
        return tick

    def _on_grid(self, paid: bool, when: float) -> float:
        tick = self._tick_now(paid, self._clock.monotonic())
        return math.ceil(when / tick) * tick if tick else when

    # -- readiness ---------------------------------------------------------------------------

    def _global_ready(self, paid: bool, now: float) -> float:
        t = 1.0 / self._rate(paid, now)
        if paid:
            ready = self._tat_paid - (self._paid_burst(now) - 1.0) * t
        else:
            ready = self._tat_free - (self.burst - 1.0) * t
        return max(ready, self._paused_until)

    def _refresh_chat_rates(self, now: float) -> None:
        """Re-read the learned chat and group rates (they only move after a cut, then while
        probing upward: up to a tenth of a second stale there, which is a ~0.2% step)."""
        if now < self._chat_fresh_until:
            return
        private, group = self._chat_ctl[False], self._chat_ctl[True]
        self._chat_t = 1.0 / private.rate(now)
        self._chat_tau = (self.chat_burst - 1.0) * self._chat_t
        self._group_t = 1.0 / group.rate(now)
        self._group_tau = (self.group_burst - 1.0) * self._group_t
        learning = any(c.learned(now) is not None for c in (private, group))
        self._chat_fresh_until = now + 0.1 if learning else math.inf

    def chat_rates(self) -> tuple[float, float]:
        """The per-chat (messages/s) and per-group (messages/min) rates in force."""
        self._refresh_chat_rates(self._clock.monotonic())
        return 1.0 / self._chat_t, 60.0 / self._group_t

    def chat_ready_at(self, chat_id: int, is_group: bool = False) -> float:
        """Monotonic time from which this chat's own limits (chat, group) allow a send."""
        ready = self._chats.get(chat_id, -math.inf) - self._chat_tau
        if is_group:
            ready = max(ready, self._groups.get(chat_id, -math.inf) - self._group_tau)
        return ready

    def ready_at(self, chat_id: int, *, is_group: bool = False, paid: bool = False) -> float:
        """Monotonic time from which every limit allows a send to this chat (ignoring queues)."""
        now = self._clock.monotonic()
        return max(self._global_ready(paid, now), self.chat_ready_at(chat_id, is_group))

    # -- admission ---------------------------------------------------------------------------

    def _admit(self, chat_id: int, is_group: bool, paid: bool, now: float, cost: int = 1) -> bool:
        """Take the tokens (``cost`` of the bot's); return whether the free bucket was
        charged."""
        paid_t = 1.0 / self._rate(True, now)
        self._tat_paid = max(self._tat_paid, now) + paid_t * cost
        free_t = 1.0 / self._rate(False, now)
        # Telegram's free bucket refills at the full rate, ours at ``safety`` of it, so over a
        # burst Telegram may find a free token for a paid send slightly before we would: charge
        # it from then on, or the free send after it would be admitted into an empty bucket.
        early = self.burst * free_t * (1.0 - self.safety) + _MARGIN
        took_free = not paid or self._global_ready(False, now) <= now + early
        if took_free:
            self._tat_free = max(self._tat_free, now) + free_t * cost
        # Chat and group buckets run at exactly Telegram's rate (no safety factor): a margin
        # per admission keeps the next one from landing on the refill instant itself, which
        # another implementation of the same bucket may round to one ulp short of a token.
        self._chats[chat_id] = max(self._chats.get(chat_id, now), now) + self._chat_t + _MARGIN
        last = self._recent.get(chat_id)
        self._recent[chat_id] = (now, -math.inf if last is None else last[0])
        if is_group:
            self._groups[chat_id] = (
                max(self._groups.get(chat_id, now), now) + self._group_t + _MARGIN
            )
        self._admitted += cost
        if len(self._chats) >= self._sweep_at:
            self._sweep(now)
        return took_free

    def _refund(self, w: _Waiter) -> None:
        now = self._clock.monotonic()
        self._tat_paid -= w.cost / self._rate(True, now)
        if w.took_free:
            self._tat_free -= w.cost / self._rate(False, now)
        self._restore(self._chats, w.chat_id, w.prev_chat, self._chat_t + _MARGIN, now)
        if w.is_group:
            self._restore(self._groups, w.chat_id, w.prev_group, self._group_t + _MARGIN, now)
        self._admitted -= w.cost

    @staticmethod
    def _restore(
        tats: dict[int, float], key: int, prev: float | None, step: float, now: float
    ) -> None:
        current = tats.get(key)
        if current is None:
            return
        later = current - step  # what later admissions (if any) added on top
        if prev is None:
            # It was a full bucket (no entry). Keep an entry only if others were admitted
            # after this waiter; a full bucket is identical to no entry.
            if later <= now + _MARGIN:
                del tats[key]
            else:
                tats[key] = later
        else:
            tats[key] = max(prev, later)

    def _sweep(self, now: float) -> None:
        # A bucket whose arrival time has passed is full: identical to having no entry.
        self._chats = {c: t for c, t in self._chats.items() if t > now}
        self._groups = {c: t for c, t in self._groups.items() if t > now}
        window = max(self._blame_window(False), self._blame_window(True))
        self._recent = {c: t for c, t in self._recent.items() if t[0] > now - window}
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._chats))

    def _blame_window(self, is_group: bool) -> float:
        interval = self._group_t if is_group else self._chat_t
        return max(CHAT_BLAME_WINDOW, CHAT_BLAME_INTERVALS * interval)

    def _ready_now(self, chat_id: int, is_group: bool, paid: bool, now: float) -> bool:
        self._refresh_chat_rates(now)
        return self._global_ready(paid, now) <= now and self.chat_ready_at(chat_id, is_group) <= now

    def try_acquire(
        self,
        chat_id: int,
        *,
        is_group: bool = False,
        priority: Priority = Priority.CAMPAIGN,
        paid: bool = False,
        cost: int = 1,
    ) -> bool:
        """Admit now if every limit allows it and nobody of this or a higher priority waits."""
        if any(self._queues[p] for p in range(priority + 1)):
            return False
        now = self._clock.monotonic()
        if not self._ready_now(chat_id, is_group, paid, now):
            return False
        self._admit(chat_id, is_group, paid, now, cost)
        return True

    async def acquire(
        self,
        chat_id: int,
        *,
        is_group: bool = False,
        priority: Priority = Priority.CAMPAIGN,
        paid: bool = False,
        cost: int = 1,
    ) -> None:
        """Wait until a send to ``chat_id`` is allowed under all limits, then take the tokens
        (``cost``: how many messages it is for the bot's limits, e.g. an album's items)."""
        if not cost >= 1:
            raise ValueError("cost must be at least 1")
        if self.try_acquire(chat_id, is_group=is_group, priority=priority, paid=paid, cost=cost):
            return
        now = self._clock.monotonic()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(chat_id, is_group, paid, now, fut, cost)
        self._queues[priority].append(waiter)
        self._kinds[priority][paid] += 1
        # A timer armed no later than this waiter's global bucket allows it to go will dispatch
        # it in time (the common case at full rate: the bucket is empty and others wait);
        # dispatching now would only walk the queue to learn that.
        wake = self._on_grid(paid, self._global_ready(paid, now)) + _MARGIN
        if self._timer is None or self._timer_when > wake:
            self._dispatch()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._refund(waiter)
            else:
                self._remove(waiter, priority)
            self._dispatch()
            raise

    def _remove(self, waiter: _Waiter, priority: Priority) -> None:
        try:
            self._queues[priority].remove(waiter)
        except ValueError:
            return  # already dropped by _dispatch
        self._kinds[priority][waiter.paid] -= 1

    def _dispatch(self) -> None:
        """Admit every waiter that can go now, in order; arm the timer for the next one."""
        now = self._clock.monotonic()
        self._refresh_chat_rates(now)
        next_wake = math.inf
        if self._paused_until > now:
            next_wake = self._paused_until
        else:
            blocked: set[bool] = set()  # kinds (paid?) whose global bucket is empty
            for queue, kinds in zip(self._queues, self._kinds, strict=True):
                i = 0
                while i < len(queue):
                    if (not kinds[False] or False in blocked) and (
                        not kinds[True] or True in blocked
                    ):
                        break  # whoever is left in this queue waits for an empty bucket
                    w = queue[i]
                    if w.fut.done():
                        del queue[i]
                        kinds[w.paid] -= 1
                        continue
                    if w.paid in blocked:
                        i += 1
                        continue
                    g_ready = self._global_ready(w.paid, now)
                    if g_ready > now:
                        blocked.add(w.paid)
                        if queue is self._queues[Priority.REPLY] and not w.paid:
                            # Paid sends would take the free token this reply waits for.
                            blocked.add(True)
                        next_wake = min(next_wake, self._on_grid(w.paid, g_ready))
                        i += 1
                        continue
                    c_ready = self.chat_ready_at(w.chat_id, w.is_group)
                    if c_ready > now:
                        next_wake = min(next_wake, c_ready)
                        i += 1
                        continue
                    del queue[i]
                    kinds[w.paid] -= 1
                    w.prev_chat = self._chats.get(w.chat_id)
                    w.prev_group = self._groups.get(w.chat_id) if w.is_group else None
                    w.took_free = self._admit(w.chat_id, w.is_group, w.paid, now, w.cost)
                    self._waited += now - w.enqueued
                    w.fut.set_result(None)
        if not any(self._queues):
            self._cancel_timer()
        elif next_wake < math.inf:
            self._arm(next_wake + _MARGIN)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_when = math.inf

    def _arm(self, when: float) -> None:
        if self._timer is not None and self._timer_when <= when:
            return
        self._cancel_timer()
        self._timer_when = when
        self._timer = self._clock.call_later(when - self._clock.monotonic(), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_when = math.inf
        self._dispatch()

    # -- 429 handling ------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Stop every sender of this bot for ``seconds`` (Telegram's retry_after)."""
        now = self._clock.monotonic()
        until = now + max(0.0, seconds)
        if until <= self._paused_until:
            return
        self._paused_until = until
        # Resume from an empty bucket: a burst right after a 429 would provoke the next one.
        tau_free = (self.burst - 1.0) / self._rate(False, now)
        tau_paid = (self._paid_burst(now) - 1.0) / self._rate(True, now)
        self._tat_free = max(self._tat_free, until + tau_free)
        self._tat_paid = max(self._tat_paid, until + tau_paid)

    def on_rate_limited(
        self,
        retry_after: float,
        *,
        paid: bool = False,
        chat_id: int | None = None,
        is_group: bool | None = None,
    ) -> None:
        """A 429 arrived anyway: pause the bot and learn a lower rate (probing up once quiet).

        Telegram does not say which limit refused. When ``chat_id``'s send had another send to
        the same chat within ``CHAT_BLAME_WINDOW`` before it, the chat's own limit explains
        the 429: only that chat waits ``retry_after``; the bot's rate and other chats go on.
        A 429 that was in fact the bot's costs at most one more 429 (from another chat).
        A chat's 429 also lowers the per-chat rate (the per-group one for a group: ``is_group``,
        by default a negative ``chat_id``) of every chat, from the spacing that was refused."""
        now = self._clock.monotonic()
        self._rate_limited += 1
        # Forgotten either way: the retry of the refused send must not count it as the chat's
        # earlier send (a campaign's retried row would blame its own first attempt).
        recent = self._recent.pop(chat_id, None) if chat_id is not None else None
        group = chat_id is not None and chat_id < 0 if is_group is None else is_group
        if (
            chat_id is not None
            and recent is not None
            and recent[1] > now - self._blame_window(group)
        ):
            self._chat_limited += 1
            before = self._group_t if group else self._chat_t
            self._chat_ctl[group].on_refused(now, recent[0] - recent[1], admitted_at=recent[0])
            self._chat_fresh_until = -math.inf
            self._refresh_chat_rates(now)
            self._respace(group, (self._group_t if group else self._chat_t) - before, now)
            until = now + max(0.0, retry_after)
            self._chats[chat_id] = max(self._chats.get(chat_id, now), until + self._chat_tau)
            return
        self._last_429_at = now
        # One measurement per episode: the other in-flight sends of the same burst answer 429
        # too, and each of them would cut again.
        self._ctl[paid].on_rate_limited(now, new_episode=now >= self._paused_until)
        self.pause(retry_after)

    def _respace(self, group: bool, longer: float, now: float) -> None:
        """After a cut of the per-chat (per-group) rate, the chats of that kind whose bucket
        is not full were paced at the old rate: their next send waits the new interval after
        their last one. Otherwise every chat probing with the refused chat (a campaign to
        many groups) draws its own 429 too. Only the buckets not yet full are tracked."""
        if longer <= 0:
            return
        tats = self._groups if group else self._chats
        for chat, tat in tats.items():
            if tat > now:
                tats[chat] = tat + longer

    def rate_limited_since(self, t: float) -> float | None:
        """Seconds the bot is still paused if a 429 arrived after monotonic ``t``, else None.

        A sender admitted before that 429 but not yet on the wire (its ``sending`` mark was
        being committed, or the wire pacer held it) would only draw another 429 from the
        same empty bucket: it goes back to the queue instead."""
        if self._last_429_at < t:
            return None
        return max(0.0, self._paused_until - self._clock.monotonic())

    def on_accepted(
        self, *, paid: bool = False, sent_at: float | None = None, cost: int = 1
    ) -> None:
        """Telegram accepted a send (that left at monotonic ``sent_at``; ``cost`` messages,
        as admitted): the controller measures the real limit from these."""
        for _ in range(cost):
            self._ctl[paid].on_accepted(sent_at)

    def learned_rates(self) -> tuple[float | None, float | None]:
        """(free, paid) rates learned from 429s, None where the configured one holds."""
        now = self._clock.monotonic()
        return self._ctl[False].learned(now), self._ctl[True].learned(now)

    def restore_rates(self, free: float | None, paid: float | None) -> None:
        """Start from rates learned before a restart (then probe upward once quiet)."""
        now = self._clock.monotonic()
        for kind, learned in ((False, free), (True, paid)):
            if learned is not None:
                self._ctl[kind].restore(learned, now)

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> LimiterStats:
        return LimiterStats(
            admitted=self._admitted,
            waited_s=self._waited,
            effective_rate=self.effective_rate(),
            effective_paid_rate=self.effective_rate(paid=True),
            paused_until=self._paused_until,
            rate_limited=self._rate_limited,
            waiting=sum(len(q) for q in self._queues),
            tracked_chats=len(self._chats),
            chat_rate=self.chat_rates()[0],
            group_per_minute=self.chat_rates()[1],
            chat_limited=self._chat_limited,
        )

    async def aclose(self) -> None:
        """Cancel the internal timer (waiters stay queued; cancel them yourself)."""
        self._cancel_timer()


def _groups_well(rate: float, burst: float, tick: float) -> bool:
    """Whether waking on a ``tick`` grid batches sends without wasting tokens: a tick holds at
    least two sends, and the bucket holds a tick's worth while it waits for the grid."""
    per_tick = rate * tick
    return per_tick >= 2 and burst - 1 >= per_tick
